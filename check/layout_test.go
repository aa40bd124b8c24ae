package check_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"passgate/check"
	"passgate/internal/checktest"
)

// TestCorruptLayout pins the garbling model to hand-worked examples, so
// that the detection below is not only checked against itself.
func TestCorruptLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, scanner, host string
		caps                bool
		want                string
	}{
		// A German scanner read as US: Y/Z swapped, symbols moved.
		{"PG1:YZ-/*+", "de", "us", false, "PG1>ZY/&}]"},
		// A French scanner read as US: A/Q, Z/W swapped, M on the ';' key,
		// digits typed with Shift.
		{"PG1:AQZWM0", "fr", "us", false, "PG!.QAWZ:)"},
		// A US scanner on a French host: digits come out as the unshifted
		// symbols of the AZERTY digit row.
		{"PG1:1234567890", "us", "fr", false, `PG&M&é"'(-è_çà`},
		{"PG1:YZ", "us", "de", false, "PG1ÖZY"},
		// The German host's dead key (Shift+´, where US has '+') accents
		// a vowel after it, types itself before a space (which it eats)
		// and before anything else.
		{"PG1:+A+B+ C+E", "us", "de", false, "PG1ÖÀ`B`CÈ"},
		{"PG1:+A", "us", "de", true, "pg1öà"},
		{"PG1:AB", "us", "us", true, "pg1:ab"},
	} {
		got, ok := check.CorruptLayout(tc.text, tc.scanner, tc.host, tc.caps)
		if !ok || got != tc.want {
			t.Errorf("%s on %s (caps %v): %q %v, want %q", tc.scanner, tc.host, tc.caps, got, ok, tc.want)
		}
		name, fixed, ok := check.DetectLayout(tc.want)
		// These texts are not passes: they must not be flagged.
		if ok {
			t.Errorf("%q flagged as %s (%q)", tc.want, name, fixed)
		}
	}
}

// TestDetectLayout garbles real passes every way the model knows and
// expects each repaired to the exact original, with the right name.
func TestDetectLayout(t *testing.T) {
	t.Parallel()
	fx := checktest.New(t)
	passes := []string{fx.Sign(fx.Claims()), fx.Sign(fx.Claims()), fx.Sign(fx.Claims())}
	names := map[string]string{"us": "", "de": "de", "fr": "fr"}
	for _, caps := range []bool{false, true} {
		for _, host := range []string{"us", "de", "fr"} {
			for _, sc := range []string{"us", "de", "fr"} {
				if sc == host && (!caps || sc != "us") {
					continue
				}
				var parts []string
				if sc != "us" {
					parts = append(parts, "scanner:"+names[sc])
				}
				if host != "us" {
					parts = append(parts, "host:"+names[host])
				}
				if caps {
					parts = append(parts, "capslock")
				}
				want := strings.Join(parts, "+")
				for _, p := range passes {
					bad, ok := check.CorruptLayout(p, sc, host, caps)
					if !ok || bad == p {
						t.Fatalf("%s: cannot garble (%v)", want, ok)
					}
					// The checker tells staff to fix the scanner.
					if r := fx.Checker.Evaluate(bad, fx.Now).Reason; r != check.ReasonScannerLayout {
						t.Fatalf("%s: garbled pass has reason %s, want scanner_layout", want, r)
					}
					name, fixed, ok := check.DetectLayout(bad + "\r\n")
					if !ok || name != want || fixed != p {
						t.Fatalf("%s: detected %q %v, fixed equal %v", want, name, ok, fixed == p)
					}
					if r, ok := check.LayoutReason(bad); !ok || r != check.ReasonScannerLayout {
						t.Fatalf("%s: layoutReason %q %v", want, r, ok)
					}
					if d := fx.Checker.Evaluate(fixed, fx.Now); !d.Allowed() {
						t.Fatalf("%s: fixed pass %s", want, d.Reason)
					}
				}
			}
		}
	}
}

// TestDetectLayout_DeadKeys: a US scanner on a German host, where the
// key for '+' is a dead key. "+A" arrives as "À", "+ " as "`" (the space
// eaten). Both must be read as scanner_layout and repaired, not refused
// as not_a_pass.
func TestDetectLayout_DeadKeys(t *testing.T) {
	t.Parallel()
	fx := checktest.New(t)
	find := func(what string, has func(string) bool) string {
		for range 500 {
			if p := fx.Sign(fx.Claims()); has(p) {
				return p
			}
		}
		t.Fatalf("no pass with %s in 500", what)
		return ""
	}
	accented := find("+ before a vowel", func(p string) bool {
		for _, v := range []string{"+A", "+E", "+I", "+O", "+U"} {
			if strings.Contains(p, v) {
				return true
			}
		}
		return false
	})
	eaten := find("+ before a space", func(p string) bool { return strings.Contains(p, "+ ") })
	for _, p := range []string{accented, eaten} {
		for _, caps := range []bool{false, true} {
			bad, ok := check.CorruptLayout(p, "us", "de", caps)
			if !ok {
				t.Fatal("cannot garble")
			}
			if r := fx.Checker.Evaluate(bad, fx.Now).Reason; r != check.ReasonScannerLayout {
				t.Errorf("caps %v: %.40q… has reason %s, want scanner_layout", caps, bad, r)
			}
			if _, fixed, ok := check.DetectLayout(bad); !ok || fixed != p {
				t.Errorf("caps %v: not repaired (%v)", caps, ok)
			}
		}
	}
}

// TestDetectLayout_NotFlagged: valid passes, other text, damaged passes
// and random input are never taken for a layout problem.
func TestDetectLayout_NotFlagged(t *testing.T) {
	t.Parallel()
	fx := checktest.New(t)
	good := fx.Sign(fx.Claims())
	damaged := good[:len(good)/2] + "0" + good[len(good)/2+1:]
	if damaged == good {
		damaged = good[:len(good)/2] + "1" + good[len(good)/2+1:]
	}
	damagedDE, _ := check.CorruptLayout(damaged, "de", "us", false)
	cutFR, _ := check.CorruptLayout(good[:len(good)-2], "fr", "us", false)
	damagedHostDE, _ := check.CorruptLayout(damaged, "us", "de", false)
	cases := []string{
		"", " ", "PG1:", "PG1>", "PG!.", "pg1:", good, strings.ToLower(good[:4]) + good[4:],
		"HELLO WORLD", "https://example.com/pass?id=1", "HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC",
		"PG1:" + strings.Repeat("ZZZ", 100), "PG1>" + strings.Repeat("YYY", 100), damaged, damagedDE, cutFR,
		strings.Repeat("\xff", 10000), "PG1>" + strings.Repeat("Ö", check.MaxInput),
		// German-host dead keys: a flood of them, accented letters no
		// pass has, and a damaged pass read through dead keys.
		"PG1Ö" + strings.Repeat("`0", check.MaxInput/2), "PG1Ö" + strings.Repeat("ÀÈ`", 200),
		"PG1ÖÝÂ", "PG1Ö`", damagedHostDE,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alpha = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:>!.&}]Öé`ÀÈ"
	for range 300 {
		var b strings.Builder
		b.WriteString([]string{"PG1>", "PG!.", "PG&M", "pg1:", "PG1Ö"}[rng.IntN(5)])
		for range rng.IntN(600) {
			b.WriteByte(alpha[rng.IntN(len(alpha))])
		}
		cases = append(cases, strings.ToValidUTF8(b.String(), "?"))
	}
	for _, c := range cases {
		if name, _, ok := check.DetectLayout(c); ok {
			t.Errorf("%.40q flagged as %s", c, name)
		}
		if _, ok := check.LayoutReason(c); ok {
			t.Errorf("%.40q has a layout reason", c)
		}
	}
}

// FuzzDetectLayout: never panics; a detection always repairs to a
// different text in the pass alphabet with the pass prefix.
func FuzzDetectLayout(f *testing.F) {
	f.Add("PG1>ZY/&}]")
	f.Add(`PG&M&é"'(-è_çà`)
	f.Add("pg1:ab")
	f.Add("PG1ÖÀ`B`CÈ")
	f.Add("pg1öà` ")
	f.Add("PG!.QAWZ:)")
	f.Add("")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, raw string) {
		name, fixed, ok := check.DetectLayout(raw)
		if !ok {
			if name != "" || fixed != "" {
				t.Fatalf("not ok but %q %q", name, fixed)
			}
			return
		}
		if name == "" || !strings.HasPrefix(fixed, "PG1:") || fixed == strings.TrimSpace(raw) || len(fixed) > check.MaxInput {
			t.Fatalf("detected %q as %q", name, fixed)
		}
		for i := 4; i < len(fixed); i++ {
			if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", rune(fixed[i])) {
				t.Fatalf("fixed text has %q", fixed[i])
			}
		}
	})
}

// BenchmarkDetectLayout measures what a refused input costs on top of its
// check: a garbled pass (repaired and decoded) and other text (ruled out
// by the prefix).
func BenchmarkDetectLayout(b *testing.B) {
	fx := checktest.New(b)
	bad, _ := check.CorruptLayout(fx.Sign(fx.Claims()), "fr", "us", false)
	for _, bc := range []struct{ name, raw string }{
		{"garbled", bad},
		{"other", "https://example.com/" + strings.Repeat("x", 500)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				check.DetectLayout(bc.raw)
			}
		})
	}
}
