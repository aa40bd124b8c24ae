package pass

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// CBOR handling.
//
// Encoding uses fxamacker/cbor in Core Deterministic Encoding (RFC 8949
// section 4.2.1), so the same claims always give the same bytes.
//
// Decoding is two independent gates, both required to pass:
//
//  1. decMode.Wellformed, with limits far below the library defaults: no
//     indefinite lengths, no tags, at most 4 levels of nesting, 16 array
//     elements and 16 map pairs, nothing after the top-level item. This
//     bounds the work any input can cause before a field is looked at.
//  2. cborReader, a small typed reader that walks exactly the structures of
//     this format. It exists because decoding into Go structs is too
//     forgiving for a signed format: the library maps null to a zero
//     value, silently truncates byte strings into fixed arrays, and cannot
//     tell an absent key from a zero value. The reader rejects any major
//     type other than the expected one, duplicate and unknown keys, and
//     reports which keys were present. It slices the input instead of
//     copying it.

// Map labels shared by several structures.
const (
	// labelPrivate is the private-use label (RFC 9052 section 3.1 and RFC
	// 8392 section 4 reserve values below -65536 for private use) holding
	// the issuer certificate in a pass's unprotected header, and the
	// passgate claims in the CWT claims set.
	labelPrivate = -65537

	headerAlg = 1 // COSE header "alg"
	headerKID = 4 // COSE header "kid"
)

// Decoding limits for the generic gate. MaxNestedLevels 4 and 16/16 are
// the smallest the library allows; the deepest structure of the format
// (claims map, private claims map) has depth 2 and 7 pairs.
var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// encMode encodes in Core Deterministic Encoding: shortest heads, map keys
// sorted by their encoded bytes.
var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// wellformed runs the generic gate over one encoded item.
func wellformed(what string, b []byte) error {
	if err := decMode.Wellformed(b); err != nil {
		return malformed("%s: %v", what, err)
	}
	return nil
}

// CBOR major types.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
)

var errTruncated = errors.New("truncated CBOR")

// cborReader reads definite-length items of known type from b. Errors are
// plain; callers wrap them with the layer they were decoding.
type cborReader struct {
	b   []byte
	off int
}

// head reads an initial byte and its argument. Indefinite lengths,
// reserved additional information values and break are rejected.
func (r *cborReader) head() (major byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, errTruncated
	}
	ib := r.b[r.off]
	r.off++
	major, ai := ib>>5, ib&0x1f
	var n int
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	default:
		return 0, 0, fmt.Errorf("unsupported CBOR initial byte 0x%02x (indefinite length or reserved)", ib)
	}
	if len(r.b)-r.off < n {
		return 0, 0, errTruncated
	}
	for _, c := range r.b[r.off : r.off+n] {
		arg = arg<<8 | uint64(c)
	}
	r.off += n
	return major, arg, nil
}

// peek returns the major type of the next item without consuming it.
func (r *cborReader) peek() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	return r.b[r.off] >> 5, true
}

var majorNames = [8]string{"unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag", "simple value or float"}

func wrongType(got, want byte) error {
	return fmt.Errorf("CBOR %s where %s expected", majorNames[got&7], majorNames[want&7])
}

func (r *cborReader) expect(want byte) (uint64, error) {
	major, arg, err := r.head()
	if err != nil {
		return 0, err
	}
	if major != want {
		return 0, wrongType(major, want)
	}
	return arg, nil
}

// uint reads an unsigned integer.
func (r *cborReader) uint() (uint64, error) { return r.expect(majorUint) }

// int reads an integer that fits int64.
func (r *cborReader) int() (int64, error) {
	major, arg, err := r.head()
	if err != nil {
		return 0, err
	}
	if major != majorUint && major != majorNegInt {
		return 0, wrongType(major, majorUint)
	}
	if arg > math.MaxInt64 {
		return 0, errors.New("CBOR integer out of range")
	}
	if major == majorNegInt {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

// str reads the body of a byte or text string of the given major type.
// The result aliases the input.
func (r *cborReader) str(major byte) ([]byte, error) {
	n, err := r.expect(major)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.off) {
		return nil, errTruncated
	}
	s := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

// bytes reads a byte string (aliasing the input).
func (r *cborReader) bytes() ([]byte, error) { return r.str(majorBytes) }

// text reads a text string (aliasing the input) and checks it is UTF-8.
func (r *cborReader) text() ([]byte, error) {
	s, err := r.str(majorText)
	if err == nil && !utf8.Valid(s) {
		err = errors.New("CBOR text string is not valid UTF-8")
	}
	return s, err
}

// maxContainer bounds every array and map of the format.
const maxContainer = 16

// container reads an array or map head and returns its element or pair
// count.
func (r *cborReader) container(major byte) (int, error) {
	n, err := r.expect(major)
	if err != nil {
		return 0, err
	}
	if n > maxContainer {
		return 0, fmt.Errorf("CBOR %s of %d entries exceeds %d", majorNames[major], n, maxContainer)
	}
	return int(n), nil
}

// end checks that the whole input was consumed.
func (r *cborReader) end() error {
	if r.off != len(r.b) {
		return fmt.Errorf("%d trailing bytes after CBOR item", len(r.b)-r.off)
	}
	return nil
}

// keySet tracks the keys seen in one map so duplicates are refused and
// missing ones reported. Keys are indexed by a small per-map slot number.
type keySet uint16

func (s *keySet) add(slot int) error {
	if *s&(1<<slot) != 0 {
		return errors.New("duplicate CBOR map key")
	}
	*s |= 1 << slot
	return nil
}

func (s keySet) has(slot int) bool { return s&(1<<slot) != 0 }

// Hand-written deterministic encoders for the two structures built on the
// verification path (KeyID input and Sig_structure), where going through
// reflection would cost more than the structure itself.

// appendHead appends a CBOR head with the shortest argument encoding.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendHead(b, majorNegInt, uint64(-1-v))
	}
	return appendHead(b, majorUint, uint64(v))
}

func appendBytes(b, s []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(s))), s...)
}
