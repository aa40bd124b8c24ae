package pass

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testAnchor(t testing.TB) ([]byte, *PrivateKey, *PrivateKey) {
	t.Helper()
	ed, es := mustKey(t, AlgEdDSA, "anchor root ed"), mustKey(t, AlgES256, "anchor root es")
	b, err := MarshalAnchor(testDistrict, "徐汇区", []*PrivateKey{ed, es})
	if err != nil {
		t.Fatal(err)
	}
	return b, ed, es
}

func TestAnchorRoundTrip(t *testing.T) {
	t.Parallel()
	b, ed, es := testAnchor(t)
	a, err := ParseAnchor(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if a.District != testDistrict || a.Name != "徐汇区" || len(a.Roots) != 2 ||
		a.Roots[0].KID != ed.Public().KID || a.Roots[1].KID != es.Public().KID {
		t.Fatalf("anchor %+v", a)
	}
	// The fingerprint starts with the KeyID, and reads back from the
	// grouped form and from colon-separated upper case.
	fp := ed.Public().Fingerprint()
	if !bytes.Equal(fp[:8], ed.Public().KID[:]) {
		t.Fatal("the fingerprint does not extend the KeyID")
	}
	for _, s := range []string{FormatFingerprint(fp), strings.ToUpper(strings.ReplaceAll(FormatFingerprint(fp), " ", ":"))} {
		if got, err := ParseFingerprint(s); err != nil || got != fp {
			t.Fatalf("ParseFingerprint(%q) = %x, %v", s, got, err)
		}
	}
	// A file that went through Windows (CRLF, a byte-order mark) is the
	// same file.
	crlf := append([]byte("\ufeff"), bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))...)
	if _, err := ParseAnchor(crlf); err != nil {
		t.Fatalf("CRLF: %v", err)
	}
	// Unnamed district, one root.
	one, err := MarshalAnchor("xa", "", []*PrivateKey{ed})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := ParseAnchor(one); err != nil || a.Name != "" || len(a.Roots) != 1 {
		t.Fatalf("one root: %+v %v", a, err)
	}
}

func TestAnchorHostile(t *testing.T) {
	t.Parallel()
	b, ed, _ := testAnchor(t)
	s := string(b)
	other := mustKey(t, AlgEdDSA, "other")
	otherFile, _ := MarshalAnchor(testDistrict, "", []*PrivateKey{other})
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	drop := func(prefix string) string {
		var out []string
		for _, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n") + "\n"
	}
	replaceFirst := func(old, new string) string { return strings.Replace(s, old, new, 1) }
	sig0 := lines[len(lines)-2]
	edHex := strings.Fields(lines[5])[2]
	cases := map[string]string{
		"empty":                 "",
		"only comments":         "# nothing\n\n",
		"no header":             strings.Join(lines[2:3], "\n"),
		"version 2":             replaceFirst("passgate-trust-anchor 1", "passgate-trust-anchor 2"),
		"header twice":          s + "passgate-trust-anchor 1\n",
		"over the size limit":   s + "#" + strings.Repeat("x", MaxAnchorLen),
		"line too long":         "#" + strings.Repeat("x", maxAnchorLine+1) + "\n" + s,
		"no district":           drop("district "),
		"empty district":        replaceFirst("district "+testDistrict, "district "),
		"district with control": replaceFirst("district "+testDistrict, "district 31\x1b0115"),
		"district with bidi":    replaceFirst("district "+testDistrict, "district 31\u202e0115"),
		"district too long":     replaceFirst("district "+testDistrict, "district "+strings.Repeat("9", 65)),
		"name too long":         replaceFirst("name 徐汇区", "name "+strings.Repeat("区", 22)),
		"district changed":      replaceFirst("district "+testDistrict, "district 310116"),
		"name changed":          replaceFirst("name 徐汇区", "name 黄浦区"),
		"name dropped":          drop("name "),
		"no roots":              drop("root "),
		"unknown alg":           replaceFirst("root EdDSA", "root RS256"),
		"alg lower case":        replaceFirst("root EdDSA", "root eddsa"),
		"key upper case":        replaceFirst(edHex, strings.ToUpper(edHex)),
		"key short":             replaceFirst(edHex, edHex[:62]),
		"key not hex":           replaceFirst(edHex, "zz"+edHex[2:]),
		"P-256 off curve":       replaceFirst("root ES256 0", "root ES256 9"),
		"fingerprint missing":   drop("fingerprint "),
		"fingerprint wrong":     replaceFirst("\nfingerprint ", "\nfingerprint 00"),
		"root listed twice":     strings.Replace(s, lines[5]+"\n"+lines[6]+"\n", lines[5]+"\n"+lines[6]+"\n"+lines[5]+"\n"+lines[6]+"\n", 1),
		"signature missing":     strings.Replace(s, sig0+"\n", "", 1),
		"signature twice":       s + sig0 + "\n",
		"signature flipped":     strings.Replace(s, sig0, sig0[:len(sig0)-1]+string("01"[sig0[len(sig0)-1]&1]), 1),
		"signature by stranger": s + strings.Split(strings.TrimSuffix(string(otherFile), "\n"), "\n")[len(strings.Split(string(otherFile), "\n"))-2] + "\n",
		"signature kid short":   replaceFirst("signature "+ed.Public().KID.String(), "signature "+ed.Public().KID.String()[:14]),
		"line after signatures": s + "district xa\n",
		"unknown keyword":       strings.Replace(s, "root ", "comment x\nroot ", 1),
		"value-less keyword":    strings.Replace(s, "root ", "district\nroot ", 1),
		"NUL":                   replaceFirst("\ndistrict ", "\ndistrict \x00"),
		"CR alone":              strings.ReplaceAll(s, "\n", "\r"),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if a, err := ParseAnchor([]byte(in)); !errors.Is(err, ErrAnchor) {
				t.Fatalf("accepted or wrong error: %+v %v", a, err)
			}
		})
	}
	for _, fp := range []string{"", "abc", strings.Repeat("0", 63), strings.Repeat("0", 65), strings.Repeat("g", 64), strings.Repeat("0 ", 200)} {
		if _, err := ParseFingerprint(fp); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", fp)
		}
	}
}

// FuzzParseAnchor: the parser never panics, and what it accepts has
// between 1 and maxAnchorRoots roots, each with a matching fingerprint,
// and encodes again (with the keys' own signatures) to a file it accepts.
func FuzzParseAnchor(f *testing.F) {
	b, _, _ := testAnchor(f)
	f.Add(b)
	f.Add([]byte(anchorHeader + "\ndistrict x\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := ParseAnchor(in)
		if err != nil {
			if !errors.Is(err, ErrAnchor) {
				t.Fatalf("error %v does not wrap ErrAnchor", err)
			}
			return
		}
		if len(a.Roots) == 0 || len(a.Roots) > maxAnchorRoots || a.District == "" {
			t.Fatalf("accepted %+v", a)
		}
		if err := checkText("district", a.District, 1, maxDistrictLen); err != nil {
			t.Fatal(err)
		}
	})
}
