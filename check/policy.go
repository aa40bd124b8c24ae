package check

import (
	"time"

	"passgate/pass"
	"passgate/store"
)

// colorSet is the set of colours a policy lets through, indexed by
// pass.Color, so that a check tests membership without a loop.
type colorSet [4]bool

func colorsOf(pol *store.Policy) colorSet {
	var s colorSet
	for _, col := range pol.Colors {
		if col.Valid() {
			s[col] = true
		}
	}
	return s
}

// Judge applies the check policy pol at now to the claims of a pass whose
// signature verified and that no revocation voids, exactly as a gate does:
// validity window, paper, colour, test age, doses. The issuing desk asks
// it what a gate under this policy will answer before a pass is issued,
// so the desk and the gate cannot disagree.
func Judge(pol *store.Policy, c *pass.Claims, now time.Time) Reason {
	allowed := colorsOf(pol)
	return judgePolicy(pol, &allowed, c, now)
}

// UsableUntil is the last moment a gate under pol allows a pass with
// claims c (revocations aside): its expiry, or earlier when the policy
// wants a recent test and the test ages out first. Zero when the policy
// refuses the pass whatever the time (no test, wrong colour, too few
// doses, paper refused).
func UsableUntil(pol *store.Policy, c *pass.Claims) time.Time {
	until := c.ExpiresAt
	if pol.MaxTestAge > 0 && !c.TestedAt.IsZero() {
		if t := c.TestedAt.Add(pol.MaxTestAge); t.Before(until) {
			until = t
		}
	}
	// Judged at its issue time, a pass fails only on what time does not
	// change; a test that aged out before issue makes until precede it.
	if r := Judge(pol, c, c.IssuedAt); r != ReasonOK && r != ReasonTestTooOld {
		return time.Time{}
	}
	if until.Before(c.IssuedAt) {
		return time.Time{}
	}
	return until
}

// judgePolicy is Judge with the colour set prepared: the check path keeps
// it in its state snapshot and pays for no allocation per scan.
func judgePolicy(pol *store.Policy, allowed *colorSet, c *pass.Claims, now time.Time) Reason {
	if now.After(c.ExpiresAt.Add(pol.ClockSkew)) {
		return ReasonExpired
	}
	if c.IssuedAt.After(now.Add(pol.ClockSkew)) {
		return ReasonNotYetValid
	}
	if c.Kind == pass.Paper && !pol.AcceptPaper {
		return ReasonPaperRefused
	}
	if !allowed[c.Color] {
		switch c.Color {
		case pass.Yellow:
			return ReasonStatusYellow
		case pass.Red:
			return ReasonStatusRed
		default:
			return ReasonStatusGreen
		}
	}
	if pol.MaxTestAge > 0 {
		if c.TestedAt.IsZero() {
			return ReasonTestMissing
		}
		if now.Sub(c.TestedAt) > pol.MaxTestAge {
			return ReasonTestTooOld
		}
	}
	if c.Doses < pol.MinDoses {
		return ReasonDosesMissing
	}
	return ReasonOK
}
