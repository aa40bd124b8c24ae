package citylink

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"passgate/store"
)

func TestParse_RoundTrip(t *testing.T) {
	at := time.UnixMilli(1_790_000_000_123)
	for _, r := range []*store.Revocation{
		{Seq: 7, Kind: store.RevokeSubject, Target: bytes.Repeat([]byte{1}, 16), Before: at, Reason: "红码", At: at},
		{Seq: 8, Kind: store.RevokePass, Target: bytes.Repeat([]byte{2}, 12), At: at},
		{Seq: 9, Kind: store.RevokeIssuer, Target: bytes.Repeat([]byte{3}, 8), Reason: "lost", At: at},
	} {
		b, err := Encode("d-1", r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.District != "d-1" || got.Seq != r.Seq || got.Kind != r.Kind || !bytes.Equal(got.Target, r.Target) ||
			!got.Before.Equal(r.Before) || got.Reason != r.Reason || !got.At.Equal(r.At) {
			t.Fatalf("%+v became %+v", r, got)
		}
	}
}

// Every malformed message is refused by the parser (what belongs to
// which district is judged by the store).
func TestParse_Hostile(t *testing.T) {
	pass12 := strings.Repeat("ab", 12)
	for name, msg := range map[string]string{
		"empty":           ``,
		"not json":        "\xff\xfe",
		"array":           `[]`,
		"null":            `null`,
		"two objects":     `{"v":1,"district":"d1","seq":1,"kind":2,"target":"` + pass12 + `","reason":"","at_ms":1}{}`,
		"unknown field":   `{"v":1,"district":"d1","seq":1,"kind":2,"target":"` + pass12 + `","reason":"","at_ms":1,"name":"张三"}`,
		"version":         `{"v":2,"district":"d1","seq":1,"kind":2,"target":"` + pass12 + `","reason":"","at_ms":1}`,
		"district":        `{"v":1,"district":"d1.>","seq":1,"kind":2,"target":"` + pass12 + `","reason":"","at_ms":1}`,
		"long district":   `{"v":1,"district":"` + strings.Repeat("d", 17) + `","seq":1,"kind":2,"target":"` + pass12 + `","reason":"","at_ms":1}`,
		"seq zero":        `{"v":1,"district":"d1","seq":0,"kind":2,"target":"` + pass12 + `","reason":"","at_ms":1}`,
		"kind":            `{"v":1,"district":"d1","seq":1,"kind":4,"target":"` + pass12 + `","reason":"","at_ms":1}`,
		"target size":     `{"v":1,"district":"d1","seq":1,"kind":3,"target":"` + pass12 + `","reason":"","at_ms":1}`,
		"upper hex":       `{"v":1,"district":"d1","seq":1,"kind":2,"target":"` + strings.ToUpper(pass12) + `","reason":"","at_ms":1}`,
		"no cutoff":       `{"v":1,"district":"d1","seq":1,"kind":1,"target":"` + strings.Repeat("ab", 16) + `","reason":"","at_ms":1}`,
		"stray cutoff":    `{"v":1,"district":"d1","seq":1,"kind":2,"target":"` + pass12 + `","before_ms":5,"reason":"","at_ms":1}`,
		"no time":         `{"v":1,"district":"d1","seq":1,"kind":2,"target":"` + pass12 + `","reason":""}`,
		"string seq":      `{"v":1,"district":"d1","seq":"1","kind":2,"target":"` + pass12 + `","reason":"","at_ms":1}`,
		"oversized":       `{"v":1,"district":"d1","seq":1,"kind":2,"target":"` + pass12 + `","reason":"` + strings.Repeat("x", MaxMessage) + `","at_ms":1}`,
		"negative cutoff": `{"v":1,"district":"d1","seq":1,"kind":1,"target":"` + strings.Repeat("ab", 16) + `","before_ms":-1,"reason":"","at_ms":1}`,
	} {
		if r, err := Parse([]byte(msg)); err == nil {
			t.Errorf("%s: parsed as %+v", name, r)
		}
	}
}

func TestSubjectDistrict(t *testing.T) {
	if d, err := SubjectDistrict(Subject("Dab-1")); err != nil || d != "Dab-1" {
		t.Fatalf("%q %v", d, err)
	}
	for _, s := range []string{"city.revocations", "city..revocations", "city.a.b.revocations", "city.a.trace", "x.a.revocations", "city.*.revocations"} {
		if d, err := SubjectDistrict(s); err == nil {
			t.Errorf("%s: district %q", s, d)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := Encode("d1", &store.Revocation{Seq: 1, Kind: store.RevokeSubject, Target: make([]byte, 16), Before: time.UnixMilli(5), At: time.UnixMilli(5)})
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		// What parses is well formed and encodes back within bounds.
		if len(r.Target) != map[store.RevocationKind]int{1: 16, 2: 12, 3: 8}[r.Kind] || r.Seq <= 0 {
			t.Fatalf("parsed a malformed record %+v", r)
		}
		if _, err := Encode(r.District, &store.Revocation{Seq: r.Seq, Kind: r.Kind, Target: r.Target, Before: r.Before, Reason: r.Reason, At: r.At}); err != nil && len(data) <= MaxMessage/2 {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
