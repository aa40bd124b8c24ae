package pass

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// The city pseudonym key: one HMAC key for the whole city, so that one
// person has one subject in every district (Pseudonym under it). The
// city health commission makes it once; each district hub imports it
// from a file that travels by hand, and compares its check value with
// the one the commission reads out by another channel.
//
// The file is cityKeyMagic followed by the 32-byte key, nothing else:
// 46 bytes exactly.

// CityKeyLen is the length of the city pseudonym key.
const CityKeyLen = 32

// cityKeyMagic starts a city pseudonym key file; the digit is the
// format's version.
var cityKeyMagic = []byte("PGCITYPSEUDO1\n")

// CityKeyFileLen is the exact length of a city pseudonym key file.
var CityKeyFileLen = len(cityKeyMagic) + CityKeyLen

// ErrCityKeyFile: the bytes are not a city pseudonym key file.
var ErrCityKeyFile = errors.New("not a city pseudonym key file")

// MarshalCityKey returns the key file holding key.
func MarshalCityKey(key []byte) ([]byte, error) {
	if len(key) != CityKeyLen {
		return nil, ErrCityKeyFile
	}
	return append(append([]byte(nil), cityKeyMagic...), key...), nil
}

// ParseCityKey returns the key of a city pseudonym key file: exactly
// the magic and 32 bytes, and not all zero (a file of zeros is a
// mistake, never a key).
func ParseCityKey(b []byte) ([]byte, error) {
	if len(b) != CityKeyFileLen || !bytes.HasPrefix(b, cityKeyMagic) {
		return nil, ErrCityKeyFile
	}
	key := append([]byte(nil), b[len(cityKeyMagic):]...)
	if bytes.Equal(key, make([]byte, CityKeyLen)) {
		return nil, ErrCityKeyFile
	}
	return key, nil
}

// CityKeyCheck is the check value of a city pseudonym key: 8 bytes of
// an HMAC under the key of a fixed text. It names the key when read out
// by telephone and reveals nothing of it.
func CityKeyCheck(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("passgate city pseudonym key check v1"))
	return m.Sum(nil)[:8]
}

// FormatCityKeyCheck writes a check value as four groups of four hex
// digits (1a2b-3c4d-5e6f-7a8b), easy to read out.
func FormatCityKeyCheck(c []byte) string {
	h := hex.EncodeToString(c)
	var parts []string
	for i := 0; i+4 <= len(h); i += 4 {
		parts = append(parts, h[i:i+4])
	}
	return strings.Join(parts, "-")
}

// ParseCityKeyCheck reads a check value as FormatCityKeyCheck writes it
// (dashes and spaces optional, any case).
func ParseCityKeyCheck(s string) ([]byte, error) {
	s = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(s))
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		return nil, errors.New("a check value is 16 hex digits (1a2b-3c4d-5e6f-7a8b)")
	}
	return b, nil
}
