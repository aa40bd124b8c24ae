// Package jsonappend writes JSON values onto a byte slice, byte for byte
// as encoding/json.Marshal writes them, for the answers of hot paths that
// cannot afford reflection and an allocation per value.
package jsonappend

import (
	"time"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// safeText marks the ASCII bytes a JSON string holds as they are:
// printable characters other than the quote and the backslash.
var safeText = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	t['"'], t['\\'] = false, false
	return t
}()

// safe is safeText less the three bytes encoding/json escapes so that
// JSON stays safe inside HTML (<, > and &).
var safe = func() (t [utf8.RuneSelf]bool) {
	t = safeText
	t['<'], t['>'], t['&'] = false, false, false
	return t
}()

// String appends s as a JSON string, as json.Marshal writes it: invalid
// UTF-8 becomes U+FFFD, control characters and <, >, & are \u escapes,
// and so are U+2028 and U+2029, which JavaScript reads as line ends.
func String(dst []byte, s string) []byte { return appendString(dst, s, &safe) }

// TextString appends s as a JSON string as an encoder with HTML escaping
// off writes it (json.Encoder.SetEscapeHTML(false)): as String, but <, >
// and & as they are. For files (exports), not for answers a page may
// embed.
func TextString(dst []byte, s string) []byte { return appendString(dst, s, &safeText) }

// appendString appends s quoted, writing the ASCII bytes safe marks as
// they are and escaping the rest.
func appendString(dst []byte, s string, safe *[utf8.RuneSelf]bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Time appends t as a JSON string, as json.Marshal writes a time.Time
// (RFC 3339 with the nanoseconds it has), and fails as it does for a
// time RFC 3339 cannot write (a year outside 0 to 9999).
func Time(dst []byte, t time.Time) ([]byte, error) {
	dst = append(dst, '"')
	dst, err := t.AppendText(dst)
	if err != nil {
		return nil, err
	}
	return append(dst, '"'), nil
}
