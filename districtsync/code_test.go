package districtsync

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCode_RoundTrip(t *testing.T) {
	t.Parallel()
	pin := bytes.Repeat([]byte{0xa5}, PinSize)
	c, err := NewCode(pin)
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	if !strings.HasPrefix(s, "PGE1-") {
		t.Fatalf("code %q lacks the prefix", s)
	}
	// 4 + 13 groups of 4 (the last of 4 too: 52 characters) with hyphens.
	if len(s) != 4+13*5 {
		t.Fatalf("code %q is %d characters", s, len(s))
	}
	got, err := ParseCode(s)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("parsed %+v, want %+v", got, c)
	}
	c2, _ := NewCode(pin)
	if c2.Secret == c.Secret {
		t.Fatal("two codes share a secret")
	}
	if bytes.Equal(c.Hash(), c2.Hash()) || len(c.Hash()) != 32 {
		t.Fatal("code hashes do not tell secrets apart")
	}
	if _, err := NewCode(pin[:5]); err == nil {
		t.Fatal("NewCode took a short pin")
	}
}

// What people do to a code when they copy it: all accepted as the same
// code.
func TestCode_Forgiving(t *testing.T) {
	t.Parallel()
	c, _ := NewCode(bytes.Repeat([]byte{7}, PinSize))
	s := c.String()
	plain := strings.ReplaceAll(s, "-", "")
	for name, v := range map[string]string{
		"lower case":      strings.ToLower(s),
		"no hyphens":      plain,
		"spaces":          strings.ReplaceAll(s, "-", " "),
		"surrounding ws":  "  " + s + "\n",
		"digit one for I": strings.ReplaceAll(s, "I", "1"),
		"digit 0 for O":   strings.ReplaceAll(s, "O", "0"),
		"line broken":     s[:30] + "\r\n" + s[30:],
	} {
		got, err := ParseCode(v)
		if err != nil {
			t.Errorf("%s: %q: %v", name, v, err)
			continue
		}
		if got != c {
			t.Errorf("%s: parsed to another code", name)
		}
	}
}

func TestCode_Hostile(t *testing.T) {
	t.Parallel()
	c, _ := NewCode(bytes.Repeat([]byte{0xff}, PinSize))
	s := c.String()
	body := strings.ReplaceAll(s[5:], "-", "")
	// The last character holds 2 data bits; flipping a padding bit must
	// be refused, not read as the same code.
	last := body[len(body)-1]
	var padFlip byte
	for _, ch := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") {
		if ch != last && codeEncoding.EncodeToString(mustDecode(t, body[:len(body)-1]+string(ch))) != body[:len(body)-1]+string(ch) {
			padFlip = ch
			break
		}
	}
	cases := map[string]string{
		"empty":          "",
		"prefix only":    "PGE1-",
		"other product":  "XYZ1-" + s[5:],
		"other version":  "PGE2-" + s[5:],
		"truncated":      s[:len(s)-1],
		"one more group": s + "-AAAA",
		"bad character":  s[:10] + "8" + s[11:],
		"punctuation":    s[:10] + "!" + s[11:],
		"non-ascii":      s[:10] + "é" + s[12:],
		"nul byte":       s[:10] + "\x00" + s[11:],
		"huge":           s + strings.Repeat(" ", 300),
		"base64 instead": "PGE1-" + strings.Repeat("+/", 26),
		"padding":        s + "======",
	}
	if padFlip != 0 {
		cases["padding bits set"] = "PGE1-" + body[:len(body)-1] + string(padFlip)
	}
	for name, v := range cases {
		if _, err := ParseCode(v); !errors.Is(err, ErrCode) {
			t.Errorf("%s: %q: got %v, want ErrCode", name, v, err)
		}
	}
}

func mustDecode(t *testing.T, s string) []byte {
	b, _ := codeEncoding.DecodeString(s)
	return b
}

// FuzzParseCode: never panics; whatever parses writes back to a code
// that parses to the same value.
func FuzzParseCode(f *testing.F) {
	c, _ := NewCode(bytes.Repeat([]byte{1}, PinSize))
	f.Add(c.String())
	f.Add(strings.ToLower(c.String()))
	f.Add("PGE1-")
	f.Add("pge1 aaaa")
	f.Add(strings.Repeat("A", 300))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseCode(s)
		if err != nil {
			if !errors.Is(err, ErrCode) {
				t.Fatalf("error %v does not wrap ErrCode", err)
			}
			return
		}
		again, err := ParseCode(got.String())
		if err != nil || again != got {
			t.Fatalf("%q parsed, but its canonical form %q does not round-trip: %v", s, got.String(), err)
		}
	})
}
