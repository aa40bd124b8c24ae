package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"passgate/pass"
)

// Audit actions of city-wide status changes.
const (
	// AuditCityStatusAsked: the city console published a city-wide status
	// change (the console's record: subject, colour, request id).
	AuditCityStatusAsked = "city_status_asked"
	// AuditCityStatusApplied: a hub applied a city-wide status change
	// from the city stream (subject, colour, request id, people changed).
	AuditCityStatusApplied = "city_status_applied"
)

// CityStatus is a city-wide status change the city console published: the
// person's city subject takes Color, for Reason, as of At.
type CityStatus struct {
	ID      string // the console's request id
	Asker   string // the city officer who changed it
	Subject pass.Subject
	Color   pass.Color
	Reason  string
	At      time.Time
}

// applyCityStatus applies the city-wide status change c, the stream's
// message streamSeq, in tx: every person held here under the city
// subject or a district subject linked to it takes the colour (their
// status history names the city officer, and a change for the worse
// voids their earlier passes with a revocation this hub shares as its
// own); a hub that holds no one under the city subject voids that
// subject's passes itself (revocations kept here, not shared: every hub
// applies the change from the stream). Audited in any case.
func applyCityStatus(ctx context.Context, tx *sql.Tx, streamSeq uint64, c *CityStatus, now time.Time) (CityOutcome, error) {
	actor := Actor("city:" + c.Asker)
	changed := 0
	p, err := findPerson(ctx, tx, c.Subject)
	switch {
	case err == nil:
		if _, err := changeStatusAfter(ctx, tx, p, c.Color, c.Reason, actor, now, 0); err != nil {
			return CityHeld, err
		}
		changed++
	case errors.Is(err, ErrNotFound):
		linked, err := linkedSubjects(ctx, tx, c.Subject)
		if err != nil {
			return CityHeld, err
		}
		for _, o := range linked {
			if _, err := findPerson(ctx, tx, o); err == nil {
				changed++
			}
		}
		if err := followSubjectLinks(ctx, tx, c.Subject, c.Color, c.Reason, actor, now, 0); err != nil {
			return CityHeld, err
		}
		if c.Color > pass.Green {
			if err := voidCitySubject(ctx, tx, c, now); err != nil {
				return CityHeld, err
			}
		}
	default:
		return CityHeld, err
	}
	return CityStored, appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditCityStatusApplied, Subject: hex.EncodeToString(c.Subject[:]),
		Detail: AuditDetail(map[string]any{"request": c.ID, "color": c.Color.String(), "stream_seq": streamSeq, "people_changed": changed})}, now)
}

// voidCitySubject voids the passes of c's subject issued up to the
// change (not later: a change applied late must not void a pass issued
// after it), as a revocation taken from the city.
func voidCitySubject(ctx context.Context, tx *sql.Tx, c *CityStatus, now time.Time) error {
	prev, err := subjectCutoff(ctx, tx, c.Subject)
	if err != nil {
		return err
	}
	at := c.At
	if at.After(now) {
		at = now
	}
	before := nextCutoff(at, prev)
	if !prev.IsZero() && !prev.Before(at) {
		return nil // voided up to then already
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin) VALUES (?, ?, ?, ?, ?, ?)`,
		RevokeSubject, c.Subject[:], before.UnixMilli(), c.Reason, now.UnixMilli(), OriginCity)
	return mapErr(err)
}
