package cityask

import (
	"strings"
	"testing"
)

type msg struct {
	V  int    `json:"v"`
	ID string `json:"id"`
}

// Hostile bytes: each is refused by the strict reading both ends use.
func TestDecodeStrict(t *testing.T) {
	var m msg
	if err := DecodeStrict([]byte(`{"v":1,"id":"x"}`), 64, &m); err != nil || m.V != 1 {
		t.Fatalf("a valid message: %v %+v", err, m)
	}
	for name, b := range map[string]string{
		"empty":         "",
		"not json":      "<html>",
		"unknown field": `{"v":1,"name":"张三"}`,
		"trailing":      `{"v":1}{"v":2}`,
		"trailing junk": `{"v":1} x`,
		"oversized":     `{"v":1,"id":"` + strings.Repeat("a", 64) + `"}`,
		"wrong type":    `{"v":"1"}`,
		"truncated":     `{"v":1`,
	} {
		if err := DecodeStrict([]byte(b), 64, &msg{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeStrict: nothing over the limit is ever accepted, and what is
// accepted is one object of the known fields.
func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"x"}`))
	f.Add([]byte(`{"v":1}{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m msg
		if err := DecodeStrict(b, 64, &m); err == nil && len(b) > 64 {
			t.Fatalf("accepted %d bytes", len(b))
		}
	})
}

func TestCheckDistricts(t *testing.T) {
	if err := CheckDistricts([]string{"d1", "d2"}); err != nil {
		t.Fatal(err)
	}
	many := make([]string, MaxDistricts+1)
	for i := range many {
		many[i] = "d" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for name, ds := range map[string][]string{
		"none": nil, "twice": {"d1", "d1"}, "subject wildcard": {"d1", "*"}, "subject tail": {"d1.>"},
		"too many": many,
	} {
		if err := CheckDistricts(ds); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidAskerAndID(t *testing.T) {
	if !ValidAsker("officer-1") || ValidAsker("x\n{") || ValidAsker("") || ValidAsker(strings.Repeat("a", 65)) {
		t.Fatal("asker")
	}
	id, err := NewID()
	if err != nil || !ValidID(id) || ValidID(strings.ToUpper(id)) {
		t.Fatalf("id %q %v", id, err)
	}
}
