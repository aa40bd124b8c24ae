// Package keymap holds the keyboard layouts a keyboard-wedge scanner types
// through: the key codes it sends and the characters each layout makes
// of them.
package keymap

// Linux input key codes (linux/input-event-codes.h) that a keyboard-wedge
// scanner uses. Codes are positions on the keyboard, not characters: what
// a position means depends on the layout, which is why a scanner
// programmed for one layout and read with another garbles its codes.
const (
	Tab        = 15
	Enter      = 28
	LeftCtrl   = 29
	J          = 36
	LeftShift  = 42
	M          = 50
	LeftAlt    = 56
	Space      = 57
	Key102nd   = 86 // the extra key left of Z on ISO keyboards
	KPEnter    = 96
	RightCtrl  = 97
	RightShift = 54
	RightAlt   = 100
)

// Size bounds the key codes a layout table covers: every printing
// key of the main block, up to KEY_102ND.
const Size = Key102nd + 1

// keymap gives, for each key code, the character typed without and with
// Shift (0 when the key types nothing printable in that layout).
type Map [Size][2]rune

// set fills keys first, first+1, … with the unshifted and shifted
// characters at the same index of plain and shifted.
func (m *Map) set(first int, plain, shifted string) {
	p, s := []rune(plain), []rune(shifted)
	for i := range p {
		m[first+i] = [2]rune{p[i], s[i]}
	}
}

// US is the US layout, which scanners are programmed for and which
// the evdev reader decodes with.
var US = func() (m Map) {
	m.set(2, "1234567890-=", "!@#$%^&*()_+")
	m.set(16, "qwertyuiop[]", "QWERTYUIOP{}")
	m.set(30, "asdfghjkl;'`", "ASDFGHJKL:\"~")
	m.set(43, `\zxcvbnm,./`, "|ZXCVBNM<>?")
	m[Space] = [2]rune{' ', ' '}
	return m
}()

// DE is the German QWERTZ layout (Y and Z swapped, symbols moved).
// Its dead keys (^ ´ `, see DeadKeys) are listed as the character they
// show: followed by a space they type it.
var DE = func() (m Map) {
	m.set(2, "1234567890ß´", "!\"§$%&/()=?`")
	m.set(16, "qwertzuiopü+", "QWERTZUIOPÜ*")
	m.set(30, "asdfghjklöä^", "ASDFGHJKLÖÄ°")
	m.set(43, "#yxcvbnm,.-", "'YXCVBNM;:_")
	m[Space] = [2]rune{' ', ' '}
	m[Key102nd] = [2]rune{'<', '>'}
	return m
}()

// FR is the French AZERTY layout: A/Q and Z/W swapped, M beside L,
// and the digit row types symbols unless shifted.
var FR = func() (m Map) {
	m.set(2, "&é\"'(-è_çà)=", "1234567890°+")
	m.set(16, "azertyuiop^$", "AZERTYUIOP¨£")
	m.set(30, "qsdfghjklmù²", "QSDFGHJKLM%³")
	m.set(43, "*wxcvbn,;:!", "µWXCVBN?./§")
	m[Space] = [2]rune{' ', ' '}
	m[Key102nd] = [2]rune{'<', '>'}
	return m
}()

// DeadKeys maps, for each layout with dead keys, the character a dead
// key shows to the combining mark it puts on the next letter. A US
// scanner typing "+A" on a German host types Shift+´ then A: the host
// shows "À", one character from two keys. Only the host's dead keys
// matter: a scanner sends key positions, never composed characters.
var DeadKeys = map[*Map]map[rune]rune{
	&DE: {'`': '\u0300', '´': '\u0301', '^': '\u0302'},
	&FR: {'^': '\u0302', '¨': '\u0308'},
}

// USChar is the character the US layout types for key code with shift,
// or 0 for keys that type nothing printable (modifiers, function keys and
// codes outside the table).
func USChar(code uint16, shift bool) byte {
	if int(code) >= Size {
		return 0
	}
	s := 0
	if shift {
		s = 1
	}
	return byte(US[code][s]) // the US table is ASCII only
}
