package scanner

// Linux input key codes (linux/input-event-codes.h) that a keyboard-wedge
// scanner uses. Codes are positions on the keyboard, not characters: what
// a position means depends on the layout, which is why a scanner
// programmed for one layout and read with another garbles its codes.
const (
	keyTab        = 15
	keyEnter      = 28
	keyLeftCtrl   = 29
	keyJ          = 36
	keyLeftShift  = 42
	keyM          = 50
	keyLeftAlt    = 56
	keySpace      = 57
	key102nd      = 86 // the extra key left of Z on ISO keyboards
	keyKPEnter    = 96
	keyRightCtrl  = 97
	keyRightShift = 54
	keyRightAlt   = 100
)

// keymapSize bounds the key codes a layout table covers: every printing
// key of the main block, up to KEY_102ND.
const keymapSize = key102nd + 1

// keymap gives, for each key code, the character typed without and with
// Shift (0 when the key types nothing printable in that layout).
type keymap [keymapSize][2]rune

// set fills keys first, first+1, … with the unshifted and shifted
// characters at the same index of plain and shifted.
func (m *keymap) set(first int, plain, shifted string) {
	p, s := []rune(plain), []rune(shifted)
	for i := range p {
		m[first+i] = [2]rune{p[i], s[i]}
	}
}

// usKeymap is the US layout, which scanners are programmed for and which
// the evdev reader decodes with.
var usKeymap = func() (m keymap) {
	m.set(2, "1234567890-=", "!@#$%^&*()_+")
	m.set(16, "qwertyuiop[]", "QWERTYUIOP{}")
	m.set(30, "asdfghjkl;'`", "ASDFGHJKL:\"~")
	m.set(43, `\zxcvbnm,./`, "|ZXCVBNM<>?")
	m[keySpace] = [2]rune{' ', ' '}
	return m
}()

// deKeymap is the German QWERTZ layout (Y and Z swapped, symbols moved).
// Its dead keys (^ ´ `, see deadKeys) are listed as the character they
// show: followed by a space they type it.
var deKeymap = func() (m keymap) {
	m.set(2, "1234567890ß´", "!\"§$%&/()=?`")
	m.set(16, "qwertzuiopü+", "QWERTZUIOPÜ*")
	m.set(30, "asdfghjklöä^", "ASDFGHJKLÖÄ°")
	m.set(43, "#yxcvbnm,.-", "'YXCVBNM;:_")
	m[keySpace] = [2]rune{' ', ' '}
	m[key102nd] = [2]rune{'<', '>'}
	return m
}()

// frKeymap is the French AZERTY layout: A/Q and Z/W swapped, M beside L,
// and the digit row types symbols unless shifted.
var frKeymap = func() (m keymap) {
	m.set(2, "&é\"'(-è_çà)=", "1234567890°+")
	m.set(16, "azertyuiop^$", "AZERTYUIOP¨£")
	m.set(30, "qsdfghjklmù²", "QSDFGHJKLM%³")
	m.set(43, "*wxcvbn,;:!", "µWXCVBN?./§")
	m[keySpace] = [2]rune{' ', ' '}
	m[key102nd] = [2]rune{'<', '>'}
	return m
}()

// deadKeys maps, for each layout with dead keys, the character a dead
// key shows to the combining mark it puts on the next letter. A US
// scanner typing "+A" on a German host types Shift+´ then A: the host
// shows "À", one character from two keys. Only the host's dead keys
// matter: a scanner sends key positions, never composed characters.
var deadKeys = map[*keymap]map[rune]rune{
	&deKeymap: {'`': '\u0300', '´': '\u0301', '^': '\u0302'},
	&frKeymap: {'^': '\u0302', '¨': '\u0308'},
}

// usChar is the character the US layout types for key code with shift,
// or 0 for keys that type nothing printable (modifiers, function keys and
// codes outside the table).
func usChar(code uint16, shift bool) byte {
	if int(code) >= keymapSize {
		return 0
	}
	s := 0
	if shift {
		s = 1
	}
	return byte(usKeymap[code][s]) // the US table is ASCII only
}
