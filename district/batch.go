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
func IssueRegistered(ctx context.Context, db *store.DB, subjects []pass.Subject, kind pass.Kind, actor string) ([]*Issued, error) {
	if actor == "" {
		return nil, fmt.Errorf("issue passes: no actor")
	}
	if !kind.Valid() {
		return nil, inputErrorf("unknown pass kind")
	}
	is, err := loadIssuer(ctx, db)
	if err != nil {
		return nil, err
	}
	now := db.Now()
	out := make([]*Issued, 0, len(subjects))
	recs := make([]*store.IssuedPass, 0, len(subjects))
	for _, s := range subjects {
		p, err := db.FindPerson(ctx, s)
		if err != nil {
			return nil, err
		}
		iat, err := issueTime(ctx, db, s, now, is.skew)
		if err != nil {
			return nil, err
		}
		iss, rec, err := is.sign(p, kind, 0, iat, actor)
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
