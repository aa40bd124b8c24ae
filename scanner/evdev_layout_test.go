package scanner_test

import (
	"strings"
	"testing"

	"passgate/check"
	"passgate/internal/checktest"
	"passgate/scanner/keymap"
)

// TestDetectLayout_Evdev types passes on scanners set to German and
// French layouts into the evdev reader (which reads US) and expects the
// garbled lines to be recognised and repaired.
func TestDetectLayout_Evdev(t *testing.T) {
	t.Parallel()
	needEventLayout(t)
	fx := checktest.New(t)
	good := fx.Sign(fx.Claims())
	for _, l := range []string{"de", "fr"} {
		typed, ok := typedOn(good, l)
		if !ok {
			t.Fatal(l)
		}
		var r evrec
		r.line(t, typed)
		lines := decode(t, r.b.Bytes())
		if len(lines) != 1 || lines[0] != typed {
			t.Fatalf("%s: decoded %q", l, lines)
		}
		if name, fixed, ok := check.DetectLayout(lines[0]); !ok || name != "scanner:"+l || fixed != good {
			t.Fatalf("%s: detected %q %v", l, name, ok)
		}
	}
}

// typedOn is what a scanner set to layout l types for text, read by a
// host (and the evdev reader) as US: each character's key on l, read
// through the US table.
func typedOn(text, l string) (string, bool) {
	m := map[string]*keymap.Map{"de": &keymap.DE, "fr": &keymap.FR}[l]
	var b strings.Builder
next:
	for _, r := range text {
		for code, pair := range m {
			for shift, c := range pair {
				if c == r {
					b.WriteRune(keymap.US[code][shift])
					continue next
				}
			}
		}
		return "", false
	}
	return b.String(), true
}
