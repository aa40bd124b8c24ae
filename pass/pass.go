// Package pass is the passgate health-pass format and its cryptography.
//
// A pass is a CWT claims set (RFC 8392) signed as COSE_Sign1 (RFC 9052),
// compressed with zlib, encoded with Base45 (RFC 9285) and prefixed with
// "PG1:", so that it fits a QR code in alphanumeric mode. A pass carries the
// certificate of the issuer key that signed it, itself a COSE_Sign1 signed by
// a district root key, so a checker that trusts only the root can verify a
// pass from an issuer it has never seen. SPEC.md describes the format byte by
// byte.
//
// The package is pure: no I/O, no SQL, no clock. Callers pass the time in.
package pass

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix starts every pass text. It uses only QR alphanumeric characters.
const Prefix = "PG1:"

// Decoding limits. Every layer is bounded before it is processed so that
// hostile input costs little.
const (
	// MaxTextLen caps the pass text, prefix included. The largest QR code
	// (version 40-L) holds 4,296 alphanumeric characters.
	MaxTextLen = 4296
	// MaxInflated caps the decompressed COSE message.
	MaxInflated = 4096
)

// Errors returned by Verifier.Verify (and, where they apply, ParseCert).
// They are wrapped with detail; test them with errors.Is.
var (
	// ErrNotAPass: the text is not a passgate pass at all (empty, no prefix).
	ErrNotAPass = errors.New("not a pass")
	// ErrMalformed: the prefix is right but a layer fails to decode or a
	// limit is exceeded.
	ErrMalformed = errors.New("malformed pass")
	// ErrBadSignature: a signature (pass or certificate) does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrUnknownIssuer: the signing key is not known and its certificate
	// (if any) does not chain to a trusted root.
	ErrUnknownIssuer = errors.New("unknown issuer")
	// ErrIssuerExpired: the issuer certificate is outside its validity.
	ErrIssuerExpired = errors.New("issuer certificate expired")
	// ErrUnsupportedAlg: the COSE algorithm is missing or not EdDSA/ES256.
	ErrUnsupportedAlg = errors.New("unsupported algorithm")
)

// Color is a health status colour.
type Color uint8

// Health colours. The zero value is invalid.
const (
	Green  Color = 1
	Yellow Color = 2
	Red    Color = 3
)

var colorNames = [...]string{Green: "green", Yellow: "yellow", Red: "red"}

// String returns "green", "yellow" or "red", or color(n) for an invalid
// value.
func (c Color) String() string {
	if c >= Green && c <= Red {
		return colorNames[c]
	}
	return fmt.Sprintf("color(%d)", uint8(c))
}

// Valid reports whether c is one of the defined colours.
func (c Color) Valid() bool { return c >= Green && c <= Red }

// ParseColor parses "green", "yellow" or "red" (case-insensitive).
func ParseColor(s string) (Color, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "green":
		return Green, nil
	case "yellow":
		return Yellow, nil
	case "red":
		return Red, nil
	}
	return 0, fmt.Errorf("unknown colour %q (want green, yellow or red)", s)
}

// Kind is the medium a pass is made for.
type Kind uint8

// Pass kinds. The zero value is invalid.
const (
	Phone Kind = 1
	Paper Kind = 2
)

// String returns "phone" or "paper", or kind(n) for an invalid value.
func (k Kind) String() string {
	switch k {
	case Phone:
		return "phone"
	case Paper:
		return "paper"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a defined kind.
func (k Kind) Valid() bool { return k == Phone || k == Paper }

// ParseKind parses "phone" or "paper".
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "phone":
		return Phone, nil
	case "paper":
		return Paper, nil
	}
	return 0, fmt.Errorf("unknown pass kind %q (want phone or paper)", s)
}

// Default validity periods by kind.
const (
	PhoneValidity = 24 * time.Hour
	PaperValidity = 180 * 24 * time.Hour
)

// ID identifies one issued pass (CWT "cti"). Random.
type ID [12]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return fmt.Sprintf("%x", id[:]) }

// IsZero reports whether id is all zero (no pass).
func (id ID) IsZero() bool { return id == ID{} }

// Subject is the district pseudonym of a person: HMAC-SHA-256 of the
// normalised ID number under the district pseudonym key, truncated.
type Subject [16]byte

// String returns the pseudonym in lower-case hex.
func (s Subject) String() string { return fmt.Sprintf("%x", s[:]) }

// IsZero reports whether s is all zero.
func (s Subject) IsZero() bool { return s == Subject{} }

// KeyID names a public key: the first 8 bytes of SHA-256 over the key's
// algorithm and raw public bytes (see SPEC.md).
type KeyID [8]byte

// String returns the key ID in lower-case hex.
func (k KeyID) String() string { return fmt.Sprintf("%x", k[:]) }

// Claims is what a pass says about its holder.
type Claims struct {
	ID        ID
	Subject   Subject
	District  string    // CWT iss: the issuing district's identifier
	Name      string    // masked name, e.g. 张*明
	IDTail    string    // last four characters of the ID number
	Color     Color     // health colour
	TestedAt  time.Time // sample time of the latest negative test; zero if none
	Doses     int       // vaccine doses, 0..255
	IssuedAt  time.Time
	ExpiresAt time.Time
	Kind      Kind
}

// Pass is a decoded and verified pass.
type Pass struct {
	Claims
	Alg    Alg   // algorithm of the pass signature
	KeyID  KeyID // issuer key that signed the pass
	Issuer *Cert // the issuer's certificate, verified against a root
}
