package store

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"passgate/pass"
)

// The city pseudonym key. A district that joins the city imports the
// city's pseudonym key at its hub; from then on its offices register and
// issue under the city subject (pass.Pseudonym with the city key), so a
// person has one subject in every district. Passes already out keep the
// district subject until they expire: a status change reaches both
// subjects, and a trace looks under both. The key is held by the hub and
// its offices, never by a gate (dropPseudonymKey drops it with the
// district's), and it is sealed like the other secrets.

// Audit actions of the city pseudonym key.
const (
	// AuditCityKeyImported: the hub's admin imported the city pseudonym
	// key (subject: its check value), or an office received it from its
	// hub.
	AuditCityKeyImported = "city_key_imported"
	// AuditCityKeyRefused: an import was refused (wrong check value,
	// another key held, not at a hub, on a gate, a malformed file).
	AuditCityKeyRefused = "city_key_refused"
	// AuditSubjectLinked: a person's city and district subjects were
	// linked (LinkSubjects): subject the city subject, detail the
	// district subject. At the hub, an office's record of it links them
	// there too.
	AuditSubjectLinked = "subject_linked"
	// AuditCityTraceRefused: a hub refused a city trace request (not
	// one passgate makes); answered ones are recorded as AuditTrace.
	AuditCityTraceRefused = "city_trace_refused"
	// AuditCityTraceAsked: the city asked the district hubs for a trace
	// (the requester's record: subject, districts, who did not answer).
	AuditCityTraceAsked = "city_trace_asked"
)

// ErrCityKeyCheck: the check value given does not match the key file.
var ErrCityKeyCheck = errors.New("the check value does not match the city pseudonym key file")

// cityKeyLabel binds the sealed city key to its place.
const cityKeyLabel = "city_pseudonym.key"

// cityPseudonymKey returns the city key held here, unsealed, or nil.
func (db *DB) cityPseudonymKey(ctx context.Context, tx *sql.Tx) ([]byte, error) {
	var b []byte
	err := tx.QueryRowContext(ctx, `SELECT key FROM city_pseudonym WHERE id = 1`).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if b, err = db.unseal(cityKeyLabel, b); err != nil {
		return nil, fmt.Errorf("city pseudonym key: %w", err)
	}
	if len(b) != pass.CityKeyLen {
		return nil, fmt.Errorf("city pseudonym key: %w: %d bytes", ErrCorrupt, len(b))
	}
	return b, nil
}

// putCityPseudonymKey stores key, sealed when the directory is, unless
// the same key is held already (false); another key is ErrConflict: a
// second city key would split every person's subject again.
func (db *DB) putCityPseudonymKey(ctx context.Context, tx *sql.Tx, key []byte, actor Actor, now time.Time) (bool, error) {
	held, err := db.cityPseudonymKey(ctx, tx)
	switch {
	case err != nil:
		return false, err
	case held != nil && subtle.ConstantTimeCompare(held, key) == 1:
		return false, nil
	case held != nil:
		return false, fmt.Errorf("%w: another city pseudonym key (check %s) is held here; it is not replaced",
			ErrConflict, pass.FormatCityKeyCheck(pass.CityKeyCheck(held)))
	}
	blob, err := db.seal(cityKeyLabel, key)
	if err != nil {
		return false, err
	}
	check := pass.CityKeyCheck(key)
	if _, err := tx.ExecContext(ctx, `INSERT INTO city_pseudonym (id, key, check_value, since_ms) VALUES (1, ?, ?, ?)`,
		blob, check, now.UnixMilli()); err != nil {
		return false, err
	}
	return true, appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditCityKeyImported,
		Subject: pass.FormatCityKeyCheck(check)}, now)
}

// ImportCityPseudonymKey makes the key of a city pseudonym key file
// (pass.ParseCityKey) the one this district pseudonymises people with
// from now on, once check, read out by the city by another channel,
// matches it. Only a hub or a standalone district imports it: an office
// receives it from its hub, a gate never holds it. The same key again is
// no change (false); another one is refused. Every outcome is audited.
func (db *DB) ImportCityPseudonymKey(ctx context.Context, file []byte, check string, actor Actor) (bool, error) {
	now := db.now()
	var added bool
	var refused error
	err := db.update(ctx, func(tx *sql.Tx) error {
		refuse := func(why error) error {
			refused = why
			return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditCityKeyRefused,
				Detail: AuditDetail(map[string]any{"why": why.Error()})}, now)
		}
		var role sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT role FROM sync_hub WHERE id = 1`).Scan(&role)
		switch {
		case err == nil && role.String == string(ApplianceGate):
			return refuse(ErrGate)
		case err == nil:
			return refuse(ErrNotHub)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := findDistrict(ctx, tx); err != nil {
			return err
		}
		key, err := pass.ParseCityKey(file)
		if err != nil {
			return refuse(fmt.Errorf("%w: %v", ErrInvalid, err))
		}
		want, err := pass.ParseCityKeyCheck(check)
		if err != nil {
			return refuse(fmt.Errorf("%w: %v", ErrInvalid, err))
		}
		if !bytes.Equal(want, pass.CityKeyCheck(key)) {
			return refuse(ErrCityKeyCheck)
		}
		added, err = db.putCityPseudonymKey(ctx, tx, key, actor, now)
		if errors.Is(err, ErrConflict) {
			return refuse(err)
		}
		return err
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return false, fmt.Errorf("import city pseudonym key: %w", err)
	}
	return added, nil
}

// ReceiveCityPseudonymKey stores the city key an office's hub sent it
// (at enrolment or in a pull answer), audited; a gate drops it unseen,
// and a key other than the one held is refused and audited.
func (db *DB) ReceiveCityPseudonymKey(ctx context.Context, key []byte) error {
	if len(key) != pass.CityKeyLen {
		return fmt.Errorf("receive city pseudonym key: %w: %d bytes", ErrInvalid, len(key))
	}
	now := db.now()
	var refused error
	err := db.update(ctx, func(tx *sql.Tx) error {
		var role sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT role FROM sync_hub WHERE id = 1`).Scan(&role); err != nil {
			return err
		}
		if role.String == string(ApplianceGate) {
			return nil
		}
		_, err := db.putCityPseudonymKey(ctx, tx, key, ActorHub, now)
		if errors.Is(err, ErrConflict) {
			refused = err
			return appendAudit(ctx, tx, &AuditRecord{Actor: ActorHub, Action: AuditCityKeyRefused,
				Detail: AuditDetail(map[string]any{"why": err.Error()})}, now)
		}
		return err
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return fmt.Errorf("receive city pseudonym key: %w", err)
	}
	return nil
}

// CityKeyCheckHeld returns the check value of the city key held here,
// or nil: what an admin compares without the key being shown.
func (db *DB) CityKeyCheckHeld(ctx context.Context) ([]byte, error) {
	var c []byte
	err := db.r.QueryRowContext(ctx, `SELECT check_value FROM city_pseudonym WHERE id = 1`).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("city key check: %w", err)
	}
	return c, nil
}

// LinkSubjects records that city and district are one person's subjects
// (its city subject and the district subject it had before the district
// joined the city), so that a status change of either, however it is
// made, reaches the other. Recording a link held already is no change.
func (db *DB) LinkSubjects(ctx context.Context, city, district pass.Subject, actor Actor) error {
	if city.IsZero() || district.IsZero() || city == district {
		return fmt.Errorf("link subjects: %w", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		return linkSubjects(ctx, tx, city[:], district[:], actor, now)
	})
	if err != nil {
		return fmt.Errorf("link subjects: %w", err)
	}
	return nil
}

// linkSubjects stores a link, audited when it is new.
func linkSubjects(ctx context.Context, tx *sql.Tx, city, district []byte, actor Actor, now time.Time) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO subject_links (city_subject, district_subject) VALUES (?, ?)
		ON CONFLICT DO NOTHING`, city, district)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditSubjectLinked, Subject: hex.EncodeToString(city),
		Detail: AuditDetail(map[string]any{"district_subject": hex.EncodeToString(district)})}, now)
}

// applyApplianceLink links at the hub the subjects an office's
// AuditSubjectLinked record names, so that the hub's status changes and
// city traces follow them too. Only an office links, and only two
// subjects it registered itself (the hub's registrar): a link is a way
// to reach a person's passes, which an office may do for its own people
// only. A link refused is audited; the record itself is kept.
func applyApplianceLink(ctx context.Context, tx *sql.Tx, a *Appliance, e *OutboxRecord, now time.Time) error {
	if !strings.Contains(e.Body, `"`+AuditSubjectLinked+`"`) {
		return nil // not a link: spares decoding every audit record pushed
	}
	var rec struct {
		Action  string `json:"action"`
		Subject string `json:"subject"`
		Detail  string `json:"detail"`
	}
	if json.Unmarshal([]byte(e.Body), &rec) != nil || rec.Action != AuditSubjectLinked {
		return nil
	}
	refuse := func(why refusal) error {
		return auditRefusal(ctx, tx, a, e, "subject link: "+why, now)
	}
	var d struct {
		District string `json:"district_subject"`
	}
	city, err1 := hex.DecodeString(rec.Subject)
	err2 := json.Unmarshal([]byte(rec.Detail), &d)
	district, err3 := hex.DecodeString(d.District)
	if err1 != nil || err2 != nil || err3 != nil || len(city) != 16 || len(district) != 16 || bytes.Equal(city, district) {
		return refuse(refuseMalformed)
	}
	if a.Role != ApplianceOffice {
		return refuse(refuseGate)
	}
	for _, s := range [][]byte{city, district} {
		why, err := checkRegistrar(ctx, tx, a, s, refuseUnknownWho)
		if err != nil {
			return err
		}
		if why != "" {
			return refuse(why)
		}
	}
	return linkSubjects(ctx, tx, city, district, ActorSync, now)
}

// followSubjectLinks gives the colour to of a status change of s to the
// subjects linked to it that are registered here with another colour:
// each change has its own history entry, audit record and, for a change
// for the worse, the revocation that voids that subject's passes.
func followSubjectLinks(ctx context.Context, tx *sql.Tx, s pass.Subject, to pass.Color, reason string, actor Actor, now time.Time, trace int64) error {
	linked, err := linkedSubjects(ctx, tx, s)
	if err != nil {
		return err
	}
	for _, o := range linked {
		p, err := findPerson(ctx, tx, o)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if p.Color == to {
			continue
		}
		if _, err := changeOneStatus(ctx, tx, p, to, reason, actor, now, trace); err != nil {
			return err
		}
	}
	return nil
}

// LinkedSubjects returns the subjects linked here to s (LinkSubjects),
// in either direction: a city trace for s follows them too.
func (db *DB) LinkedSubjects(ctx context.Context, s pass.Subject) ([]pass.Subject, error) {
	var out []pass.Subject
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		out, err = linkedSubjects(ctx, tx, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("linked subjects: %w", err)
	}
	return out, nil
}

// linkedSubjects is LinkedSubjects in tx, at most MaxTraceSubjects.
func linkedSubjects(ctx context.Context, tx *sql.Tx, s pass.Subject) ([]pass.Subject, error) {
	rows, err := tx.QueryContext(ctx, `SELECT district_subject FROM subject_links WHERE city_subject = ?1
		UNION SELECT city_subject FROM subject_links WHERE district_subject = ?1 LIMIT ?2`, s[:], MaxTraceSubjects)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pass.Subject
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var o pass.Subject
		copy(o[:], b)
		out = append(out, o)
	}
	return out, rows.Err()
}

// RevokeLinkedSubjects voids the passes issued before before under
// every subject linked here to s, for a subject revocation of s that
// came from elsewhere in the city (another district's red code of the
// person's city subject): it reaches the passes this district issued
// under the person's district subject before it joined the city. It
// returns how many revocations it made, one per linked subject.
func (db *DB) RevokeLinkedSubjects(ctx context.Context, s pass.Subject, before time.Time, reason string) (int, error) {
	if before.IsZero() || reason == "" {
		return 0, fmt.Errorf("revoke linked subjects: %w: no cut-off or reason", ErrInvalid)
	}
	now := db.now()
	n := 0
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		n, err = revokeLinkedSubjects(ctx, tx, s, before, reason, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("revoke linked subjects: %w", err)
	}
	return n, nil
}

// revokeLinkedSubjects is RevokeLinkedSubjects in tx.
func revokeLinkedSubjects(ctx context.Context, tx *sql.Tx, s pass.Subject, before time.Time, reason string, now time.Time) (int, error) {
	linked, err := linkedSubjects(ctx, tx, s)
	if err != nil {
		return 0, err
	}
	for _, o := range linked {
		r := &Revocation{Kind: RevokeSubject, Target: bytes.Clone(o[:]), Before: before, Reason: reason}
		if err := createRevocation(ctx, tx, r, now); err != nil {
			return 0, err
		}
	}
	return len(linked), nil
}
