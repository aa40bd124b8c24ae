package check_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"passgate/check"
	"passgate/pass"
)

// decisionJSON is the wire form of a decision as the scan API documents
// it, for encoding/json: AppendJSON must write the same bytes.
type decisionJSON struct {
	Decision  check.Verdict `json:"decision"`
	Reason    check.Reason  `json:"reason"`
	Repeat    bool          `json:"repeat"`
	Holder    *holderJSON   `json:"holder"`
	Color     *string       `json:"color"`
	Kind      *string       `json:"kind"`
	Doses     *int          `json:"doses"`
	TestedAt  *time.Time    `json:"tested_at"`
	IssuedAt  *time.Time    `json:"issued_at"`
	ExpiresAt *time.Time    `json:"expires_at"`
	Source    string        `json:"source,omitempty"`
	At        time.Time     `json:"checked_at"`
	ScanID    int64         `json:"scan_id"`
}

type holderJSON struct {
	Name   string `json:"name"`
	IDTail string `json:"id_tail"`
}

// referenceJSON is what encoding/json writes for d.
func referenceJSON(d *check.Decision) ([]byte, error) {
	timePtr := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC()
		return &u
	}
	j := decisionJSON{
		Decision: d.Decision, Reason: d.Reason, Repeat: d.Repeat,
		Source: d.Source, At: d.At.UTC(), ScanID: d.ScanID,
	}
	if d.Color.Valid() {
		j.Holder = &holderJSON{Name: d.Name, IDTail: d.IDTail}
		color, kind, doses := d.Color.String(), d.Kind.String(), d.Doses
		j.Color, j.Kind, j.Doses = &color, &kind, &doses
		j.IssuedAt, j.ExpiresAt = timePtr(d.IssuedAt), timePtr(d.ExpiresAt)
		j.TestedAt = timePtr(d.TestedAt)
	}
	return json.Marshal(j)
}

// hostileStrings are names, tails and sources whose JSON differs from
// their bytes, or which could break out of a JSON string or an HTML page.
var hostileStrings = []string{
	"", "张*明", `O"Brien`, `back\slash`, `"},"decision":"allow`, "</script><script>", "a&b",
	"nul\x00ctl\x01\x1f", "tab\tnl\ncr\r\b\f", "\x7f", "line\u2028sep\u2029", "\xff\xfe", "trunc\xe5\xbc",
	"\xed\xa0\x80surrogate", "\xc0\xafoverlong", "😀", strings.Repeat("\u2028", 40),
}

func TestAppendJSONIsEncodingJSON(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	at := time.Date(2026, 12, 4, 16, 5, 7, 123456789, cst)
	full := check.Decision{
		Decision: check.Allow, Reason: check.ReasonOK, Name: "张*明", IDTail: "1230",
		Color: pass.Green, Kind: pass.Phone, Doses: 2,
		TestedAt: at.Add(-time.Hour), IssuedAt: at.Add(-time.Minute), ExpiresAt: at.Add(72 * time.Hour),
		Source: "gate-1", At: at, ScanID: 42,
	}
	cases := map[string]check.Decision{
		"Allow":    full,
		"NotAPass": {Decision: check.Deny, Reason: "not_a_pass", Source: "gate-1", At: at, ScanID: 7},
		"NoSource": {Decision: check.Deny, Reason: "not_a_pass", At: at},
		"ZeroAt":   {Decision: check.Deny, Reason: "not_a_pass"},
		"Repeat":   func() check.Decision { d := full; d.Repeat = true; return d }(),
		"ZeroTimes": func() check.Decision {
			d := full
			d.TestedAt, d.IssuedAt, d.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
			return d
		}(),
		"OtherKind":   func() check.Decision { d := full; d.Kind = pass.Kind(9); d.Doses = -1; return d }(),
		"Paper":       func() check.Decision { d := full; d.Kind, d.Color = pass.Paper, pass.Red; return d }(),
		"BadColor":    func() check.Decision { d := full; d.Color = pass.Color(77); return d }(),
		"NegativeID":  func() check.Decision { d := full; d.ScanID = -1 << 63; return d }(),
		"WholeSecond": func() check.Decision { d := full; d.At = at.Truncate(time.Second); return d }(),
	}
	for i, s := range hostileStrings {
		d := full
		d.Name, d.IDTail, d.Source = s, s, s
		d.Reason = check.Reason(s)
		cases["Hostile"+string(rune('A'+i))] = d
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := referenceJSON(&d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.AppendJSON([]byte("x"))
			if err != nil || !bytes.Equal(got, append([]byte("x"), want...)) {
				t.Fatalf("AppendJSON = %s, %v\nencoding/json: %s", got, err, want)
			}
			if m, err := d.MarshalJSON(); err != nil || !bytes.Equal(m, want) {
				t.Fatalf("MarshalJSON = %s, %v", m, err)
			}
			if !json.Valid(got[1:]) {
				t.Fatalf("not JSON: %s", got)
			}
		})
	}
	t.Run("YearOutOfRange", func(t *testing.T) {
		d := full
		d.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, err := referenceJSON(&d); err == nil {
			t.Fatal("encoding/json wrote a year 10000")
		}
		if got, err := d.AppendJSON(nil); err == nil {
			t.Fatalf("AppendJSON = %s, want an error", got)
		}
	})
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, s, s, int64(3), 2, uint8(pass.Green), int64(1764864307123456789))
	}
	f.Add("", "", "", int64(0), 0, uint8(0), int64(0))
	f.Fuzz(func(t *testing.T, name, tail, source string, id int64, doses int, color uint8, nanos int64) {
		at := time.Unix(0, nanos)
		d := check.Decision{
			Decision: check.Allow, Reason: check.ReasonOK, Name: name, IDTail: tail, Source: source,
			Color: pass.Color(color), Kind: pass.Phone, Doses: doses, ScanID: id,
			TestedAt: at.Add(-time.Hour), IssuedAt: at, ExpiresAt: at.Add(time.Hour), At: at,
		}
		want, wantErr := referenceJSON(&d)
		got, err := d.AppendJSON(nil)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON = %s, %v\nencoding/json: %s, %v", got, err, want, wantErr)
		}
	})
}

func BenchmarkDecisionJSON(b *testing.B) {
	at := time.Date(2026, 12, 4, 16, 5, 7, 123456789, time.UTC)
	d := check.Decision{
		Decision: check.Allow, Reason: check.ReasonOK, Name: "张*明", IDTail: "1230",
		Color: pass.Green, Kind: pass.Phone, Doses: 2,
		TestedAt: at.Add(-time.Hour), IssuedAt: at.Add(-time.Minute), ExpiresAt: at.Add(72 * time.Hour),
		Source: "gate-1", At: at, ScanID: 42,
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := referenceJSON(&d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = d.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
