package pass

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on claim and certificate fields. They keep a phone pass inside a
// version-15 QR code and give the gate screen a bounded amount to show.
const (
	maxDistrictLen = MaxIdentLen // bytes, CWT iss and certificate district
	// maxLegacyApplianceLen bounds the appliance name that certificates
	// carried before identifiers, which verifiers still accept.
	maxLegacyApplianceLen = 64
	maxNameLen            = 64 // bytes of the masked name (MaskName gives at most 16 runes)
	maxIDTailLen          = 8  // bytes of the ID tail (four characters, ASCII after NormalizeID)
	maxDoses              = 255

	// maxUnix is 9999-12-31T23:59:59Z: times are whole Unix seconds in
	// [1, maxUnix], so they convert to time.Time without overflow.
	maxUnix = 253402300799
)

// CWT claim keys (RFC 8392) and the passgate private claims inside key
// labelPrivate.
const (
	claimIss = 1
	claimExp = 4
	claimIat = 6
	claimCti = 7

	privSubject  = 1
	privName     = 2
	privIDTail   = 3
	privColor    = 4
	privTestedAt = 5
	privDoses    = 6
	privKind     = 7
)

// MaxIdentLen bounds the short identifiers of the format (the district
// identifier and the certificate's appliance identifier): with the
// longest of each, every phone pass still fits a version-15 QR code.
const MaxIdentLen = 16

// CheckIdent reports whether s can be a district or appliance identifier:
// 1 to MaxIdentLen bytes of ASCII letters, digits and '-'. Free text
// (names) never goes into an identifier: its size would change the pass.
func CheckIdent(field, s string) error {
	if s == "" || len(s) > MaxIdentLen {
		return fmt.Errorf("%s identifier must be 1 to %d bytes, is %d", field, MaxIdentLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("%s identifier may hold ASCII letters, digits and '-' only", field)
		}
	}
	return nil
}

// CheckText reports whether s can be shown on a screen as a field of at
// most max bytes: 1 to max bytes of UTF-8 without control or format
// characters (the rule of every text field of the format).
func CheckText(field, s string, max int) error { return checkText(field, s, 1, max) }

// checkText checks a string field: valid UTF-8, length in bytes within
// [min, max], no control or format characters. The last rule keeps
// terminal escapes and bidirectional overrides (which can make a screen
// show something other than what was signed) out of every displayed field.
func checkText(field, s string, min, max int) error {
	if len(s) < min || len(s) > max {
		if min > 0 && len(s) == 0 {
			return fmt.Errorf("%s is empty", field)
		}
		return fmt.Errorf("%s is %d bytes, limit %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))) {
			return fmt.Errorf("%s contains control or format character %U", field, r)
		}
	}
	return nil
}

// unixSeconds converts t for the wire. Sub-second parts are dropped.
func unixSeconds(field string, t time.Time) (uint64, error) {
	s := t.Unix()
	if s < 1 || s > maxUnix {
		return 0, fmt.Errorf("%s %v is outside 1970-01-01T00:00:01Z..9999-12-31T23:59:59Z", field, t)
	}
	return uint64(s), nil
}

// fromUnix converts a wire time, which must be in [1, maxUnix].
func fromUnix(field string, v uint64) (time.Time, error) {
	if v < 1 || v > maxUnix {
		return time.Time{}, fmt.Errorf("%s %d is out of range", field, v)
	}
	return time.Unix(int64(v), 0).UTC(), nil
}

// checkClaims checks what both Sign and Verify require of a claims set.
func checkClaims(c *Claims) error {
	switch {
	case c.ID.IsZero():
		return errors.New("pass ID is zero")
	case c.Subject.IsZero():
		return errors.New("subject is zero")
	case !c.Color.Valid():
		return fmt.Errorf("invalid colour %d", uint8(c.Color))
	case !c.Kind.Valid():
		return fmt.Errorf("invalid kind %d", uint8(c.Kind))
	case c.Doses < 0 || c.Doses > maxDoses:
		return fmt.Errorf("doses %d outside 0..%d", c.Doses, maxDoses)
	}
	if err := CheckIdent("district", c.District); err != nil {
		return err
	}
	if err := checkText("name", c.Name, 0, maxNameLen); err != nil {
		return err
	}
	if err := checkText("ID tail", c.IDTail, 0, maxIDTailLen); err != nil {
		return err
	}
	iat, err := unixSeconds("issued-at", c.IssuedAt)
	if err != nil {
		return err
	}
	exp, err := unixSeconds("expires-at", c.ExpiresAt)
	if err != nil {
		return err
	}
	if iat >= exp {
		return fmt.Errorf("issued-at %v is not before expires-at %v", c.IssuedAt, c.ExpiresAt)
	}
	if !c.TestedAt.IsZero() {
		if _, err := unixSeconds("tested-at", c.TestedAt); err != nil {
			return err
		}
	}
	return nil
}

// Wire structures of the claims set, for the deterministic encoder.
type claimsWire struct {
	Iss     string      `cbor:"1,keyasint"`
	Exp     uint64      `cbor:"4,keyasint"`
	Iat     uint64      `cbor:"6,keyasint"`
	Cti     []byte      `cbor:"7,keyasint"`
	Private privateWire `cbor:"-65537,keyasint"`
}

type privateWire struct {
	Subject  []byte `cbor:"1,keyasint"`
	Name     string `cbor:"2,keyasint"`
	IDTail   string `cbor:"3,keyasint"`
	Color    uint8  `cbor:"4,keyasint"`
	TestedAt uint64 `cbor:"5,keyasint,omitempty"` // absent when there is no test
	Doses    uint8  `cbor:"6,keyasint"`
	Kind     uint8  `cbor:"7,keyasint"`
}

// encodeClaims checks c and returns its CWT claims set.
func encodeClaims(c *Claims) ([]byte, error) {
	if err := checkClaims(c); err != nil {
		return nil, err
	}
	w := claimsWire{
		Iss: c.District,
		Exp: uint64(c.ExpiresAt.Unix()),
		Iat: uint64(c.IssuedAt.Unix()),
		Cti: c.ID[:],
		Private: privateWire{
			Subject: c.Subject[:],
			Name:    c.Name,
			IDTail:  c.IDTail,
			Color:   uint8(c.Color),
			Doses:   uint8(c.Doses),
			Kind:    uint8(c.Kind),
		},
	}
	if !c.TestedAt.IsZero() {
		w.Private.TestedAt = uint64(c.TestedAt.Unix())
	}
	return encMode.Marshal(w)
}

// decodeClaims decodes a CWT claims set into c. Every key is required
// except tested-at; unknown and duplicate keys are refused. Errors wrap
// ErrMalformed.
func decodeClaims(b []byte, c *Claims) error { return decodeClaimsIn(b, c, "") }

// decodeClaimsIn is decodeClaims with the district the pass is expected to
// name: when iss equals it, c.District shares that string rather than
// allocating a copy.
func decodeClaimsIn(b []byte, c *Claims, district string) error {
	if err := wellformed("claims", b); err != nil {
		return err
	}
	r := cborReader{b: b}
	if err := decodeClaimsMap(&r, c, district); err != nil {
		return malformed("claims: %v", err)
	}
	if err := r.end(); err != nil {
		return malformed("claims: %v", err)
	}
	if err := checkClaims(c); err != nil {
		return malformed("claims: %v", err)
	}
	return nil
}

func decodeClaimsMap(r *cborReader, c *Claims, district string) error {
	n, err := r.container(majorMap)
	if err != nil {
		return err
	}
	var seen keySet
	for range n {
		k, err := r.int()
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		var slot int
		switch k {
		case claimIss:
			slot = 0
			var s []byte
			if s, err = r.text(); err == nil {
				switch {
				case len(s) > maxDistrictLen:
					return fmt.Errorf("iss is %d bytes, limit %d", len(s), maxDistrictLen)
				case string(s) == district: // compared without allocating
					c.District = district
				default:
					c.District = string(s)
				}
			}
		case claimExp:
			slot = 1
			c.ExpiresAt, err = readTime(r, "exp")
		case claimIat:
			slot = 2
			c.IssuedAt, err = readTime(r, "iat")
		case claimCti:
			slot = 3
			err = readFixed(r, "cti", c.ID[:])
		case labelPrivate:
			slot = 4
			err = decodePrivate(r, c)
		default:
			return fmt.Errorf("unknown claim %d", k)
		}
		if err != nil {
			return fmt.Errorf("claim %d: %w", k, err)
		}
		if err := seen.add(slot); err != nil {
			return fmt.Errorf("claim %d: %w", k, err)
		}
	}
	if seen != 1<<5-1 {
		return fmt.Errorf("missing claim (have %05b of iss, exp, iat, cti, private)", seen)
	}
	return nil
}

func decodePrivate(r *cborReader, c *Claims) error {
	n, err := r.container(majorMap)
	if err != nil {
		return fmt.Errorf("private claims: %w", err)
	}
	var (
		seen       keySet
		name, tail []byte
	)
	for range n {
		k, err := r.int()
		if err != nil {
			return fmt.Errorf("private claim key: %w", err)
		}
		if k < privSubject || k > privKind {
			return fmt.Errorf("unknown private claim %d", k)
		}
		if err := seen.add(int(k)); err != nil {
			return fmt.Errorf("private claim %d: %w", k, err)
		}
		var v uint64
		switch k {
		case privSubject:
			err = readFixed(r, "subject", c.Subject[:])
		case privName:
			if name, err = r.text(); err == nil && len(name) > maxNameLen {
				return fmt.Errorf("name is %d bytes, limit %d", len(name), maxNameLen)
			}
		case privIDTail:
			if tail, err = r.text(); err == nil && len(tail) > maxIDTailLen {
				return fmt.Errorf("ID tail is %d bytes, limit %d", len(tail), maxIDTailLen)
			}
		case privColor:
			if v, err = r.uint(); err == nil {
				if v < uint64(Green) || v > uint64(Red) {
					return fmt.Errorf("invalid colour %d", v)
				}
				c.Color = Color(v)
			}
		case privTestedAt:
			// Present only when there is a test, so 0 is refused like any
			// other out-of-range time.
			c.TestedAt, err = readTime(r, "tested-at")
		case privDoses:
			if v, err = r.uint(); err == nil {
				if v > maxDoses {
					return fmt.Errorf("doses %d exceeds %d", v, maxDoses)
				}
				c.Doses = int(v)
			}
		case privKind:
			if v, err = r.uint(); err == nil {
				if v != uint64(Phone) && v != uint64(Paper) {
					return fmt.Errorf("invalid kind %d", v)
				}
				c.Kind = Kind(v)
			}
		}
		if err != nil {
			return fmt.Errorf("private claim %d: %w", k, err)
		}
	}
	const required = 1<<privSubject | 1<<privName | 1<<privIDTail | 1<<privColor | 1<<privDoses | 1<<privKind
	if seen&required != required {
		return fmt.Errorf("missing private claim (have keys %08b)", seen)
	}
	// One allocation for both strings.
	both := string(name) + string(tail)
	c.Name, c.IDTail = both[:len(name)], both[len(name):]
	return nil
}

// readTime reads a time in whole Unix seconds.
func readTime(r *cborReader, field string) (time.Time, error) {
	v, err := r.uint()
	if err != nil {
		return time.Time{}, err
	}
	return fromUnix(field, v)
}

// readFixed reads a byte string of exactly len(dst) bytes into dst.
func readFixed(r *cborReader, field string, dst []byte) error {
	b, err := r.bytes()
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return fmt.Errorf("%s is %d bytes, want %d", field, len(b), len(dst))
	}
	copy(dst, b)
	return nil
}
