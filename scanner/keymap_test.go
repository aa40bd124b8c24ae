package scanner

import (
	"strings"
	"testing"
)

const base45Chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

func TestUSChar(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code  uint16
		shift bool
		want  byte
	}{
		{2, false, '1'}, {11, false, '0'}, {2, true, '!'}, {12, false, '-'}, {13, true, '+'},
		{16, true, 'Q'}, {25, false, 'p'}, {30, true, 'A'}, {38, true, 'L'}, {39, true, ':'},
		{40, true, '"'}, {41, false, '`'}, {43, false, '\\'}, {44, true, 'Z'}, {50, true, 'M'},
		{51, false, ','}, {52, false, '.'}, {53, false, '/'}, {53, true, '?'}, {57, true, ' '},
		{keyEnter, false, 0}, {keyLeftShift, false, 0}, {1, false, 0}, {0, false, 0},
		{keymapSize, false, 0}, {0xffff, true, 0},
	} {
		if got := usChar(tc.code, tc.shift); got != tc.want {
			t.Errorf("usChar(%d, %v) = %q, want %q", tc.code, tc.shift, got, tc.want)
		}
	}
}

// TestKeymaps checks that each layout types every character of a pass
// from exactly one key position: the layout repair needs the mapping to
// be invertible on that alphabet.
func TestKeymaps(t *testing.T) {
	t.Parallel()
	for _, l := range layouts {
		pos := map[rune]int{}
		for code, pair := range l.m {
			for _, r := range pair {
				if r != 0 && r != ' ' {
					pos[r]++
				}
				if r > 0x7f && l.name == "us" {
					t.Errorf("us: non-ASCII %q at %d", r, code)
				}
			}
		}
		for _, r := range base45Chars {
			if r == ' ' {
				continue
			}
			if pos[r] != 1 {
				t.Errorf("%s: %q typed by %d keys", l.name, r, pos[r])
			}
		}
		for _, r := range "abcdefghijklmnopqrstuvwxyz" {
			if pos[r] != 1 {
				t.Errorf("%s: %q typed by %d keys", l.name, r, pos[r])
			}
		}
	}
	// Spot checks of what makes the layouts differ.
	if deKeymap[21][1] != 'Z' || deKeymap[44][1] != 'Y' || frKeymap[16][1] != 'A' || frKeymap[39][1] != 'M' ||
		string(frKeymap[2][0]) != "&" || !strings.ContainsRune("é", frKeymap[3][0]) {
		t.Error("layout tables are off")
	}
}
