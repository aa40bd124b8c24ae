package web

import (
	"strings"
	"testing"
)

// The detail flattener reads bytes from the database file, which a
// forger may have written: whatever it gets, it returns pairs within
// the bounds, or the bytes whole as one value.
func FuzzAuditDetailPairs(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"a":1}`, `{"a":{"b":[1,2,{"c":null}]}}`, `[1,2]`, `"x"`, `{"a":1}{"b":2}`,
		`{"a":` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `}`, "{\"\xff\":1}", `{"a":1`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs := auditDetailPairs(b)
		if len(pairs) > maxDetailPairs+1 {
			t.Fatalf("%d pairs", len(pairs))
		}
		for _, p := range pairs {
			if len(p.Value) > maxDetailBytes*3 {
				t.Fatalf("value of %d bytes", len(p.Value))
			}
		}
	})
}

// Hostile details each give a bounded answer.
func TestAuditDetailPairs(t *testing.T) {
	deep := `{"a":` + strings.Repeat(`{"a":`, 20) + `1` + strings.Repeat(`}`, 21)
	wide := `{` + strings.Repeat(`"k":1,`, 500) + `"k":1}`
	cases := []struct {
		in    string
		pairs int
		first string // the first pair's key
	}{
		{`{"old":{"colors":"green"},"new":{"colors":"red"}}`, 2, "old.colors"},
		{deep, 1, ""},
		{wide, 1, ""},
		{`[1,2]`, 1, ""},
		{`{"a":1} trailing`, 1, ""},
		{`not json`, 1, ""},
		{``, 0, ""},
	}
	for _, c := range cases {
		got := auditDetailPairs([]byte(c.in))
		if len(got) != c.pairs || (len(got) > 0 && got[0].Key != c.first) {
			t.Errorf("%.40q: %d pairs %+v", c.in, len(got), got)
		}
	}
}
