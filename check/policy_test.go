package check_test

import (
	"testing"
	"time"

	"passgate/check"
	"passgate/internal/checktest"
	"passgate/pass"
	"passgate/store"
)

// TestJudge_AgreesWithCheck: what Judge says of a pass's claims is what
// the gate pipeline decides for the signed pass, policy by policy, so the
// desk's warning before issuing cannot contradict the gate.
func TestJudge_AgreesWithCheck(t *testing.T) {
	t.Parallel()
	f := checktest.New(t)
	policies := map[string]func(*store.Policy){
		"default":  nil,
		"no test":  func(p *store.Policy) { p.MaxTestAge = 0 },
		"48h":      func(p *store.Policy) { p.MaxTestAge = 48 * time.Hour },
		"2 doses":  func(p *store.Policy) { p.MinDoses = 2 },
		"no paper": func(p *store.Policy) { p.AcceptPaper = false },
		"yellow":   func(p *store.Policy) { p.Colors = []pass.Color{pass.Green, pass.Yellow} },
	}
	mods := map[string]func(*pass.Claims){
		"fresh":      nil,
		"untested":   func(c *pass.Claims) { c.TestedAt = time.Time{} },
		"tested 60h": func(c *pass.Claims) { c.TestedAt = f.Now.Add(-60 * time.Hour) },
		"tested 80h": func(c *pass.Claims) { c.TestedAt = f.Now.Add(-80 * time.Hour) },
		"one dose":   func(c *pass.Claims) { c.Doses = 1 },
		"paper":      func(c *pass.Claims) { c.Kind = pass.Paper },
		"yellow":     func(c *pass.Claims) { c.Color = pass.Yellow },
		"red":        func(c *pass.Claims) { c.Color = pass.Red },
		"expired":    func(c *pass.Claims) { c.IssuedAt, c.ExpiresAt = f.Now.Add(-25*time.Hour), f.Now.Add(-time.Hour) },
		"future":     func(c *pass.Claims) { c.IssuedAt = f.Now.Add(time.Hour) },
	}
	seen := map[check.Reason]bool{}
	for pname, pmod := range policies {
		setPolicy(f, pmod)
		pol := f.Checker.Policy()
		for cname, cmod := range mods {
			c := f.Claims()
			if cmod != nil {
				cmod(&c)
			}
			d := f.Checker.Evaluate(f.Sign(c), f.Now)
			if got := check.Judge(&pol, &c, f.Now); got != d.Reason {
				t.Errorf("%s / %s: Judge %s, the check %s", pname, cname, got, d.Reason)
			}
			seen[d.Reason] = true
		}
	}
	for _, r := range []check.Reason{check.ReasonOK, check.ReasonTestMissing, check.ReasonTestTooOld, check.ReasonDosesMissing,
		check.ReasonPaperRefused, check.ReasonStatusYellow, check.ReasonStatusRed, check.ReasonExpired, check.ReasonNotYetValid} {
		if !seen[r] {
			t.Errorf("no case reached %s", r)
		}
	}
}

// TestUsableUntil: a card's validity under the policy ends with its test
// when that comes first, and is zero when the policy refuses the card
// whatever the time.
func TestUsableUntil(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	tested := now.Add(-2 * time.Hour)
	paper := pass.Claims{Color: pass.Green, Kind: pass.Paper, TestedAt: tested, IssuedAt: now, ExpiresAt: now.Add(180 * 24 * time.Hour)}
	def := store.DefaultPolicy()
	noTest := store.DefaultPolicy()
	noTest.MaxTestAge = 0
	untested := paper
	untested.TestedAt = time.Time{}
	stale := paper
	stale.TestedAt = now.Add(-100 * time.Hour)
	red := paper
	red.Color = pass.Red
	for name, tt := range map[string]struct {
		pol  store.Policy
		c    pass.Claims
		want time.Time
	}{
		"test bound":     {def, paper, tested.Add(72 * time.Hour)},
		"no test needed": {noTest, paper, paper.ExpiresAt},
		"untested":       {def, untested, time.Time{}},
		"untested, fine": {noTest, untested, paper.ExpiresAt},
		"test aged out":  {def, stale, time.Time{}},
		"red":            {def, red, time.Time{}},
	} {
		if got := check.UsableUntil(&tt.pol, &tt.c); !got.Equal(tt.want) {
			t.Errorf("%s: %s, want %s", name, got, tt.want)
		}
	}
}
