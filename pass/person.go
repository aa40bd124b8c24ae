package pass

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormalizeID normalises a national ID or document number: surrounding and
// inner spaces removed, letters upper-cased (the check character x of a
// mainland ID becomes X).
//
// Precisely: every white-space rune (including the ideographic space
// U+3000 an IME types) and the invisible U+200B-U+200D and U+FEFF that
// copying from web pages leaves behind are removed; full-width ASCII
// variants (U+FF01-U+FF5E, e.g. "１２３ｘ") become their ASCII form; ASCII
// letters are upper-cased. Other characters are kept as they are, so that
// two different numbers never normalise to the same string by accident.
// The same person must get the same pseudonym however the number was typed.
func NormalizeID(id string) string {
	var b strings.Builder
	b.Grow(len(id))
	for _, r := range id {
		switch {
		case unicode.IsSpace(r), r >= 0x200b && r <= 0x200d, r == 0xfeff:
			continue
		case r >= 0xff01 && r <= 0xff5e:
			r -= 0xfee0
		}
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Pseudonym returns the subject pseudonym of an ID number under the
// district pseudonym key: HMAC-SHA-256(key, NormalizeID(id)) truncated to
// 16 bytes.
//
// A keyed hash, not a plain one: ID numbers have so little entropy that
// an unkeyed hash could be reversed by enumeration. 128 bits keep
// collisions out of reach for any population.
func Pseudonym(key []byte, id string) Subject {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(NormalizeID(id)))
	var s Subject
	copy(s[:], m.Sum(nil))
	return s
}

// maxMaskedRunes caps a masked name: first rune, at most 14 stars, last
// rune. Long names (common in transliterated Uyghur or Tibetan names)
// would otherwise grow the pass and the QR code while showing only stars.
const maxMaskedRunes = 16

// MaskName masks a name for display: first and last characters kept,
// the middle replaced by '*' (张三丰 → 张*丰, 张三 → 张*).
//
// The name is trimmed of surrounding white space and stripped of control
// and format characters first. A one-character name becomes "*", an
// empty name "". The result has at most 16 characters: the first, up to
// 14 stars, the last.
func MaskName(name string) string {
	runes := []rune(strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)))
	switch n := len(runes); {
	case n == 0:
		return ""
	case n == 1:
		return "*"
	case n == 2:
		return string(runes[0]) + "*"
	default:
		stars := min(n-2, maxMaskedRunes-2)
		return string(runes[0]) + strings.Repeat("*", stars) + string(runes[n-1])
	}
}

// IDTail returns the last four characters of the normalised ID number
// (all of it if it is shorter).
func IDTail(id string) string {
	s := NormalizeID(id)
	i, n := len(s), 0
	for i > 0 && n < 4 {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
		n++
	}
	return s[i:]
}
