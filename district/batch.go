package district

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"passgate/pass"
	"passgate/store"
)

// IssueRegistered signs a pass of kind for each registered subject as
// they are now, without changing them, and records all the passes in one
// transaction (a bulk print issues hundreds at once; a transaction per
// pass would cost an fsync each). The result is in the order of subjects;
// an unregistered subject fails the whole call with store.ErrNotFound.
func IssueRegistered(ctx context.Context, db *store.DB, subjects []pass.Subject, kind pass.Kind, actor string) ([]*Issued, error) {
	if actor == "" {
		return nil, fmt.Errorf("issue passes: no actor")
	}
	if !kind.Valid() {
		return nil, inputErrorf("unknown pass kind")
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	key, err := db.SigningKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("find signing key: %w", err)
	}
	priv, err := pass.ParsePrivateKey(key.Private)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	signer, err := pass.NewSigner(priv, key.Cert)
	if err != nil {
		return nil, err
	}
	validity := pass.PhoneValidity
	if kind == pass.Paper {
		validity = pass.PaperValidity
	}
	now := db.Now()
	out := make([]*Issued, 0, len(subjects))
	recs := make([]*store.IssuedPass, 0, len(subjects))
	for _, s := range subjects {
		p, err := db.FindPerson(ctx, s)
		if err != nil {
			return nil, err
		}
		iat, err := issueTime(ctx, db, s, now)
		if err != nil {
			return nil, err
		}
		exp := iat.Add(validity)
		if !key.NotAfter.IsZero() && exp.After(key.NotAfter) {
			exp = key.NotAfter // a pass cannot outlive its issuer's certificate
		}
		c := pass.Claims{
			Subject: s, District: d.ID, Name: p.MaskedName, IDTail: p.IDTail,
			Color: p.Color, TestedAt: p.TestedAt.Truncate(time.Second), Doses: p.Doses,
			IssuedAt: iat, ExpiresAt: exp, Kind: kind,
		}
		if _, err := rand.Read(c.ID[:]); err != nil {
			return nil, err
		}
		text, err := signer.Sign(&c)
		if err != nil {
			return nil, fmt.Errorf("sign pass: %w", err)
		}
		recs = append(recs, &store.IssuedPass{
			ID: c.ID, Subject: s, KID: key.KID, Kind: c.Kind, Color: c.Color,
			IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, Actor: actor,
		})
		out = append(out, &Issued{Text: text, Claims: c, Person: p})
	}
	if err := db.CreatePasses(ctx, recs); err != nil {
		return nil, err
	}
	return out, nil
}
