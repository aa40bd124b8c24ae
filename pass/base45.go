package pass

import "fmt"

// Base45 (RFC 9285). Written here rather than imported: it is 60 lines,
// sits on the path every hostile input takes, and must refuse rather than
// repair anything outside the RFC.

// base45Alphabet is the RFC 9285 alphabet: all of it is in the QR
// alphanumeric set, which is why a pass fits QR alphanumeric mode.
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// base45Value maps a byte to its Base45 value, or 0xff if it is not in the
// alphabet (lower-case letters included: RFC 9285 has none).
var base45Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(base45Alphabet); i++ {
		t[base45Alphabet[i]] = byte(i)
	}
	return t
}()

// base45EncodedLen is the encoded length of n bytes.
func base45EncodedLen(n int) int { return n/2*3 + n%2*2 }

// appendBase45 appends the Base45 encoding of src to dst: each pair of
// bytes becomes three characters, a final odd byte two.
func appendBase45(dst, src []byte) []byte {
	for len(src) >= 2 {
		n := int(src[0])<<8 | int(src[1])
		dst = append(dst, base45Alphabet[n%45], base45Alphabet[n/45%45], base45Alphabet[n/2025])
		src = src[2:]
	}
	if len(src) == 1 {
		n := int(src[0])
		dst = append(dst, base45Alphabet[n%45], base45Alphabet[n/45])
	}
	return dst
}

// appendBase45Decode appends the bytes encoded by s to dst. It rejects
// characters outside the alphabet, a dangling single character, triplets
// worth more than 65535 and final pairs worth more than 255: each input
// has exactly one decoding, so no two texts carry the same pass.
func appendBase45Decode(dst []byte, s string) ([]byte, error) {
	if len(s)%3 == 1 {
		return dst, fmt.Errorf("base45: dangling character (length %d)", len(s))
	}
	i := 0
	for ; i+3 <= len(s); i += 3 {
		c, d, e := base45Value[s[i]], base45Value[s[i+1]], base45Value[s[i+2]]
		if c > 44 || d > 44 || e > 44 {
			return dst, fmt.Errorf("base45: invalid character at %d", i)
		}
		n := int(c) + int(d)*45 + int(e)*2025
		if n > 0xffff {
			return dst, fmt.Errorf("base45: triplet at %d exceeds 65535", i)
		}
		dst = append(dst, byte(n>>8), byte(n))
	}
	if i < len(s) { // two characters left
		c, d := base45Value[s[i]], base45Value[s[i+1]]
		if c > 44 || d > 44 {
			return dst, fmt.Errorf("base45: invalid character at %d", i)
		}
		n := int(c) + int(d)*45
		if n > 0xff {
			return dst, fmt.Errorf("base45: final pair exceeds 255")
		}
		dst = append(dst, byte(n))
	}
	return dst, nil
}
