package export

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"passgate/store"
)

// FuzzRequest feeds the export form's fields (as typed by an admin or
// passed to the CLI) through ParseTime and Validate: nothing panics, and
// a request that passes is one Run can serve and whose file name and
// Content-Disposition are safe.
func FuzzRequest(f *testing.F) {
	for _, c := range [][7]string{
		{"scans", "csv", "2026-11-01", "2026-12-01", "南门", "deny", "expired"},
		{"audit", "xlsx", "2026-11-01", "2026-11-02T00:00:00+08:00", "", "", "login"},
		{"audit", "jsonl", "2026-11-01", "2026-12-01", "", "", "登录"},
		{"audit", "csv", "2026-11-01", "2026-12-01", "x", "", ""},
		{"status", "csv", "2026-12-01", "2026-11-01", "", "", "=cmd"},
		{"passes", "xls", "2020-01-01", "2026-01-01", "", "", ""},
		{"audit\x00", "csv\r\n", "2026-02-30", "9999-12-31T23:59:59Z", "", "maybe", strings.Repeat("a", 200)},
	} {
		f.Add(c[0], c[1], c[2], c[3], c[4], c[5], c[6])
	}
	f.Fuzz(func(t *testing.T, kind, format, from, to, source, decision, reason string) {
		r := &Request{Kind: Kind(kind), Format: Format(format), Source: source, Decision: decision, Reason: reason, Location: shanghai}
		var err error
		if r.From, err = ParseTime("from", from, shanghai); err != nil {
			return
		}
		if r.To, err = ParseTime("to", to, shanghai); err != nil {
			return
		}
		if r.Validate() != nil {
			return
		}
		switch {
		case !slices.Contains(Kinds, r.Kind), !slices.Contains(Formats, r.Format):
			t.Fatalf("accepted kind %q format %q", r.Kind, r.Format)
		case !r.From.Before(r.To), r.To.Sub(r.From) > MaxWindow:
			t.Fatalf("accepted range %v – %v", r.From, r.To)
		case r.Kind == KindAudit && r.Reason != "" && !slices.Contains(store.AuditActions, r.Reason):
			t.Fatalf("accepted audit action %q", r.Reason)
		case r.Kind != KindScans && (r.Source != "" || r.Decision != ""):
			t.Fatalf("accepted a scan filter for %s", r.Kind)
		}
		name := FileName("雁塔区", r)
		if strings.ContainsAny(name, "/\\\x00\r\n") {
			t.Fatalf("file name %q", name)
		}
		if cd := ContentDisposition(name); strings.ContainsAny(cd, "\r\n\x00") {
			t.Fatalf("Content-Disposition %q", cd)
		}
	})
}

// FuzzJSONValue feeds stored audit details (which a hub also receives
// from its appliances) through the JSON Lines detail encoding: the
// output is always one valid JSON value, the same value as the input
// when that was JSON, its text as a string otherwise, and never
// HTML-escaped.
func FuzzJSONValue(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"reason":"\u003cb\u003e"}`, `"=HYPERLINK(\"x\")"`, `{"n":12345678901234567890}`,
		`{"a":1} {"b":2}`, `{"a":`, "\xff", `[1,"<",null]`, `{"a":"\\u003c"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONValue(nil, s)
		if !json.Valid(out) {
			t.Fatalf("%q gave invalid JSON %q", s, out)
		}
		var got any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		var want any = s
		switch {
		case s == "":
			want = nil
		case json.Valid([]byte(s)):
			if err := json.Unmarshal([]byte(s), &want); err != nil {
				t.Fatal(err)
			}
		default:
			// Not JSON: kept as text (invalid UTF-8 becomes U+FFFD).
			want = string([]rune(s))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q gave %q: %v, want %v", s, out, got, want)
		}
		text := jsonText(got)
		for _, c := range []string{"<", ">", "&"} {
			if strings.Contains(text, c) && !strings.Contains(string(out), c) {
				t.Fatalf("%q gave HTML-escaped %q", s, out)
			}
		}
	})
}

// jsonText is every string (keys too) of a decoded JSON value, joined.
func jsonText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		var b strings.Builder
		for _, e := range v {
			b.WriteString(jsonText(e))
		}
		return b.String()
	case map[string]any:
		var b strings.Builder
		for k, e := range v {
			b.WriteString(k + jsonText(e))
		}
		return b.String()
	}
	return ""
}
