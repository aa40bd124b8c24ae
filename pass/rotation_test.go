package pass

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRotationRoundTrip(t *testing.T) {
	t.Parallel()
	old, nw := mustKey(t, AlgEdDSA, "old root"), mustKey(t, AlgES256, "new root")
	b, err := SignRotation(testDistrict, old, nw, testNow)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRotation(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if r.District != testDistrict || r.Old.KID != old.Public().KID || r.New.KID != nw.Public().KID || !r.At.Equal(testNow) {
		t.Fatalf("rotation %+v", r)
	}
	if _, err := SignRotation(testDistrict, old, old, testNow); err == nil {
		t.Fatal("a rotation to the same root was signed")
	}
}

func TestRotationHostile(t *testing.T) {
	t.Parallel()
	old, nw, other := mustKey(t, AlgEdDSA, "old root"), mustKey(t, AlgEdDSA, "new root"), mustKey(t, AlgEdDSA, "other")
	b, _ := SignRotation(testDistrict, old, nw, testNow)
	s := string(b)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	body := strings.Join(lines[:5], "\n") + "\n"
	// Signed by the new key alone: it signs in the old root's place too.
	sigNew := strings.TrimPrefix(lines[6], "signature-new ")
	newOnly := body + "signature-old " + sigNew + "\nsignature-new " + sigNew + "\n"
	// A record made with other in the new root's place, then the new
	// line swapped back: neither signature matches.
	swapped, _ := SignRotation(testDistrict, old, other, testNow)
	sw := strings.Replace(string(swapped), fmt.Sprintf("new EdDSA %x", other.Public().Raw), fmt.Sprintf("new EdDSA %x", nw.Public().Raw), 1)
	cases := map[string]string{
		"empty":              "",
		"no final LF":        strings.TrimSuffix(s, "\n"),
		"CRLF":               strings.ReplaceAll(s, "\n", "\r\n"),
		"extra line":         s + "x\n",
		"version 2":          strings.Replace(s, "rotation 1", "rotation 2", 1),
		"district changed":   strings.Replace(s, "district "+testDistrict, "district 110101", 1),
		"time changed":       strings.Replace(s, "\nat ", "\nat 1", 1),
		"time leading zero":  strings.Replace(s, "\nat ", "\nat 0", 1),
		"new key only":       newOnly,
		"new root swapped":   sw,
		"old signature gone": strings.Replace(s, lines[5]+"\n", "", 1),
		"same root":          strings.Replace(s, lines[3], strings.Replace(lines[2], "old ", "new ", 1), 1),
		"upper-case hex":     strings.Replace(s, lines[6], strings.ToUpper(lines[6]), 1),
		"too long":           s + strings.Repeat("x", MaxRotationLen),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if r, err := ParseRotation([]byte(in)); !errors.Is(err, ErrRotation) {
				t.Fatalf("accepted or wrong error: %+v %v", r, err)
			}
		})
	}
}

// FuzzParseRotation: never panics; what it accepts has two different
// keys and a district.
func FuzzParseRotation(f *testing.F) {
	b, _ := SignRotation(testDistrict, mustKey(f, AlgEdDSA, "old"), mustKey(f, AlgEdDSA, "new"), testNow)
	f.Add(b)
	f.Add([]byte(rotationHeader + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseRotation(in)
		if err != nil {
			if !errors.Is(err, ErrRotation) {
				t.Fatalf("error %v does not wrap ErrRotation", err)
			}
			return
		}
		if r.District == "" || r.Old.KID == r.New.KID {
			t.Fatalf("accepted %+v", r)
		}
	})
}
