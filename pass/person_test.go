package pass

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"unicode/utf8"
)

func TestNormalizeID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"11010119900307123x", "11010119900307123X"},
		{" 110101 1990 0307 123X ", "11010119900307123X"},
		{"110101\u30001990\t0307\n123x", "11010119900307123X"},
		{"１１０１０１１９９００３０７１２３ｘ", "11010119900307123X"},
		{"Ｅ１２３４５６７８", "E12345678"},
		{"\u200bg1234567\ufeff", "G1234567"},
		{"h-1234567(8)", "H-1234567(8)"},
		{"", ""},
		{"é12", "é12"}, // non-ASCII letters are kept as they are
	} {
		if got := NormalizeID(tc.in); got != tc.want {
			t.Errorf("NormalizeID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPseudonym(t *testing.T) {
	t.Parallel()
	key := []byte("district secret")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("11010119900307123X"))
	var want Subject
	copy(want[:], m.Sum(nil))
	for _, id := range []string{"11010119900307123X", "11010119900307123x", " 110101 19900307123x", "１１０１０１１９９００３０７１２３ｘ"} {
		if got := Pseudonym(key, id); got != want {
			t.Errorf("Pseudonym(%q) = %v, want %v", id, got, want)
		}
	}
	if Pseudonym([]byte("other secret"), "11010119900307123X") == want {
		t.Error("pseudonym does not depend on the key")
	}
	if Pseudonym(key, "11010119900307124X") == want {
		t.Error("different IDs share a pseudonym")
	}
}

func TestMaskName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"张三丰", "张*丰"},
		{"张三", "张*"},
		{"张", "*"},
		{"", ""},
		{"   ", ""},
		{" 欧阳娜娜 ", "欧**娜"},
		{"Li Wei", "L****i"},
		{"阿卜杜热合曼·买买提艾力江", "阿***********江"},
		{"阿卜杜热合曼·买买提艾力江·吐尔逊托合提", "阿**************提"},
		{"张\u202e三丰", "张*丰"},
		{"张\x00三", "张*"},
	} {
		got := MaskName(tc.in)
		if got != tc.want {
			t.Errorf("MaskName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > maxMaskedRunes {
			t.Errorf("MaskName(%q) has %d runes", tc.in, n)
		}
	}
}

func TestIDTail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"11010119900307123x", "123X"},
		{"1101 0119 9003 0712 3x", "123X"},
		{"１２３ｘ", "123X"},
		{"AB", "AB"},
		{"", ""},
		{"证件号码", "证件号码"},
		{"a证件号码", "证件号码"},
	} {
		if got := IDTail(tc.in); got != tc.want {
			t.Errorf("IDTail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
