package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PassIssue is everything issuing a pass changes: the person's register
// entry, their status when the colour changes, and the pass with its
// record.
type PassIssue struct {
	// Person is registered if new, else updated, as by SavePerson.
	Person *Person
	// StatusReason is the reason recorded when Person.Color differs from
	// the registered colour: a status change, as by SetStatus.
	StatusReason string
	Actor        Actor
	// Sign makes the pass once the person is saved. cutoff is the
	// subject's revocation cutoff then (zero for none) and elsewhere the
	// latest change of their status made elsewhere in the district since
	// the last one recorded here (nil for none; see
	// StatusChangedElsewhere). An error from Sign undoes everything and
	// is returned as it is.
	Sign func(cutoff time.Time, elsewhere *Revocation) (*IssuedPass, error)
}

// IssuePass saves the person, changes their status if the colour
// changed, signs the pass and records it, in one transaction: a refusal
// or failure at any step leaves nothing behind, so the register never
// holds a change made for a pass that was not issued.
func (db *DB) IssuePass(ctx context.Context, is PassIssue) (*IssuedPass, error) {
	switch {
	case is.Person == nil:
		return nil, fmt.Errorf("issue pass: %w: nil person", ErrInvalid)
	case is.Sign == nil:
		return nil, fmt.Errorf("issue pass: %w: no signer", ErrInvalid)
	}
	p, now := is.Person, db.now()
	var rec *IssuedPass
	var signErr error
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := changeStatusForIssue(ctx, tx, is, now); err != nil {
			return err
		}
		if err := savePerson(ctx, tx, p, is.Actor, now); err != nil {
			return err
		}
		elsewhere, err := statusChangedElsewhere(ctx, tx, p.Subject)
		if err != nil {
			return err
		}
		cutoff, err := subjectCutoff(ctx, tx, p.Subject)
		if err != nil {
			return err
		}
		if rec, signErr = is.Sign(cutoff, elsewhere); signErr != nil {
			return signErr
		}
		aw, err := newAuditWriter(ctx, tx, false)
		if err != nil {
			return err
		}
		if err := createPass(ctx, tx, aw, rec, now); err != nil {
			return err
		}
		return aw.close(ctx)
	})
	if signErr != nil {
		return nil, signErr // the caller's own refusal, as it made it
	}
	if err != nil {
		return nil, fmt.Errorf("issue pass to %x: %w", p.Subject[:], err)
	}
	return rec, nil
}

// changeStatusForIssue records the status change of a registered person
// whose colour the issue changes, with the issue's reason; a new person's
// first status is recorded by savePerson.
func changeStatusForIssue(ctx context.Context, tx *sql.Tx, is PassIssue, now time.Time) error {
	old, err := findPerson(ctx, tx, is.Person.Subject)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil || old.Color == is.Person.Color {
		return err
	}
	if is.StatusReason == "" {
		return fmt.Errorf("%w: status change without a reason", ErrInvalid)
	}
	_, err = changeStatus(ctx, tx, old, is.Person.Color, is.StatusReason, is.Actor, now)
	return err
}
