package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// The city link's records at a hub: which of this district's revocations
// the city stream has acknowledged, and what the hub took from the
// stream. The link (package citylink) publishes CityPending and moves
// the mark with MarkCityPublished once the stream acknowledged; it
// stores the messages it consumes with ApplyCityMessages, in one
// transaction with the consumer's position, before acknowledging them.

// OriginCity marks at a hub a revocation taken from the city stream. It
// is never published again: only revocations made in this district are.
const OriginCity = "city"

// AuditCityMessageRefused: a message on the city stream was refused (the
// detail names the stream sequence, the subject's district and why).
const AuditCityMessageRefused = "city_message_refused"

// ActorCity is the actor of records the city link makes.
const ActorCity Actor = "city"

// CityRevocation is a revocation on the city stream: District's own,
// numbered Seq there.
type CityRevocation struct {
	District string
	Seq      int64
	Kind     RevocationKind
	Target   []byte
	Before   time.Time // RevokeSubject only
	Reason   string
	At       time.Time
}

// CityPending returns this district's identifier and up to limit of its
// revocations the city stream has not acknowledged yet, in order: every
// revocation held here (the hub's own, its appliances', those taken back
// after a restore) but those taken from the city.
func (db *DB) CityPending(ctx context.Context, limit int) (string, []*Revocation, error) {
	var district string
	var list []*Revocation
	err := db.view(ctx, func(tx *sql.Tx) error {
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		district = d.ID
		list, err = queryRevocations(ctx, tx, `SELECT seq, kind, target, before_ms, reason, at_ms FROM revocations
			WHERE seq > coalesce((SELECT published_seq FROM city_link WHERE id = 1), 0) AND origin <> ?
			ORDER BY seq LIMIT ?`, OriginCity, limit)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("find revocations for the city: %w", err)
	}
	return district, list, nil
}

// MarkCityPublished records that the city stream acknowledged this
// district's revocations up to seq. The mark never moves back.
func (db *DB) MarkCityPublished(ctx context.Context, seq int64) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO city_link (id, published_seq, published_ms) VALUES (1, ?1, ?2)
			ON CONFLICT (id) DO UPDATE SET published_seq = max(published_seq, ?1), published_ms = ?2`, seq, now.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("mark revocations published to the city: %w", err)
	}
	return nil
}

// CityPosition is the last city stream sequence applied here (0: none).
func (db *DB) CityPosition(ctx context.Context) (uint64, error) {
	var seq int64
	err := db.r.QueryRowContext(ctx, `SELECT coalesce((SELECT consumed_seq FROM city_link WHERE id = 1), 0)`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("find city position: %w", err)
	}
	return uint64(seq), nil
}

// CityOutcome is what a hub made of a message on the city stream.
type CityOutcome int

// Outcomes of ApplyCityMessages.
const (
	CityStored  CityOutcome = iota // a new revocation, stored
	CityHeld                       // held already: this district's own, a copy, or a redelivery
	CityRefused                    // refused and audited
)

// CityMessage is a message of the city stream as the link read it: its
// stream sequence, the district whose subject it came on, and the record
// (nil when it did not parse, with Refused saying why).
type CityMessage struct {
	StreamSeq       uint64
	SubjectDistrict string
	Revocation      *CityRevocation
	// Status is set instead of Revocation for a city-wide status change
	// from the console's subject (SubjectDistrict empty).
	Status  *CityStatus
	Refused string
}

// ApplyCityMessages applies messages of the city stream, in stream
// order, in one transaction with the hub's position on the stream, and
// returns what it made of each. Refused, audited: an unparsed message, a
// record claiming a district other than its subject's, a target of the
// wrong size, a reason that is not clean text, a key revocation of a
// district root or of a key held here as another district's. A message
// at or before the position, this district's own revocation still held
// here, or one whose (district, sequence) is held already is held:
// nothing is stored twice. A destroyed hub rebuilt without its
// revocations takes its own back too. A city-wide status change is
// applied to the people held here (applyCityStatus), once: the position
// moves in the same transaction. Only a hub (or a standalone district)
// takes them.
func (db *DB) ApplyCityMessages(ctx context.Context, msgs []CityMessage) ([]CityOutcome, error) {
	now := db.now()
	outs := make([]CityOutcome, len(msgs))
	err := db.update(ctx, func(tx *sql.Tx) error {
		var pos int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT consumed_seq FROM city_link WHERE id = 1), 0)`).Scan(&pos); err != nil {
			return err
		}
		if enrolled, err := isEnrolled(ctx, tx); err != nil || enrolled {
			return errors.Join(err, ErrNotHub)
		}
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		last := uint64(pos)
		for i, m := range msgs {
			if outs[i], err = applyCityMessage(ctx, tx, d.ID, last, &m, now); err != nil {
				return err
			}
			last = max(last, m.StreamSeq)
		}
		if last == uint64(pos) {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO city_link (id, consumed_seq, consumed_ms) VALUES (1, ?1, ?2)
			ON CONFLICT (id) DO UPDATE SET consumed_seq = ?1, consumed_ms = ?2`, int64(last), now.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply city messages: %w", err)
	}
	return outs, nil
}

// applyCityMessage applies one message past the position pos.
func applyCityMessage(ctx context.Context, tx *sql.Tx, own string, pos uint64, m *CityMessage, now time.Time) (CityOutcome, error) {
	if m.StreamSeq <= pos {
		return CityHeld, nil
	}
	refused := m.Refused
	if refused == "" && m.Status != nil {
		return applyCityStatus(ctx, tx, m.StreamSeq, m.Status, now)
	}
	if refused == "" {
		var err error
		if refused, err = judgeCityRevocation(ctx, tx, m.SubjectDistrict, m.Revocation); err != nil {
			return CityHeld, err
		}
	}
	if refused != "" {
		return CityRefused, appendAudit(ctx, tx, &AuditRecord{Actor: ActorCity, Action: AuditCityMessageRefused, Subject: m.SubjectDistrict,
			Detail: AuditDetail(map[string]any{"stream_seq": m.StreamSeq, "why": refused})}, now)
	}
	return storeCityRevocation(ctx, tx, own, m.StreamSeq, m.Revocation, now)
}

// judgeCityRevocation says why r, which came on subjectDistrict's
// subject, is refused, or "".
func judgeCityRevocation(ctx context.Context, tx *sql.Tx, subjectDistrict string, r *CityRevocation) (string, error) {
	switch {
	case r == nil:
		return "no record", nil
	case r.District != subjectDistrict:
		return fmt.Sprintf("a record of district %q on district %q's subject", r.District, subjectDistrict), nil
	case r.Seq <= 0:
		return "no sequence", nil
	case r.Kind.targetLen() == 0 || len(r.Target) != r.Kind.targetLen():
		return "a target of the wrong kind or size", nil
	case (r.Kind == RevokeSubject) == r.Before.IsZero():
		return "only subject revocations have a cutoff, and they must", nil
	case r.Reason != "" && pass.CheckText("reason", r.Reason, maxReasonLen) != nil:
		return "a reason that is not clean text", nil
	}
	if r.Kind != RevokeIssuer {
		return "", nil
	}
	// A district revokes its own keys only: a key held here as a root,
	// or as another district's key, is not its to revoke.
	var role, district string
	err := tx.QueryRowContext(ctx, `SELECT role, district FROM keys WHERE kid = ?`, r.Target).Scan(&role, &district)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", err
	case role == RoleRoot:
		return fmt.Sprintf("a revocation of root %x; roots are rotated or retired, not revoked", r.Target), nil
	case district != r.District:
		return fmt.Sprintf("a revocation of key %x, held here as district %q's", r.Target, district), nil
	}
	return "", nil
}

// storeCityRevocation stores r from the stream unless it is held: own
// is this district.
func storeCityRevocation(ctx context.Context, tx *sql.Tx, own string, streamSeq uint64, r *CityRevocation, now time.Time) (CityOutcome, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM city_revocations WHERE district = ? AND origin_seq = ?`, r.District, r.Seq).Scan(&n); err != nil || n > 0 {
		return CityHeld, err
	}
	if r.District == own {
		// This district's own record comes back from the stream: held
		// unless this hub lost it (rebuilt after its database was lost)
		// and no appliance handed it back already (restored_id).
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM revocations WHERE (seq = ?1 OR restored_id = ?1) AND origin <> ?2`, r.Seq, OriginCity).Scan(&n); err != nil || n > 0 {
			return CityHeld, err
		}
	}
	at := min(r.At.UnixMilli(), now.UnixMilli())
	res, err := tx.ExecContext(ctx, `INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin) VALUES (?, ?, ?, ?, ?, ?)`,
		r.Kind, r.Target, msOrNull(r.Before), r.Reason, at, OriginCity)
	if err != nil {
		return CityHeld, mapErr(err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return CityHeld, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO city_revocations (seq, district, origin_seq, stream_seq) VALUES (?, ?, ?, ?)`,
		seq, r.District, r.Seq, int64(streamSeq)); err != nil {
		return CityHeld, err
	}
	if r.Kind == RevokeIssuer {
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_ms = ? WHERE kid = ? AND revoked_ms IS NULL`, at, r.Target); err != nil {
			return CityHeld, err
		}
	}
	if r.Kind == RevokeSubject && r.District != own {
		// Another district's red code of the person's city subject
		// reaches the passes this district issued under the person's
		// district subject before it joined the city, in the same
		// transaction: the hub never holds one without the other.
		var s pass.Subject
		copy(s[:], r.Target)
		reason := r.Reason
		if reason == "" {
			reason = "revoked in district " + r.District
		}
		if _, err := revokeLinkedSubjects(ctx, tx, s, r.Before, reason, now); err != nil {
			return CityHeld, err
		}
	}
	return CityStored, nil
}

// CityLinkState is what the hub's store says of its city link.
type CityLinkState struct {
	Linked        bool      // the link has published or consumed here; false: the rest is zero
	PublishedSeq  int64     // last of this district's revocations the stream acknowledged
	Published     time.Time // when the mark last moved; zero: never
	Pending       int64     // this district's revocations not yet acknowledged
	OldestPending time.Time // when the oldest of them was made; zero: none
	ConsumedSeq   uint64    // last stream sequence applied here
	Consumed      time.Time
	Taken         int64 // revocations taken from the city
}

// CityLinkState reads the link's marks and counts.
func (db *DB) CityLinkState(ctx context.Context) (*CityLinkState, error) {
	s := &CityLinkState{}
	var pub, cons, oldest sql.NullInt64
	var consumed int64
	err := db.r.QueryRowContext(ctx, `SELECT published_seq, published_ms, consumed_seq, consumed_ms, (SELECT count(*) FROM city_revocations)
		FROM city_link WHERE id = 1`).Scan(&s.PublishedSeq, &pub, &consumed, &cons, &s.Taken)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err == nil {
		s.Linked = true
		err = db.r.QueryRowContext(ctx, `SELECT count(*), min(at_ms) FROM revocations WHERE seq > ? AND origin <> ?`,
			s.PublishedSeq, OriginCity).Scan(&s.Pending, &oldest)
	}
	if err != nil {
		return nil, fmt.Errorf("read city link state: %w", err)
	}
	s.ConsumedSeq, s.Published, s.Consumed, s.OldestPending = uint64(consumed), timeOrZero(pub), timeOrZero(cons), timeOrZero(oldest)
	return s, nil
}
