package pass

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

// The hand-written encoders must agree with the library's deterministic
// encoding.
func TestAppendHeadMatchesLibrary(t *testing.T) {
	t.Parallel()
	for _, v := range []int64{0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -24, -25, -256, -257, -65536, -65537, math.MinInt64} {
		want, err := encMode.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendInt(nil, v); !bytes.Equal(got, want) {
			t.Errorf("appendInt(%d) = %x, want %x", v, got, want)
		}
		r := cborReader{b: want}
		if got, err := r.int(); err != nil || got != v || r.end() != nil {
			t.Errorf("read int %d: %d, %v", v, got, err)
		}
	}
	for _, n := range []int{0, 23, 24, 255, 256, 70000} {
		b := bytes.Repeat([]byte{7}, n)
		want, _ := encMode.Marshal(b)
		if got := appendBytes(nil, b); !bytes.Equal(got, want) {
			t.Errorf("appendBytes(%d bytes) differs", n)
		}
	}
}

func TestSigStructureMatchesLibrary(t *testing.T) {
	t.Parallel()
	prot, payload := []byte{0xa2, 0x01, 0x27, 0x04, 0x48, 1, 2, 3, 4, 5, 6, 7, 8}, bytes.Repeat([]byte{9}, 300)
	want, err := encMode.Marshal([]any{"Signature1", prot, []byte{}, payload})
	if err != nil {
		t.Fatal(err)
	}
	if got := appendSigStructure(nil, prot, payload); !bytes.Equal(got, want) {
		t.Errorf("Sig_structure = %x, want %x", got, want)
	}
}

// TestClaimsEncoding checks the claims bytes against an
// independent encoding of the same map and decodes them back.
func TestClaimsEncoding(t *testing.T) {
	t.Parallel()
	c := sampleClaims(Phone)
	got, err := encodeClaims(&c)
	if err != nil {
		t.Fatal(err)
	}
	outer, _ := sampleClaimsMaps()
	if want := claimsMap(t, outer); !bytes.Equal(got, want) {
		t.Errorf("claims = %x\nwant     %x", got, want)
	}
	var back Claims
	if err := decodeClaims(got, &back); err != nil {
		t.Fatal(err)
	}
	if !claimsEqual(back, c) {
		t.Errorf("decoded %+v, want %+v", back, c)
	}
	// Without a test the key is absent, not zero.
	c.TestedAt = time.Time{}
	got, err = encodeClaims(&c)
	if err != nil {
		t.Fatal(err)
	}
	outer, private := sampleClaimsMaps()
	delete(private, privTestedAt)
	if want := claimsMap(t, outer); !bytes.Equal(got, want) {
		t.Errorf("claims without test = %x\nwant                 %x", got, want)
	}
	back = Claims{}
	if err := decodeClaims(got, &back); err != nil || !back.TestedAt.IsZero() {
		t.Errorf("decoded tested-at %v, %v", back.TestedAt, err)
	}
}

func TestReaderRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		b    []byte
		read func(r *cborReader) error
	}{
		{"indefinite map", []byte{0xbf, 0xff}, func(r *cborReader) error { _, err := r.container(majorMap); return err }},
		{"reserved ai", []byte{0x1c}, func(r *cborReader) error { _, err := r.uint(); return err }},
		{"truncated uint", []byte{0x19, 0x01}, func(r *cborReader) error { _, err := r.uint(); return err }},
		{"truncated bytes", []byte{0x45, 1, 2}, func(r *cborReader) error { _, err := r.bytes(); return err }},
		{"huge bytes length", []byte{0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(r *cborReader) error { _, err := r.bytes(); return err }},
		{"int beyond int64", []byte{0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0}, func(r *cborReader) error { _, err := r.int(); return err }},
		{"negative beyond int64", []byte{0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0}, func(r *cborReader) error { _, err := r.int(); return err }},
		{"invalid UTF-8 text", []byte{0x62, 0xc3, 0x28}, func(r *cborReader) error { _, err := r.text(); return err }},
		{"map of 17", []byte{0xb1}, func(r *cborReader) error { _, err := r.container(majorMap); return err }},
		{"null for uint", []byte{0xf6}, func(r *cborReader) error { _, err := r.uint(); return err }},
		{"break", []byte{0xff}, func(r *cborReader) error { _, err := r.uint(); return err }},
		{"empty", nil, func(r *cborReader) error { _, err := r.int(); return err }},
	} {
		r := cborReader{b: tc.b}
		if err := tc.read(&r); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// The generic gate refuses what the library options forbid.
	for _, b := range [][]byte{
		{0xc2, 0x41, 0x01},                        // tag
		{0x9f, 0xff},                              // indefinite array
		{0x81, 0x81, 0x81, 0x81, 0x81, 0x00},      // depth 5
		append([]byte{0x91}, make([]byte, 17)...), // 17 elements
		{0x00, 0x00},                              // trailing byte
	} {
		if err := wellformed("test", b); !errors.Is(err, ErrMalformed) {
			t.Errorf("wellformed(%x) = %v", b, err)
		}
	}
}
