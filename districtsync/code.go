package districtsync

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// An enrolment code is what a hub admin hands to whoever sets up an
// appliance: a one-time secret that proves the appliance may enrol, and
// the pin of the hub's TLS identity, so the appliance knows it talks to
// the right hub without any public CA. Written as
//
//	PGE1-XXXX-XXXX-…-XXXX
//
// the prefix and version, then base32 (RFC 4648, no padding) of
// secret[16] ‖ pin[16] in groups of four. Reading is forgiving of what
// people do when they copy a code: lower case, spaces or hyphens
// anywhere, 0 for O and 1 for I (neither digit is in the alphabet).

// codePrefix starts every code; the digit is the format version.
const codePrefix = "PGE1"

// SecretSize is the length of a code's secret.
const SecretSize = 16

// maxCodeLen bounds the text ParseCode reads: a code is 69 characters
// written normally; generous room for spaces, never unbounded input.
const maxCodeLen = 256

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// codeChars is the length of the base32 part: 32 bytes → 52 characters.
var codeChars = codeEncoding.EncodedLen(SecretSize + PinSize)

// Code is a parsed enrolment code.
type Code struct {
	Secret [SecretSize]byte
	Pin    [PinSize]byte
}

// ErrCode is wrapped by every ParseCode error.
var ErrCode = errors.New("not a valid enrolment code")

// NewCode makes a code with a fresh random secret for the hub whose TLS
// pin is pin.
func NewCode(pin []byte) (Code, error) {
	var c Code
	if len(pin) != PinSize {
		return c, fmt.Errorf("enrolment code: pin of %d bytes, want %d", len(pin), PinSize)
	}
	if _, err := rand.Read(c.Secret[:]); err != nil {
		return c, err
	}
	copy(c.Pin[:], pin)
	return c, nil
}

// String writes the code as PGE1-XXXX-….
func (c Code) String() string {
	raw := make([]byte, 0, SecretSize+PinSize)
	raw = append(raw, c.Secret[:]...)
	raw = append(raw, c.Pin[:]...)
	enc := codeEncoding.EncodeToString(raw)
	var b strings.Builder
	b.WriteString(codePrefix)
	for i := 0; i < len(enc); i += 4 {
		b.WriteByte('-')
		b.WriteString(enc[i:min(i+4, len(enc))])
	}
	return b.String()
}

// Hash is what the hub stores of the code: SHA-256 of the secret.
func (c Code) Hash() []byte {
	h := sha256.Sum256(c.Secret[:])
	return h[:]
}

// ParseCode reads a code written by String, tolerating case, spaces,
// hyphens and the digits 0 and 1 for O and I.
func ParseCode(s string) (Code, error) {
	var c Code
	if len(s) > maxCodeLen {
		return c, fmt.Errorf("%w: too long", ErrCode)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '-' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			continue
		case ch >= 'a' && ch <= 'z':
			ch -= 'a' - 'A'
		case ch == '0':
			ch = 'O'
		case ch == '1':
			ch = 'I'
		}
		b.WriteByte(ch)
	}
	t := b.String()
	// The prefix's "1" has been read as "I" above.
	const seenPrefix = "PGEI"
	if !strings.HasPrefix(t, seenPrefix) {
		if strings.HasPrefix(t, "PGE") {
			return c, fmt.Errorf("%w: unknown code version (want %s-…)", ErrCode, codePrefix)
		}
		return c, fmt.Errorf("%w: it must start with %s-", ErrCode, codePrefix)
	}
	t = t[len(seenPrefix):]
	if len(t) != codeChars {
		return c, fmt.Errorf("%w: %d characters after %s, want %d", ErrCode, len(t), codePrefix, codeChars)
	}
	raw, err := codeEncoding.DecodeString(t)
	if err != nil || len(raw) != SecretSize+PinSize {
		return c, fmt.Errorf("%w: a character is not one of A–Z, 2–7", ErrCode)
	}
	// The last character carries 2 bits of data and 3 of padding: a
	// code whose padding bits are set is a mistyped one, not another
	// spelling of the same code.
	if codeEncoding.EncodeToString(raw) != t {
		return c, fmt.Errorf("%w: the last group is mistyped", ErrCode)
	}
	copy(c.Secret[:], raw[:SecretSize])
	copy(c.Pin[:], raw[SecretSize:])
	return c, nil
}
