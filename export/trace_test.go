package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func TestParseWindow(t *testing.T) {
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
// before (registered in the district) and one after, and a source that
// looks like a formula.
func traceResult() *store.TraceResult {
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	return &store.TraceResult{
		Checks: []store.TraceCheck{
			{At: at, Source: "南门", Decision: "allow", Reason: "ok", PassID: pass.ID{1}, ApplianceScanID: 7},
			{At: at.Add(time.Hour), Source: "=HYPERLINK(\"x\")", Decision: "deny", Reason: "expired", ApplianceScanID: 41, Epoch: bytes.Repeat([]byte{0xe1}, 16), Contacts: []store.TraceContact{
				{Subject: pass.Subject{0xab}, At: at.Add(50 * time.Minute), Offset: -10 * time.Minute, Decision: "allow", MaskedName: "张*丰", IDTail: "123X", ApplianceScanID: 40, Epoch: bytes.Repeat([]byte{0xe2}, 16)},
				{Subject: pass.Subject{0xcd}, At: at.Add(61*time.Minute + 500*time.Millisecond), Offset: 90500 * time.Millisecond, Decision: "deny", ApplianceScanID: 3},
			}},
		},
		Contacts: []store.TraceSummary{
			{Subject: pass.Subject{0xab}, Overlaps: 1, First: at.Add(50 * time.Minute), Last: at.Add(50 * time.Minute), Places: []string{"=HYPERLINK(\"x\")"}, MaskedName: "张*丰", IDTail: "123X"},
			{Subject: pass.Subject{0xcd}, Overlaps: 1, First: at.Add(61*time.Minute + 500*time.Millisecond), Last: at.Add(61*time.Minute + 500*time.Millisecond), Places: []string{"=HYPERLINK(\"x\")"}},
		},
		ContactRows: 2, Limit: store.MaxTraceRows,
	}
}

// joinRows is rows as one text, for comparing tables in one message.
func joinRows(rows [][]string) string {
	var s []string
	for _, r := range rows {
		s = append(s, strings.Join(r, "|"))
	}
	return strings.Join(s, "\n")
}

// traceTables writes res in each spreadsheet format and returns its three
// tables as read back by a CSV reader and from the workbook's sheets.
func traceTables(t *testing.T, req *TraceRequest, res *store.TraceResult) (csvTables, xlsxTables [3][][]string) {
	t.Helper()
	req.Format = CSV
	var b bytes.Buffer
	if err := WriteTrace(&b, req, res); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte(utf8BOM)) || !bytes.Contains(b.Bytes(), []byte("\r\n")) {
		t.Error("CSV without BOM or CRLF")
	}
	// The tables are separated by a blank line.
	for i, part := range strings.Split(strings.TrimPrefix(b.String(), utf8BOM), "\r\n\r\n") {
		if i > 2 {
			t.Fatalf("more than three CSV tables in %q", b.String())
		}
		rows, err := csv.NewReader(strings.NewReader(part)).ReadAll()
		if err != nil {
			t.Fatalf("CSV table %d: %v", i, err)
		}
		csvTables[i] = rows
	}

	req.Format = XLSX
	b.Reset()
	if err := WriteTrace(&b, req, res); err != nil {
		t.Fatal(err)
	}
	sheets := readXLSX(t, b.Bytes())
	for i, name := range []string{"trace", "contacts", "result"} {
		xlsxTables[i] = sheets[name]
	}
	return csvTables, xlsxTables
}

// traceJSONL writes res as JSON Lines and returns each line decoded.
func traceJSONL(t *testing.T, req *TraceRequest, res *store.TraceResult) []map[string]any {
	t.Helper()
	req.Format = JSONL
	var b bytes.Buffer
	if err := WriteTrace(&b, req, res); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestWriteTrace(t *testing.T) {
	req := &TraceRequest{Location: time.UTC}
	res := traceResult()
	want := [3][][]string{{
		{"check_time", "source", "check_decision", "check_reason", "pass_id", "contacts_truncated", "contacts_not_listed",
			"contact_subject", "contact_name", "contact_id_tail", "contact_time", "contact_earlier", "offset_seconds", "contact_decision",
			"appliance_scan_id", "epoch", "contact_appliance_scan_id", "contact_epoch"},
		{"2026-11-03T09:00:00.000Z", "南门", "allow", "ok", "010000000000000000000000", "false", "0", "", "", "", "", "", "", "", "7", "", "", ""},
		{"2026-11-03T10:00:00.000Z", "'=HYPERLINK(\"x\")", "deny", "expired", "", "false", "0", "ab000000000000000000000000000000", "张*丰", "123X", "2026-11-03T09:50:00.000Z", "true", "600", "allow", "41", "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", "40", "e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2"},
		{"2026-11-03T10:00:00.000Z", "'=HYPERLINK(\"x\")", "deny", "expired", "", "false", "0", "cd000000000000000000000000000000", "", "", "2026-11-03T10:01:00.500Z", "false", "90.5", "deny", "41", "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", "3", ""},
	}, {
		{"contact_subject", "contact_name", "contact_id_tail", "overlaps", "first_time", "last_time", "places"},
		{"ab000000000000000000000000000000", "张*丰", "123X", "1", "2026-11-03T09:50:00.000Z", "2026-11-03T09:50:00.000Z", "'=HYPERLINK(\"x\")"},
		{"cd000000000000000000000000000000", "", "", "1", "2026-11-03T10:01:00.500Z", "2026-11-03T10:01:00.500Z", "'=HYPERLINK(\"x\")"},
	}, {
		{"truncated", "row_limit", "checks", "checks_not_listed", "contact_rows", "contact_rows_not_listed", "contacts", "note"},
		{"false", strconv.Itoa(store.MaxTraceRows), "2", "0", "2", "0", "2", traceResultRow(res)[7]},
	}}
	csvTables, xlsxTables := traceTables(t, req, res)
	for i := range want {
		if g, w := joinRows(csvTables[i]), joinRows(want[i]); g != w {
			t.Errorf("CSV table %d:\n%s\nwant\n%s", i, g, w)
		}
		if g, w := joinRows(xlsxTables[i]), joinRows(want[i]); g != w {
			t.Errorf("XLSX sheet %d:\n%s\nwant\n%s", i, g, w)
		}
	}
	if !strings.Contains(want[2][1][7], "Complete") {
		t.Errorf("note of a complete result: %q", want[2][1][7])
	}

	lines := traceJSONL(t, req, res)
	if len(lines) != 6 {
		t.Fatalf("%d JSON lines, want 6", len(lines))
	}
	rec := lines[2]
	if rec["v"] != float64(SchemaVersion) || rec["type"] != "check" || rec["source"] != "=HYPERLINK(\"x\")" || rec["contact_earlier"] != false ||
		rec["offset_seconds"] != 90.5 || rec["contacts_truncated"] != false || rec["contacts_not_listed"] != float64(0) {
		t.Errorf("JSON line %v", rec)
	}
	if c := lines[3]; c["type"] != "contact" || c["contact_name"] != "张*丰" || c["contact_id_tail"] != "123X" || c["overlaps"] != float64(1) {
		t.Errorf("contact line %v", c)
	}
	if r := lines[5]; r["type"] != "result" || r["truncated"] != false || r["contact_rows_not_listed"] != float64(0) {
		t.Errorf("result line %v", r)
	}

	req.Format = "pdf"
	var b bytes.Buffer
	if err := WriteTrace(&b, req, res); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestTraceFileName(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	r := &TraceRequest{From: from, To: from.AddDate(0, 0, 14), Window: 15 * time.Minute, Format: XLSX, Location: time.UTC}
	if got, want := TraceFileName("雁塔/区", r), "雁塔_区_trace_20261101-20261114_15m.xlsx"; got != want {
		t.Errorf("TraceFileName = %q, want %q", got, want)
	}
}

// logTraceDay logs, from day0, a check of person at "东门" nobody was
// near, then checks hours apart at "南门" with per others checked within
// five minutes of each, and returns the query of person's day.
func logTraceDay(t *testing.T, db *store.DB, person pass.Subject, checks, per int) *TraceRequest {
	t.Helper()
	ctx := context.Background()
	log := func(s *store.Scan) {
		if err := db.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	log(&store.Scan{At: day0, Source: "东门", Decision: "allow", Reason: "ok", Subject: person})
	for i := range checks {
		at := day0.Add(time.Duration(i+1) * time.Hour)
		log(&store.Scan{At: at, Source: "南门", Decision: "allow", Reason: "ok", Subject: person})
		for k := range per {
			log(&store.Scan{At: at.Add(time.Duration(k-per/2) * 10 * time.Second), Source: "南门", Decision: "allow", Reason: "ok",
				Subject: pass.Subject{0x77, byte(i), byte(k)}})
		}
	}
	return &TraceRequest{Subject: person, From: day0, To: day0.Add(24 * time.Hour), Window: 5 * time.Minute, Location: time.UTC}
}

// TestWriteTraceTruncated: a trace cut at its row limit says so in every
// format: each check whose contacts were cut (here three lose all of
// theirs) is marked with how many are missing, unlike the check nobody
// was near, and the result row counts what is not listed.
func TestWriteTraceTruncated(t *testing.T) {
	db := openDB(t)
	req := logTraceDay(t, db, pass.Subject{0x42}, 5, 20)
	req.Limit = 40
	res, err := db.Trace(context.Background(), req.Query())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || len(res.Checks) != 6 || res.ContactRows != 40 {
		t.Fatalf("fixture: truncated=%v checks=%d rows=%d", res.Truncated, len(res.Checks), res.ContactRows)
	}
	// Per check: time, contacts_truncated, contacts_not_listed, rows.
	h := func(i int) string {
		return day0.Add(time.Duration(i) * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	wantChecks := []string{
		h(0) + " false 0 1", // nobody near
		h(1) + " false 0 20", h(2) + " false 0 20",
		h(3) + " true 20 1", h(4) + " true 20 1", h(5) + " true 20 1",
	}
	perCheck := func(rows [][]string, time, cut, omitted int) string {
		var out []string
		count := map[string]int{}
		var order []string
		for _, r := range rows {
			k := r[time] + " " + r[cut] + " " + r[omitted]
			if count[k] == 0 {
				order = append(order, k)
			}
			count[k]++
		}
		for _, k := range order {
			out = append(out, fmt.Sprintf("%s %d", k, count[k]))
		}
		return strings.Join(out, "\n")
	}
	csvTables, xlsxTables := traceTables(t, req, res)
	for name, tables := range map[string][3][][]string{"CSV": csvTables, "XLSX": xlsxTables} {
		if g := perCheck(tables[0][1:], 0, 5, 6); g != strings.Join(wantChecks, "\n") {
			t.Errorf("%s checks:\n%s\nwant\n%s", name, g, strings.Join(wantChecks, "\n"))
		}
		if len(tables[1]) != 41 {
			t.Errorf("%s: %d contact rows, want the header and 40", name, len(tables[1]))
		}
		if r := tables[2]; len(r) != 2 || strings.Join(r[1][:7], " ") != "true 40 6 0 40 60 40" || !strings.Contains(r[1][7], "60") {
			t.Errorf("%s result table %q", name, r)
		}
	}

	var rows [][]string
	var result map[string]any
	for _, l := range traceJSONL(t, req, res) {
		switch l["type"] {
		case "check":
			rows = append(rows, []string{l["check_time"].(string), fmt.Sprint(l["contacts_truncated"]), fmt.Sprint(l["contacts_not_listed"])})
		case "result":
			result = l
		}
	}
	if g := perCheck(rows, 0, 1, 2); g != strings.Join(wantChecks, "\n") {
		t.Errorf("JSON Lines checks:\n%s\nwant\n%s", g, strings.Join(wantChecks, "\n"))
	}
	if result == nil || result["truncated"] != true || result["contact_rows_not_listed"] != float64(60) || result["checks_not_listed"] != float64(0) {
		t.Errorf("JSON Lines result %v", result)
	}
}
