package district

import (
	"context"
	"time"

	"passgate/pass"
	"passgate/store"
)

// prospect is a registered person and the issue time of a pass made for
// them now.
type prospect struct {
	person *store.Person
	iat    time.Time
}

// prospects loads the issuer and, in the order of subjects, each person
// as registered with the issue time of a pass made now. It is the part
// IssueRegistered and Preview share, so the previewed pass is the one
// that would be issued.
func prospects(ctx context.Context, db *store.DB, subjects []pass.Subject, kind pass.Kind) (*issuer, []prospect, error) {
	if !kind.Valid() {
		return nil, nil, inputErrorf("unknown pass kind")
	}
	is, err := loadIssuer(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	now := db.Now()
	out := make([]prospect, 0, len(subjects))
	for _, s := range subjects {
		p, err := db.FindPerson(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		iat, err := currentIssueTime(ctx, db, s, now, is.skew, is.loc)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, prospect{person: p, iat: iat})
	}
	return is, out, nil
}

// Preview returns the claims of the passes of kind that IssueRegistered
// would sign for subjects now, in their order, without signing or
// recording anything (the claims carry no pass id). The desk judges them
// against the check policy to say what a gate will answer before it
// issues. Errors are IssueRegistered's: store.ErrNotFound for a subject
// not registered, *StatusElsewhereError when the register is out of date.
func Preview(ctx context.Context, db *store.DB, subjects []pass.Subject, kind pass.Kind) ([]pass.Claims, error) {
	is, ps, err := prospects(ctx, db, subjects, kind)
	if err != nil {
		return nil, err
	}
	out := make([]pass.Claims, len(ps))
	for i, p := range ps {
		out[i] = is.claims(p.person, kind, 0, p.iat)
	}
	return out, nil
}
