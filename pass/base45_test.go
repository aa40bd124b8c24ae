package pass

import (
	"bytes"
	"strings"
	"testing"
)

func TestBase45Vectors(t *testing.T) {
	t.Parallel()
	// RFC 9285 section 4.
	for _, tc := range []struct{ in, out string }{
		{"AB", "BB8"},
		{"Hello!!", "%69 VD92EX0"},
		{"base-45", "UJCLQE7W581"},
		{"ietf!", "QED8WEX0"},
		{"", ""},
		{"\x00", "00"},
		{"\xff\xff", "FGW"},
		{"\xff", "U5"},
	} {
		if got := string(appendBase45(nil, []byte(tc.in))); got != tc.out {
			t.Errorf("encode(%q) = %q, want %q", tc.in, got, tc.out)
		}
		got, err := appendBase45Decode(nil, tc.out)
		if err != nil || string(got) != tc.in {
			t.Errorf("decode(%q) = %q, %v", tc.out, got, err)
		}
		if base45EncodedLen(len(tc.in)) != len(tc.out) {
			t.Errorf("base45EncodedLen(%d) = %d", len(tc.in), base45EncodedLen(len(tc.in)))
		}
	}
}

func TestBase45Invalid(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"GGW",     // 65536, the RFC's own example of an invalid triplet
		":::",     // 91124
		"V5",      // 256 in a final pair
		"::",      // 2024
		"0",       // dangling
		"0000",    // dangling after a triplet
		"aaa",     // lower case is not Base45
		"AB\x00",  // NUL
		"AB\xff",  // not ASCII
		"A=B",     // '=' is not in the alphabet
		"\u00c0A", // a two-byte rune
		"AB\n",    // new line
	} {
		if b, err := appendBase45Decode(nil, s); err == nil {
			t.Errorf("decode(%q) = %x, want an error", s, b)
		}
	}
	// Every character of the alphabet is valid, and nothing else.
	for c := range 256 {
		_, err := appendBase45Decode(nil, string([]byte{byte(c), '0'}))
		if ok := strings.IndexByte(base45Alphabet, byte(c)) >= 0; ok != (err == nil) {
			t.Errorf("char %q: err = %v", byte(c), err)
		}
	}
}

// FuzzBase45 checks that decoding inverts encoding and that decoding
// arbitrary text never panics and only accepts canonical encodings.
func FuzzBase45(f *testing.F) {
	f.Add([]byte("ietf!"), "QED8WEX0")
	f.Add([]byte{0xff, 0xff, 0xff}, "FGWU5")
	f.Add([]byte{}, "GGW")
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		enc := appendBase45(nil, data)
		dec, err := appendBase45Decode(nil, string(enc))
		if err != nil || !bytes.Equal(dec, data) {
			t.Fatalf("decode(encode(%x)) = %x, %v", data, dec, err)
		}
		if out, err := appendBase45Decode(nil, text); err == nil {
			// One text, one decoding: re-encoding gives the text back.
			if re := string(appendBase45(nil, out)); re != text {
				t.Fatalf("decode(%q) = %x re-encodes to %q", text, out, re)
			}
		}
	})
}
