package check

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"passgate/pass"
	"passgate/scanner/keymap"
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
	m    *keymap.Map
}

var layouts = []namedKeymap{{"us", &keymap.US}, {"de", &keymap.DE}, {"fr", &keymap.FR}}

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
	scanner *keymap.Map
	host    map[rune]keyPos // the host's character → position, Caps Lock applied
	dead    map[rune]rune   // the host's combining mark → its dead key's character
	hostMap *keymap.Map     // the host's layout
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
					dead: markToDead(h.m), hostMap: h.m,
				})
			}
		}
	}
	return out
}()

// reverseKeymap maps each character of m to the key position typing it,
// with Caps Lock inverting Shift on letter keys. The first position wins
// where two type the same character.
func reverseKeymap(m *keymap.Map, caps bool) map[rune]keyPos {
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

// markToDead inverts keymap.DeadKeys for layout m (nil when it has none).
func markToDead(m *keymap.Map) map[rune]rune {
	var out map[rune]rune
	for ch, mark := range keymap.DeadKeys[m] {
		if out == nil {
			out = make(map[rune]rune)
		}
		out[mark] = ch
	}
	return out
}

// fix reads text back through c, or reports false when a character has
// no position on the host or types nothing on the scanner. A character
// the host composed from a dead key and a letter (À from ` and A) is read
// back as those two keys.
func (c *layoutCandidate) fix(text string) (string, bool) {
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		if _, ok := c.host[r]; !ok && c.dead != nil {
			// NFD splits a composed letter into its base and one mark.
			if d := []rune(norm.NFD.String(string(r))); len(d) == 2 {
				if ch, ok := c.dead[d[1]]; ok && c.put(&b, ch) && c.put(&b, d[0]) {
					continue
				}
			}
			return "", false
		}
		if !c.put(&b, r) {
			return "", false
		}
	}
	return b.String(), true
}

// put writes what the scanner meant by the key that typed r on the host.
func (c *layoutCandidate) put(b *strings.Builder, r rune) bool {
	p, ok := c.host[r]
	if !ok {
		return false
	}
	s := 0
	if p.shift {
		s = 1
	}
	out := c.scanner[p.code][s]
	if out == 0 {
		return false
	}
	b.WriteRune(out)
	return true
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
		if !ok || f == raw {
			continue
		}
		if wellFormedPass(f) {
			return c.name, f, true
		}
		if f, ok := c.fixEatenSpaces(raw); ok {
			return c.name, f, true
		}
	}
	return "", "", false
}

// Bounds of fixEatenSpaces: it looks at the first maxDeadKeys dead-key
// characters and tries at most maxEatenTries variants (each a full
// decode), one eaten space first, then two: a pass has a few '+' and a
// space follows one in 45.
const (
	maxDeadKeys   = 16
	maxEatenTries = 64
)

// fixEatenSpaces undoes the other thing a dead key does: followed by a
// space it types only its own character, so the space is gone. It tries
// a space after one, then two, of the host's dead-key characters in raw
// and returns the first variant that decodes as a pass.
func (c *layoutCandidate) fixEatenSpaces(raw string) (string, bool) {
	if c.dead == nil {
		return "", false
	}
	var at []int // byte offsets just after each dead-key character
	for i, r := range raw {
		if _, isDead := keymap.DeadKeys[c.hostMap][r]; isDead && len(at) < maxDeadKeys {
			at = append(at, i+utf8.RuneLen(r))
		}
	}
	tries := 0
	try := func(offs ...int) (string, bool) {
		tries++
		var b strings.Builder
		b.Grow(len(raw) + len(offs))
		prev := 0
		for _, off := range offs {
			b.WriteString(raw[prev:off])
			b.WriteByte(' ') // the space bar types a space on every layout
			prev = off
		}
		b.WriteString(raw[prev:])
		f, ok := c.fix(b.String())
		return f, ok && wellFormedPass(f)
	}
	for _, off := range at {
		if f, ok := try(off); ok {
			return f, true
		}
	}
	for i := range at {
		for j := i + 1; j < len(at) && tries < maxEatenTries; j++ {
			if f, ok := try(at[i], at[j]); ok {
				return f, true
			}
		}
	}
	return "", false
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
