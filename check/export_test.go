package check

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"passgate/scanner/keymap"
)

// CorruptLayout types text on a scanner set to layout scanner and reads
// it on a host with layout host (Caps Lock on when caps): the garbling
// DetectLayout undoes.
func CorruptLayout(text, scanner, host string, caps bool) (string, bool) {
	var s, h *keymap.Map
	for _, l := range layouts {
		if l.name == scanner {
			s = l.m
		}
		if l.name == host {
			h = l.m
		}
	}
	if s == nil || h == nil {
		return "", false
	}
	// Garbling is fixing the other way round: positions from the
	// scanner's layout, characters from the host's.
	c := layoutCandidate{scanner: capsKeymap(h, caps), host: reverseKeymap(s, false)}
	typed, ok := c.fix(text)
	if !ok {
		return "", false
	}
	return composeDead(typed, keymap.DeadKeys[h]), true
}

// composeDead is what a host does with its dead keys: a dead key followed
// by a letter it accents types the accented letter, followed by a space
// its own character, followed by anything else both characters.
func composeDead(typed string, dead map[rune]rune) string {
	rs := []rune(typed)
	var b strings.Builder
	for i := 0; i < len(rs); i++ {
		mark, ok := dead[rs[i]]
		if !ok || i+1 == len(rs) {
			b.WriteRune(rs[i])
			continue
		}
		next := rs[i+1]
		if next == ' ' {
			b.WriteRune(rs[i])
			i++
			continue
		}
		if c := []rune(norm.NFC.String(string([]rune{next, mark}))); len(c) == 1 {
			b.WriteRune(c[0])
			i++
			continue
		}
		b.WriteRune(rs[i])
	}
	return b.String()
}

// capsKeymap is m with Caps Lock on: Shift inverted on letter keys.
func capsKeymap(m *keymap.Map, caps bool) *keymap.Map {
	out := *m
	if caps {
		for i, p := range out {
			if unicode.IsLower(p[0]) && unicode.ToUpper(p[0]) == p[1] {
				out[i] = [2]rune{p[1], p[0]}
			}
		}
	}
	return &out
}

// LayoutReason is layoutReason.
func LayoutReason(raw string) (Reason, bool) { return layoutReason(raw) }
