package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// ReasonRegistered is the reason of a person's first status, recorded in
// the history; pages show it in their own language.
const ReasonRegistered = "registered"

// ReasonUpdated is the reason recorded when SavePerson changes the colour
// of a known person.
const ReasonUpdated = "updated"

// SavePerson creates or updates a person (by subject) and sets its
// CreatedAt and UpdatedAt. A new person's first status is recorded in the
// history with actor and reason "registered". On a known person a changed
// colour is a status change like SetStatus (history with reason "updated",
// and the subject's earlier passes voided), so that no colour ever
// changes without a trace.
func (db *DB) SavePerson(ctx context.Context, p *Person, actor Actor) error {
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
func (db *DB) SetStatus(ctx context.Context, s pass.Subject, to pass.Color, reason string, actor Actor) (*StatusChange, error) {
	return db.setStatus(ctx, s, to, reason, actor, 0)
}

// setStatus is SetStatus naming, when trace is not 0, the audit record of
// the trace that led to the change in the change's own record.
func (db *DB) setStatus(ctx context.Context, s pass.Subject, to pass.Color, reason string, actor Actor, trace int64) (*StatusChange, error) {
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
		c, err = changeStatusAfter(ctx, tx, p, to, reason, actor, now, trace)
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

func savePerson(ctx context.Context, tx *sql.Tx, p *Person, actor Actor, now time.Time) error {
	switch {
	case p.Subject.IsZero():
		return fmt.Errorf("%w: zero subject", ErrInvalid)
	case !validColor(p.Color):
		return fmt.Errorf("%w: colour %d", ErrInvalid, uint8(p.Color))
	case p.Doses < 0 || p.Doses > 255:
		return fmt.Errorf("%w: %d doses", ErrInvalid, p.Doses)
	case actor == "":
		return fmt.Errorf("%w: no actor", ErrInvalid)
	case !validIDType(p.IDType):
		return fmt.Errorf("%w: ID type %q", ErrInvalid, p.IDType)
	}
	p.TestedAt = truncMS(p.TestedAt)
	old, err := findPerson(ctx, tx, p.Subject)
	if errors.Is(err, ErrNotFound) {
		p.CreatedAt, p.UpdatedAt = now, now
		if p.IDType == "" {
			p.IDType = IDMainland
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO people (subject, masked_name, id_tail, id_type, phone, color, tested_ms, doses, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.Subject[:], p.MaskedName, p.IDTail, p.IDType, p.Phone, int64(p.Color), msOrNull(p.TestedAt), p.Doses,
			now.UnixMilli(), now.UnixMilli())
		if err != nil {
			return mapErr(err)
		}
		_, err = insertStatusChange(ctx, tx, &StatusChange{
			Subject: p.Subject, To: p.Color, Reason: ReasonRegistered, Actor: actor, At: now,
		})
		return err
	}
	if err != nil {
		return err
	}
	if old.Color != p.Color {
		if _, err := changeStatus(ctx, tx, old, p.Color, ReasonUpdated, actor, now); err != nil {
			return err
		}
	}
	if p.IDType == "" {
		p.IDType = old.IDType
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE people SET masked_name = ?, id_tail = ?, id_type = ?, phone = ?, tested_ms = ?, doses = ?, updated_ms = ?
		WHERE subject = ?`,
		p.MaskedName, p.IDTail, p.IDType, p.Phone, msOrNull(p.TestedAt), p.Doses, now.UnixMilli(), p.Subject[:])
	if err != nil {
		return mapErr(err)
	}
	p.CreatedAt, p.UpdatedAt = old.CreatedAt, now
	return nil
}

// changeStatus sets p's colour to to, appends the history entry and the
// subject revocation that voids the passes issued so far.
func changeStatus(ctx context.Context, tx *sql.Tx, p *Person, to pass.Color, reason string, actor Actor, now time.Time) (*StatusChange, error) {
	return changeStatusAfter(ctx, tx, p, to, reason, actor, now, 0)
}

// changeStatusAfter is changeStatus whose audit record names the trace
// (its audit seq) that led to the change; 0 for none.
func changeStatusAfter(ctx context.Context, tx *sql.Tx, p *Person, to pass.Color, reason string, actor Actor, now time.Time, trace int64) (*StatusChange, error) {
	c, err := changeOneStatus(ctx, tx, p, to, reason, actor, now, trace)
	if err != nil {
		return nil, err
	}
	return c, followSubjectLinks(ctx, tx, p.Subject, to, reason, actor, now, trace)
}

// changeOneStatus is changeStatusAfter for p's subject alone.
func changeOneStatus(ctx context.Context, tx *sql.Tx, p *Person, to pass.Color, reason string, actor Actor, now time.Time, trace int64) (*StatusChange, error) {
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
	if _, err := insertStatusChangeAfter(ctx, tx, c, trace); err != nil {
		return nil, err
	}
	// Passes carry the colour they were issued with: after a change for
	// the worse every pass issued up to this instant shows a better colour
	// than the holder's and must stop working. A change for the better
	// voids nothing: earlier passes show a worse colour than the holder's
	// and deny at least as much as a new one would, and a subject
	// revocation would make every pass issued within the clock tolerance
	// after it void or dated ahead (see district.issueTime).
	if p.Color != 0 && to < p.Color {
		return c, nil
	}
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
	return insertStatusChangeAfter(ctx, tx, c, 0)
}

func insertStatusChangeAfter(ctx context.Context, tx *sql.Tx, c *StatusChange, trace int64) (*StatusChange, error) {
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
	if err := auditStatusChange(ctx, tx, nil, c.Subject, c.From, c.To, c.Reason, c.Actor, c.At, trace); err != nil {
		return nil, err
	}
	return c, nil
}

// auditStatusChange appends the audit record of a status change (a first
// status has from 0) in the same transaction as the change itself,
// through aw when the caller appends many, else on its own. A change
// made from a trace's result names that trace's record (trace, its seq).
func auditStatusChange(ctx context.Context, tx *sql.Tx, aw *auditWriter, s pass.Subject, from, to pass.Color, reason string, actor Actor, at time.Time, trace int64) error {
	d := map[string]any{"to": to.String(), "reason": reason}
	if from != 0 {
		d["from"] = from.String()
	}
	if trace != 0 {
		d["trace"] = trace
	}
	rec := &AuditRecord{
		At: at, Actor: actor, Action: AuditStatusChanged, Subject: fmt.Sprintf("%x", s[:]), Detail: AuditDetail(d),
	}
	if aw != nil {
		return aw.append(ctx, rec, at)
	}
	return appendAudit(ctx, tx, rec, at)
}

func findPerson(ctx context.Context, tx *sql.Tx, s pass.Subject) (*Person, error) {
	p := &Person{Subject: s}
	var color, created, updated int64
	var tested sql.NullInt64
	err := tx.QueryRowContext(ctx, `
		SELECT masked_name, id_tail, id_type, phone, color, tested_ms, doses, created_ms, updated_ms
		FROM people WHERE subject = ?`, s[:]).
		Scan(&p.MaskedName, &p.IDTail, &p.IDType, &p.Phone, &color, &tested, &p.Doses, &created, &updated)
	if err != nil {
		return nil, mapErr(err)
	}
	p.Color, p.TestedAt = pass.Color(color), timeOrZero(tested)
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return p, nil
}

// Document types of a resident's ID number.
const (
	IDMainland = "mainland" // 18-character resident identity card of the mainland
	IDPassport = "passport"
	IDOther    = "other" // any other document: Hong Kong, Macau, Taiwan permits and the like
)

// validIDType reports whether t is a document type; "" means "keep".
func validIDType(t string) bool {
	return t == "" || t == IDMainland || t == IDPassport || t == IDOther
}

// RegisterPeople registers many residents in one transaction, which is
// what makes a bulk import of 100,000 rows take seconds rather than an
// fsync per row. A new subject is inserted as given (with its first
// status, like SavePerson). A known subject keeps its colour, test time
// and doses, which only the desk's own actions change; its masked name,
// ID tail, ID type and phone are updated when they differ, so importing
// the same file twice changes nothing the second time. Any invalid
// person fails the whole batch with ErrInvalid: callers validate rows
// first and report bad ones.
func (db *DB) RegisterPeople(ctx context.Context, people []*Person, actor Actor) (created, updated int, err error) {
	if actor == "" {
		return 0, 0, fmt.Errorf("register people: %w: no actor", ErrInvalid)
	}
	now := db.now()
	err = db.update(ctx, func(tx *sql.Tx) error {
		created, updated = 0, 0
		find, err := tx.PrepareContext(ctx, `SELECT masked_name, id_tail, id_type, phone FROM people WHERE subject = ?`)
		if err != nil {
			return err
		}
		defer find.Close()
		ins, err := tx.PrepareContext(ctx, `
			INSERT INTO people (subject, masked_name, id_tail, id_type, phone, color, tested_ms, doses, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		hist, err := tx.PrepareContext(ctx, `
			INSERT INTO status_changes (subject, from_color, to_color, reason, actor, at_ms)
			VALUES (?, NULL, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer hist.Close()
		upd, err := tx.PrepareContext(ctx, `
			UPDATE people SET masked_name = ?, id_tail = ?, id_type = ?, phone = ?, updated_ms = ? WHERE subject = ?`)
		if err != nil {
			return err
		}
		defer upd.Close()
		aw, err := newAuditWriter(ctx, tx, true)
		if err != nil {
			return err
		}

		for i, p := range people {
			switch {
			case p == nil || p.Subject.IsZero():
				return fmt.Errorf("%w: person %d has no subject", ErrInvalid, i)
			case !validColor(p.Color):
				return fmt.Errorf("%w: person %d: colour %d", ErrInvalid, i, uint8(p.Color))
			case p.Doses < 0 || p.Doses > 255:
				return fmt.Errorf("%w: person %d: %d doses", ErrInvalid, i, p.Doses)
			case !validIDType(p.IDType):
				return fmt.Errorf("%w: person %d: ID type %q", ErrInvalid, i, p.IDType)
			}
			var name, tail, idType, phone string
			err := find.QueryRowContext(ctx, p.Subject[:]).Scan(&name, &tail, &idType, &phone)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if p.IDType == "" {
					p.IDType = IDMainland
				}
				p.TestedAt = truncMS(p.TestedAt)
				if _, err := ins.ExecContext(ctx, p.Subject[:], p.MaskedName, p.IDTail, p.IDType, p.Phone,
					int64(p.Color), msOrNull(p.TestedAt), p.Doses, now.UnixMilli(), now.UnixMilli()); err != nil {
					return mapErr(err)
				}
				if _, err := hist.ExecContext(ctx, p.Subject[:], int64(p.Color), ReasonRegistered, actor, now.UnixMilli()); err != nil {
					return mapErr(err)
				}
				if err := auditStatusChange(ctx, tx, aw, p.Subject, 0, p.Color, ReasonRegistered, actor, now, 0); err != nil {
					return err
				}
				p.CreatedAt, p.UpdatedAt = now, now
				created++
			case err != nil:
				return err
			default:
				if p.IDType == "" {
					p.IDType = idType
				}
				if name == p.MaskedName && tail == p.IDTail && idType == p.IDType && phone == p.Phone {
					continue
				}
				if _, err := upd.ExecContext(ctx, p.MaskedName, p.IDTail, p.IDType, p.Phone, now.UnixMilli(), p.Subject[:]); err != nil {
					return mapErr(err)
				}
				updated++
			}
		}
		return aw.close(ctx)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("register %d people: %w", len(people), err)
	}
	return created, updated, nil
}

// ReasonPositive is the status-change reason of a positive test result.
const ReasonPositive = "positive test"

// TestResult is one test sample of a registered person.
type TestResult struct {
	Subject   pass.Subject
	SampledAt time.Time
	Positive  bool
}

// RecordTests records test results in one transaction. A negative result
// newer than the person's latest sets TestedAt; an older or equal one
// changes nothing. A positive result turns the person red with reason
// ReasonPositive, which voids their earlier passes; for a person who is
// already red it changes nothing, so re-importing a file is harmless.
// Results of unregistered subjects are skipped and their indexes
// returned in missing; changed counts the results that changed a person.
func (db *DB) RecordTests(ctx context.Context, results []TestResult, actor Actor) (changed int, missing []int, err error) {
	if actor == "" {
		return 0, nil, fmt.Errorf("record tests: %w: no actor", ErrInvalid)
	}
	now := db.now()
	err = db.update(ctx, func(tx *sql.Tx) error {
		changed, missing = 0, nil
		for i, r := range results {
			if r.SampledAt.IsZero() {
				return fmt.Errorf("%w: result %d has no sample time", ErrInvalid, i)
			}
			p, err := findPerson(ctx, tx, r.Subject)
			if errors.Is(err, ErrNotFound) {
				missing = append(missing, i)
				continue
			}
			if err != nil {
				return err
			}
			if r.Positive {
				if p.Color == pass.Red {
					continue
				}
				if _, err := changeStatus(ctx, tx, p, pass.Red, ReasonPositive, actor, now); err != nil {
					return err
				}
				changed++
				continue
			}
			at := truncMS(r.SampledAt)
			if !at.After(p.TestedAt) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE people SET tested_ms = ?, updated_ms = ? WHERE subject = ?`,
				at.UnixMilli(), now.UnixMilli(), r.Subject[:]); err != nil {
				return mapErr(err)
			}
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("record %d test results: %w", len(results), err)
	}
	return changed, missing, nil
}

// CreatePasses records many issued passes in one transaction (a bulk
// print issues hundreds at once); see CreatePass for the rules.
func (db *DB) CreatePasses(ctx context.Context, passes []*IssuedPass) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		aw, err := newAuditWriter(ctx, tx, len(passes) > 1)
		if err != nil {
			return err
		}
		for _, p := range passes {
			if p == nil {
				return fmt.Errorf("%w: nil pass", ErrInvalid)
			}
			if err := createPass(ctx, tx, aw, p, now); err != nil {
				return err
			}
		}
		return aw.close(ctx)
	})
	if err != nil {
		return fmt.Errorf("create %d passes: %w", len(passes), err)
	}
	return nil
}

// CountPeople returns the number of registered residents.
func (db *DB) CountPeople(ctx context.Context) (int, error) {
	var n int
	err := db.view(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM people`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count people: %w", err)
	}
	return n, nil
}
