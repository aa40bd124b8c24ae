package check_test

import (
	"slices"
	"strings"
	"testing"

	"passgate/check"
	"passgate/internal/checktest"
	"passgate/pass"
)

// FuzzCheck feeds arbitrary scanner input through the whole decision
// pipeline (decode, verify, revocation, policy). It must never panic, every
// answer must carry a documented reason, and only a fully valid pass may be
// allowed.
func FuzzCheck(f *testing.F) {
	fx := checktest.New(f)
	good := fx.Sign(fx.Claims())
	red := fx.Claims()
	red.Color = pass.Red
	for _, s := range []string{
		good, good + "\r\n", fx.Sign(red), "", " ", pass.Prefix, pass.Prefix + ":::", "HC1:" + good[4:],
		strings.ToLower(good), good[:len(good)/2], good[:len(good)-1] + "0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d := fx.Checker.Evaluate(raw, fx.Now)
		if !slices.Contains(check.Reasons, d.Reason) {
			t.Fatalf("undocumented reason %q", d.Reason)
		}
		if d.Allowed() != (d.Reason == check.ReasonOK) {
			t.Fatalf("decision %s with reason %s", d.Decision, d.Reason)
		}
		if d.Allowed() {
			if !d.Color.Valid() || !d.Kind.Valid() || d.PassID.IsZero() || d.Subject.IsZero() {
				t.Fatalf("allowed without valid display data: %+v", d)
			}
			if d.ExpiresAt.Before(fx.Now.Add(-fx.Checker.Policy().ClockSkew)) {
				t.Fatalf("allowed an expired pass: %+v", d)
			}
		}
	})
}
