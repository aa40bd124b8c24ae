package district

import (
	"context"
	"fmt"

	"passgate/pass"
	"passgate/store"
)

// IssueRegistered signs a pass of kind for each registered subject as
// they are now, without changing them, and records all the passes in one
// transaction (a bulk print issues hundreds at once; a transaction per
// pass would cost an fsync each). The result is in the order of subjects;
// an unregistered subject fails the whole call with store.ErrNotFound.
func IssueRegistered(ctx context.Context, db *store.DB, subjects []pass.Subject, kind pass.Kind, actor store.Actor) ([]*Issued, error) {
	if actor == "" {
		return nil, fmt.Errorf("issue passes: no actor")
	}
	is, ps, err := prospects(ctx, db, subjects, kind)
	if err != nil {
		return nil, err
	}
	out := make([]*Issued, 0, len(ps))
	recs := make([]*store.IssuedPass, 0, len(ps))
	for _, p := range ps {
		iss, rec, err := is.sign(p.person, kind, 0, p.iat, actor)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
		out = append(out, iss)
	}
	if err := db.CreatePasses(ctx, recs); err != nil {
		return nil, err
	}
	return out, nil
}
