package web

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
	"passgate/web/view"
)

// The desk judges every pass it is about to issue with the checker's own
// policy rules (check.Judge), against this appliance's current policy,
// so it can say what the gate will answer before the pass leaves the desk.

// refusal says that a gate here refuses a pass for reason r, in t's
// language; "" when r lets it through.
func refusal(t i18n.Printer, r check.Reason) string {
	if r == check.ReasonOK {
		return ""
	}
	return t.T("verdict.deny", t.T("reason."+string(r)))
}

// testLine is the policy-relevant test date of claims c: the sample time
// and, when the policy wants a recent test, how long it counts ("核酸
// 11-30 08:00，72 小时内有效"); "" when there is no test.
func testLine(t i18n.Printer, pol *store.Policy, c *pass.Claims) string {
	if c.TestedAt.IsZero() {
		return ""
	}
	at := c.TestedAt.In(pol.Location()).Format("01-02 15:04")
	if pol.MaxTestAge <= 0 {
		return t.T("verdict.test_sampled", at)
	}
	return t.T("verdict.test_line", at, int(pol.MaxTestAge/time.Hour))
}

// judgeCard fills in what a gate here answers for card's claims c at now,
// and how long its policy accepts it.
func judgeCard(t i18n.Printer, pol *store.Policy, c *pass.Claims, now time.Time, card *view.PassCard) {
	card.Refusal = refusal(t, check.Judge(pol, c, now))
	card.TestLine = testLine(t, pol, c)
	card.ValidUntil = check.UsableUntil(pol, c)
	card.TestBound = !card.ValidUntil.IsZero() && card.ValidUntil.Before(c.ExpiresAt)
}

// personVerdict tells what the passes the desk would issue for subject now
// will get at a gate here. A status changed elsewhere in the district
// blocks issuing; the page says that instead.
func (s *Server) personVerdict(ctx context.Context, t i18n.Printer, subject pass.Subject) (view.Verdict, error) {
	var v view.Verdict
	pol, err := s.db.Policy(ctx)
	if err != nil {
		return v, err
	}
	now := s.db.Now()
	var claims [2]pass.Claims
	for i, kind := range []pass.Kind{pass.Phone, pass.Paper} {
		cs, err := district.Preview(ctx, s.db, []pass.Subject{subject}, kind)
		var se *district.StatusElsewhereError
		if errors.As(err, &se) {
			v.Unknown = t.T("verdict.elsewhere", t.T("desk.err.status_elsewhere", se.At.In(pol.Location()).Format("2006-01-02 15:04"), se.Reason))
			return v, nil
		}
		if err != nil {
			return v, err
		}
		claims[i] = cs[0]
	}
	phone, paper := check.Judge(pol, &claims[0], now), check.Judge(pol, &claims[1], now)
	v.Refusal = refusal(t, phone)
	if paper != phone {
		v.PaperRefusal = refusal(t, paper)
	}
	v.RecordTest = phone == check.ReasonTestMissing || phone == check.ReasonTestTooOld
	v.TestLine = testLine(t, pol, &claims[0])
	return v, nil
}

// splitRefused previews the paper passes of subjects and keeps those a
// gate here would accept; the others come back as the list a bulk print
// shows instead of printing useless cards.
func (s *Server) splitRefused(ctx context.Context, t i18n.Printer, subjects []pass.Subject) ([]pass.Subject, []view.SkippedCard, error) {
	pol, err := s.db.Policy(ctx)
	if err != nil {
		return nil, nil, err
	}
	claims, err := district.Preview(ctx, s.db, subjects, pass.Paper)
	if err != nil {
		return nil, nil, err
	}
	now := s.db.Now()
	keep := make([]pass.Subject, 0, len(subjects))
	var skipped []view.SkippedCard
	for i := range claims {
		c := &claims[i]
		if r := check.Judge(pol, c, now); r != check.ReasonOK {
			skipped = append(skipped, view.SkippedCard{
				MaskedName: c.Name, IDTail: c.IDTail, Refusal: refusal(t, r), Subject: hex.EncodeToString(c.Subject[:]),
			})
			continue
		}
		keep = append(keep, subjects[i])
	}
	return keep, skipped, nil
}
