package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// reasonRegistered is the reason of a person's first status.
const reasonRegistered = "registered"

// reasonUpdated is the reason recorded when SavePerson changes the colour
// of a known person.
const reasonUpdated = "updated"

// SavePerson creates or updates a person (by subject) and sets its
// CreatedAt and UpdatedAt. A new person's first status is recorded in the
// history with actor and reason "registered". On a known person a changed
// colour is a status change like SetStatus (history with reason "updated",
// and the subject's earlier passes voided), so that no colour ever
// changes without a trace.
func (db *DB) SavePerson(ctx context.Context, p *Person, actor string) error {
	if p == nil {
		return fmt.Errorf("save person: %w: nil person", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return savePerson(ctx, tx, p, actor, now)
	})
	if err != nil {
		return fmt.Errorf("save person %x: %w", p.Subject[:], err)
	}
	return nil
}

// FindPerson returns a person or ErrNotFound.
func (db *DB) FindPerson(ctx context.Context, s pass.Subject) (*Person, error) {
	var p *Person
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		p, err = findPerson(ctx, tx, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find person %x: %w", s[:], err)
	}
	return p, nil
}

// SetStatus changes a person's colour, records the change with its reason
// and actor, and voids every pass of the subject issued up to now (a
// subject revocation), all in one transaction. ErrNotFound if the person
// is not registered; ErrInvalid without a reason or an actor.
func (db *DB) SetStatus(ctx context.Context, s pass.Subject, to pass.Color, reason, actor string) (*StatusChange, error) {
	now := db.now()
	var c *StatusChange
	err := db.update(ctx, func(tx *sql.Tx) error {
		if reason == "" {
			return fmt.Errorf("%w: status change without a reason", ErrInvalid)
		}
		p, err := findPerson(ctx, tx, s)
		if err != nil {
			return err
		}
		c, err = changeStatus(ctx, tx, p, to, reason, actor, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("set status of %x to colour %d: %w", s[:], uint8(to), err)
	}
	return c, nil
}

// StatusHistory lists a person's status changes, oldest first;
// ErrNotFound if the person is not registered.
func (db *DB) StatusHistory(ctx context.Context, s pass.Subject) ([]*StatusChange, error) {
	var list []*StatusChange
	err := db.view(ctx, func(tx *sql.Tx) error {
		if _, err := findPerson(ctx, tx, s); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT id, from_color, to_color, reason, actor, at_ms
			FROM status_changes WHERE subject = ? ORDER BY id`, s[:])
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := &StatusChange{Subject: s}
			var from sql.NullInt64
			var to, at int64
			if err := rows.Scan(&c.ID, &from, &to, &c.Reason, &c.Actor, &at); err != nil {
				return err
			}
			c.From, c.To, c.At = pass.Color(from.Int64), pass.Color(to), time.UnixMilli(at)
			list = append(list, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("find status history of %x: %w", s[:], err)
	}
	return list, nil
}

func validColor(c pass.Color) bool { return c >= pass.Green && c <= pass.Red }

func savePerson(ctx context.Context, tx *sql.Tx, p *Person, actor string, now time.Time) error {
	switch {
	case p.Subject.IsZero():
		return fmt.Errorf("%w: zero subject", ErrInvalid)
	case !validColor(p.Color):
		return fmt.Errorf("%w: colour %d", ErrInvalid, uint8(p.Color))
	case p.Doses < 0 || p.Doses > 255:
		return fmt.Errorf("%w: %d doses", ErrInvalid, p.Doses)
	case actor == "":
		return fmt.Errorf("%w: no actor", ErrInvalid)
	}
	p.TestedAt = truncMS(p.TestedAt)
	old, err := findPerson(ctx, tx, p.Subject)
	if errors.Is(err, ErrNotFound) {
		p.CreatedAt, p.UpdatedAt = now, now
		_, err := tx.ExecContext(ctx, `
			INSERT INTO people (subject, masked_name, id_tail, color, tested_ms, doses, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			p.Subject[:], p.MaskedName, p.IDTail, int64(p.Color), msOrNull(p.TestedAt), p.Doses,
			now.UnixMilli(), now.UnixMilli())
		if err != nil {
			return mapErr(err)
		}
		_, err = insertStatusChange(ctx, tx, &StatusChange{
			Subject: p.Subject, To: p.Color, Reason: reasonRegistered, Actor: actor, At: now,
		})
		return err
	}
	if err != nil {
		return err
	}
	if old.Color != p.Color {
		if _, err := changeStatus(ctx, tx, old, p.Color, reasonUpdated, actor, now); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE people SET masked_name = ?, id_tail = ?, tested_ms = ?, doses = ?, updated_ms = ?
		WHERE subject = ?`,
		p.MaskedName, p.IDTail, msOrNull(p.TestedAt), p.Doses, now.UnixMilli(), p.Subject[:])
	if err != nil {
		return mapErr(err)
	}
	p.CreatedAt, p.UpdatedAt = old.CreatedAt, now
	return nil
}

// changeStatus sets p's colour to to, appends the history entry and the
// subject revocation that voids the passes issued so far.
func changeStatus(ctx context.Context, tx *sql.Tx, p *Person, to pass.Color, reason, actor string, now time.Time) (*StatusChange, error) {
	if !validColor(to) {
		return nil, fmt.Errorf("%w: colour %d", ErrInvalid, uint8(to))
	}
	if actor == "" {
		return nil, fmt.Errorf("%w: no actor", ErrInvalid)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE people SET color = ?, updated_ms = ? WHERE subject = ?`,
		int64(to), now.UnixMilli(), p.Subject[:]); err != nil {
		return nil, mapErr(err)
	}
	c := &StatusChange{Subject: p.Subject, From: p.Color, To: to, Reason: reason, Actor: actor, At: now}
	if _, err := insertStatusChange(ctx, tx, c); err != nil {
		return nil, err
	}
	// Passes carry the colour they were issued with: every pass issued up
	// to this instant shows the old one and must stop working.
	cutoff, err := subjectCutoff(ctx, tx, p.Subject)
	if err != nil {
		return nil, err
	}
	r := &Revocation{Kind: RevokeSubject, Target: p.Subject[:], Before: nextCutoff(now, cutoff), Reason: reason}
	if err := createRevocation(ctx, tx, r, now); err != nil {
		return nil, err
	}
	return c, nil
}

func insertStatusChange(ctx context.Context, tx *sql.Tx, c *StatusChange) (*StatusChange, error) {
	var from any
	if c.From != 0 {
		from = int64(c.From)
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO status_changes (subject, from_color, to_color, reason, actor, at_ms)
		VALUES (?, ?, ?, ?, ?, ?)`,
		c.Subject[:], from, int64(c.To), c.Reason, c.Actor, c.At.UnixMilli())
	if err != nil {
		return nil, mapErr(err)
	}
	if c.ID, err = res.LastInsertId(); err != nil {
		return nil, err
	}
	return c, nil
}

func findPerson(ctx context.Context, tx *sql.Tx, s pass.Subject) (*Person, error) {
	p := &Person{Subject: s}
	var color, created, updated int64
	var tested sql.NullInt64
	err := tx.QueryRowContext(ctx, `
		SELECT masked_name, id_tail, color, tested_ms, doses, created_ms, updated_ms
		FROM people WHERE subject = ?`, s[:]).
		Scan(&p.MaskedName, &p.IDTail, &color, &tested, &p.Doses, &created, &updated)
	if err != nil {
		return nil, mapErr(err)
	}
	p.Color, p.TestedAt = pass.Color(color), timeOrZero(tested)
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return p, nil
}
