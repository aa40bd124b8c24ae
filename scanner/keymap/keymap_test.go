package keymap

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
		{Enter, false, 0}, {LeftShift, false, 0}, {1, false, 0}, {0, false, 0},
		{Size, false, 0}, {0xffff, true, 0},
	} {
		if got := USChar(tc.code, tc.shift); got != tc.want {
			t.Errorf("USChar(%d, %v) = %q, want %q", tc.code, tc.shift, got, tc.want)
		}
	}
}

// TestKeymaps checks that each layout types every character of a pass
// from exactly one key position: the layout repair needs the mapping to
// be invertible on that alphabet.
func TestKeymaps(t *testing.T) {
	t.Parallel()
	layouts := []struct {
		name string
		m    *Map
	}{{"us", &US}, {"de", &DE}, {"fr", &FR}}
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
	if DE[21][1] != 'Z' || DE[44][1] != 'Y' || FR[16][1] != 'A' || FR[39][1] != 'M' ||
		string(FR[2][0]) != "&" || !strings.ContainsRune("é", FR[3][0]) {
		t.Error("layout tables are off")
	}
}
