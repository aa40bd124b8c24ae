package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func TestParseWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"15", 15 * time.Minute, true},
		{" 15 ", 15 * time.Minute, true},
		{"15m", 15 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"1440", 24 * time.Hour, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
		{"99999999999999999999", 0, false},
		{"1441000", 0, false},
		{strings.Repeat("1", 40), 0, false},
		{"1e3", 0, false},
		{"15 m", 0, false},
	} {
		got, err := ParseWindow(tt.in)
		if tt.ok != (err == nil) || (tt.ok && got != tt.want) {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseWindow(%q) error %v does not wrap ErrInvalid", tt.in, err)
		}
	}
}

// FuzzParseWindow: a window is parsed or refused with ErrInvalid, and an
// accepted one that Validate also accepts lies within the bounds.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"15", "15m", "-1h", "1e9", "9223372036854775807", "24h0m1s", ""} {
		f.Add(s)
	}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWindow(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		r := &TraceRequest{From: from, To: from.Add(time.Hour), Window: d}
		if r.Validate() == nil && (d < MinTraceWindow || d > MaxTraceWindow) {
			t.Fatalf("%q: window %v accepted", s, d)
		}
	})
}

func TestTraceRequestValidate(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	good := TraceRequest{From: from, To: from.AddDate(0, 0, 14), Window: 15 * time.Minute, Format: CSV}
	for _, tt := range []struct {
		name  string
		edit  func(*TraceRequest)
		field string
	}{
		{"good", func(*TraceRequest) {}, ""},
		{"page only", func(r *TraceRequest) { r.Format = "" }, ""},
		{"366 days", func(r *TraceRequest) { r.To = r.From.Add(MaxTraceRange) }, ""},
		{"no from", func(r *TraceRequest) { r.From = time.Time{} }, "from"},
		{"no to", func(r *TraceRequest) { r.To = time.Time{} }, "to"},
		{"reversed", func(r *TraceRequest) { r.From, r.To = r.To, r.From }, "to"},
		{"empty", func(r *TraceRequest) { r.To = r.From }, "to"},
		{"367 days", func(r *TraceRequest) { r.To = r.From.Add(MaxTraceRange + time.Millisecond) }, "to"},
		{"59s", func(r *TraceRequest) { r.Window = 59 * time.Second }, "window"},
		{"24h1ms", func(r *TraceRequest) { r.Window = MaxTraceWindow + time.Millisecond }, "window"},
		{"negative", func(r *TraceRequest) { r.Window = -time.Hour }, "window"},
		{"format", func(r *TraceRequest) { r.Format = "xls" }, "format"},
	} {
		r := good
		tt.edit(&r)
		err := r.Validate()
		var te *TraceError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.field != "" && (!errors.As(err, &te) || te.Field != tt.field || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s: %v; want an error on %s", tt.name, err, tt.field)
		}
	}
}

// traceResult is a small result with a check nobody was near, a contact
// before and one after, and a source that looks like a formula.
func traceResult() *store.TraceResult {
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	return &store.TraceResult{
		Checks: []store.TraceCheck{
			{At: at, Source: "南门", Decision: "allow", Reason: "ok", PassID: pass.ID{1}},
			{At: at.Add(time.Hour), Source: "=HYPERLINK(\"x\")", Decision: "deny", Reason: "expired", Contacts: []store.TraceContact{
				{Subject: pass.Subject{0xab}, At: at.Add(50 * time.Minute), Offset: -10 * time.Minute, Decision: "allow"},
				{Subject: pass.Subject{0xcd}, At: at.Add(61*time.Minute + 500*time.Millisecond), Offset: 90500 * time.Millisecond, Decision: "deny"},
			}},
		},
		ContactRows: 2,
	}
}

func TestWriteTrace(t *testing.T) {
	t.Parallel()
	req := &TraceRequest{Location: time.UTC}
	res := traceResult()
	want := [][]string{
		{"check_time", "source", "check_decision", "check_reason", "pass_id", "contact_subject", "contact_time", "contact_earlier", "offset_seconds", "contact_decision"},
		{"2026-11-03T09:00:00.000Z", "南门", "allow", "ok", "010000000000000000000000", "", "", "", "", ""},
		{"2026-11-03T10:00:00.000Z", "'=HYPERLINK(\"x\")", "deny", "expired", "", "ab000000000000000000000000000000", "2026-11-03T09:50:00.000Z", "true", "600", "allow"},
		{"2026-11-03T10:00:00.000Z", "'=HYPERLINK(\"x\")", "deny", "expired", "", "cd000000000000000000000000000000", "2026-11-03T10:01:00.500Z", "false", "90.5", "deny"},
	}
	join := func(rows [][]string) string {
		var s []string
		for _, r := range rows {
			s = append(s, strings.Join(r, "|"))
		}
		return strings.Join(s, "\n")
	}

	req.Format = CSV
	var b bytes.Buffer
	if err := WriteTrace(&b, req, res); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte(utf8BOM)) || !bytes.Contains(b.Bytes(), []byte("\r\n")) {
		t.Error("CSV without BOM or CRLF")
	}
	got, err := csv.NewReader(bytes.NewReader(b.Bytes()[len(utf8BOM):])).ReadAll()
	if err != nil || join(got) != join(want) {
		t.Errorf("CSV:\n%s\nwant\n%s (%v)", join(got), join(want), err)
	}

	req.Format = XLSX
	b.Reset()
	if err := WriteTrace(&b, req, res); err != nil {
		t.Fatal(err)
	}
	sheets := readXLSX(t, b.Bytes())
	if g := join(sheets["trace"]); g != join(want) {
		t.Errorf("XLSX:\n%s\nwant\n%s", g, join(want))
	}

	req.Format = JSONL
	b.Reset()
	if err := WriteTrace(&b, req, res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d JSON lines, want 3", len(lines))
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["v"] != float64(SchemaVersion) || rec["source"] != "=HYPERLINK(\"x\")" || rec["contact_earlier"] != false || rec["offset_seconds"] != "90.5" {
		t.Errorf("JSON line %v", rec)
	}

	req.Format = "pdf"
	if err := WriteTrace(&b, req, res); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestTraceFileName(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	r := &TraceRequest{From: from, To: from.AddDate(0, 0, 14), Window: 15 * time.Minute, Format: XLSX, Location: time.UTC}
	if got, want := TraceFileName("雁塔/区", r), "雁塔_区_trace_20261101-20261114_15m.xlsx"; got != want {
		t.Errorf("TraceFileName = %q, want %q", got, want)
	}
}
