package check_test

import (
	"strings"
	"testing"

	"passgate/check"
	"passgate/internal/checktest"
)

// The white space a checker strips around a pass is exactly what
// pass/SPEC.md section 16 lists: space, tab, CR, LF and NUL at either
// end; anything else stays and spoils the pass.
func TestCheck_WhiteSpaceAroundPass(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	text := f.Sign(f.Claims())
	if strings.HasSuffix(text, " ") {
		t.Fatal("a pass ends with a space")
	}
	for _, c := range []struct {
		name, in string
		ok       bool
	}{
		{"bare", text, true},
		{"CRLF suffix", text + "\r\n", true},
		{"all stripped bytes both sides", " \t\r\n\x00" + text + "\x00\n\r\t ", true},
		{"NBSP before", "\u00a0" + text, false},
		{"ideographic space after", text + "\u3000", false},
		{"vertical tab after", text + "\v", false},
		{"form feed before", "\f" + text, false},
		{"line break inside", text[:40] + "\n" + text[40:], false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := f.Checker.Evaluate(c.in, f.Now)
			if d.Allowed() != c.ok {
				t.Fatalf("decision %s %s", d.Decision, d.Reason)
			}
			if !c.ok && d.Reason != check.ReasonNotAPass && d.Reason != check.ReasonMalformed {
				t.Fatalf("reason %s", d.Reason)
			}
		})
	}
}
