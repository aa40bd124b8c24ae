package scanner

import (
	"strings"
	"time"
	"unicode"

	"passgate/pass"
)

// ReasonScannerLayout means the input is a pass garbled by a keyboard
// layout mismatch: a keyboard-wedge scanner types key positions, and one
// programmed for another layout than the host reads with (a German QWERTZ
// or French AZERTY scanner, Caps Lock on) turns a pass into a string that
// is not one. Staff fix it by setting the scanner to the US layout.
const ReasonScannerLayout Reason = "scanner_layout"

// LayoutMessageKey is the i18n key of the message telling staff how to
// fix the scanner (zh: "扫码枪键盘布局设置错误，请将扫码枪设为美式键盘 (US)";
// en: "Scanner keyboard layout is wrong: set the scanner to US keyboard").
const LayoutMessageKey = "reason.scanner_layout"

// namedKeymap is a layout a scanner or host may use.
type namedKeymap struct {
	name string
	m    *keymap
}

var layouts = []namedKeymap{{"us", &usKeymap}, {"de", &deKeymap}, {"fr", &frKeymap}}

// keyPos is a key code and whether Shift is held.
type keyPos struct {
	code  uint8
	shift bool
}

// layoutCandidate is one way a pass gets garbled: the scanner types the
// pass with the key positions of layout scanner, and the host reads those
// positions with layout host, with or without Caps Lock. Fixing reads the
// garbled text back to positions with the host's layout and types them
// with the scanner's.
type layoutCandidate struct {
	name    string
	scanner *keymap
	host    map[rune]keyPos // the host's character → position, Caps Lock applied
}

// layoutCandidates lists every mismatch tried, most common first: the
// scanner set to a national layout and read as US (what the evdev reader
// sees), then a US scanner on a national host, then Caps Lock.
var layoutCandidates = func() []layoutCandidate {
	var out []layoutCandidate
	for _, caps := range []bool{false, true} {
		for _, h := range layouts {
			for _, s := range layouts {
				if s.name == h.name && (!caps || s.name != "us") {
					continue // no mismatch, or Caps Lock already tried on US
				}
				var parts []string
				if s.name != "us" {
					parts = append(parts, "scanner:"+s.name)
				}
				if h.name != "us" {
					parts = append(parts, "host:"+h.name)
				}
				if caps {
					parts = append(parts, "capslock")
				}
				out = append(out, layoutCandidate{
					name: strings.Join(parts, "+"), scanner: s.m, host: reverseKeymap(h.m, caps),
				})
			}
		}
	}
	return out
}()

// reverseKeymap maps each character of m to the key position typing it,
// with Caps Lock inverting Shift on letter keys. The first position wins
// where two type the same character.
func reverseKeymap(m *keymap, caps bool) map[rune]keyPos {
	rev := make(map[rune]keyPos)
	for code, pair := range m {
		for s, r := range pair {
			if r == 0 {
				continue
			}
			shift := s == 1
			if caps && unicode.IsLower(pair[0]) && unicode.ToUpper(pair[0]) == pair[1] {
				shift = !shift
			}
			if _, dup := rev[r]; !dup {
				rev[r] = keyPos{uint8(code), shift}
			}
		}
	}
	return rev
}

// fix reads text back through c, or reports false when a character has
// no position on the host or types nothing on the scanner.
func (c *layoutCandidate) fix(text string) (string, bool) {
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		p, ok := c.host[r]
		if !ok {
			return "", false
		}
		s := 0
		if p.shift {
			s = 1
		}
		out := c.scanner[p.code][s]
		if out == 0 {
			return "", false
		}
		b.WriteRune(out)
	}
	return b.String(), true
}

// structureVerifier decodes passes without trusting any root: a text that
// it refuses only for its issuer is a well-formed pass.
var structureVerifier = pass.NewVerifier(nil)

// maxLayoutInput bounds what DetectLayout looks at: a garbled pass of
// MaxInput characters takes at most 2 bytes per character (ß, é, §, …).
const maxLayoutInput = 2 * MaxInput

// DetectLayout reports whether raw is a pass garbled by a keyboard layout
// mismatch, naming the mismatch (as "scanner:de", "host:fr",
// "capslock", or a combination joined by "+") and giving the repaired
// text. ok means the repaired text carries the pass prefix and decodes as
// a whole (Base45, zlib with its checksum, COSE structure); its signature
// is not judged here. It is pure and bounded: input longer than 2×MaxInput
// bytes is never a pass.
func DetectLayout(raw string) (layout, fixed string, ok bool) {
	raw = clean(raw)
	if len(raw) < len(pass.Prefix) || len(raw) > maxLayoutInput {
		return "", "", false
	}
	// The prefix rules out almost every candidate after four characters,
	// before the whole text is mapped.
	head, n := raw, 0
	for i := range raw {
		if n == len(pass.Prefix) {
			head = raw[:i]
			break
		}
		n++
	}
	for i := range layoutCandidates {
		c := &layoutCandidates[i]
		if h, ok := c.fix(head); !ok || !strings.HasPrefix(h, pass.Prefix) {
			continue
		}
		f, ok := c.fix(raw)
		if !ok || f == raw || !wellFormedPass(f) {
			continue
		}
		return c.name, f, true
	}
	return "", "", false
}

// wellFormedPass reports whether text decodes as a pass, whoever signed
// it.
func wellFormedPass(text string) bool {
	if len(text) > MaxInput {
		return false
	}
	for i := len(pass.Prefix); i < len(text); i++ {
		if !isBase45(text[i]) {
			return false
		}
	}
	_, err := structureVerifier.Verify(text, time.Time{}, 0)
	if err == nil {
		return true
	}
	switch reasonOf(err) {
	case ReasonNotAPass, ReasonMalformed:
		return false
	}
	return true
}

func isBase45(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || strings.IndexByte(" $%*+-./:", c) >= 0
}

// layoutReason is the reason for raw input that failed to decode: it is
// ReasonScannerLayout, true when raw is a pass garbled by a keyboard
// layout mismatch. Checker.Evaluate calls it for not_a_pass and malformed.
func layoutReason(raw string) (Reason, bool) {
	if _, _, ok := DetectLayout(raw); ok {
		return ReasonScannerLayout, true
	}
	return "", false
}
