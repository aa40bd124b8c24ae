package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Appliance roles: what the hub's admins let an enrolled appliance do.
// The hub enforces them on every record an appliance pushes or brings in
// a bundle (authorizeEvent); the appliance learns its role at enrolment
// and from the feed, and a gate keeps no pseudonym key.
//
// What the hub accepts from an appliance's record streams:
//
//	record                       gate   office
//	scan                         yes    yes
//	its own audit record         yes    yes
//	pass issued                  no     its own key, an ID no one else holds
//	status change                no     of a person it registered
//	subject revocation           no     of a person it registered
//	pass revocation (lost card)  no     of a pass it issued
//	key revocation (any key)     no     no
//
// Key revocations, appliance retirements and policy never come through a
// push: only the hub's own admins make them. A person's registrar is the
// appliance whose status record first brought the person to the hub
// (people.registrar); people registered at the hub's own desk have none,
// so only the hub's admins change their status.
//
// A refused record is not stored and changes nothing, but the hub's mark
// moves past it (the appliance's outbox does not jam on it), and the
// hub's audit trail gets one AuditRecordRefused record naming the
// appliance, the kind, the appliance's sequence number and why.

// ApplianceRole is what an enrolled appliance may do.
type ApplianceRole string

// The roles. The hub stores them as appliances.may_issue (1: office).
const (
	// ApplianceGate checks passes only: it pushes its scans and audit
	// records, and holds no pseudonym key.
	ApplianceGate ApplianceRole = "gate"
	// ApplianceOffice also registers people, issues passes (its issuer
	// key is certified at enrolment) and changes the statuses of the
	// people it registered.
	ApplianceOffice ApplianceRole = "office"
)

// AuditRecordRefused is the hub's record of a pushed record it refused.
const AuditRecordRefused = "sync_record_refused"

// AuditRoleLearned is an appliance's record of the role its hub gave it.
const AuditRoleLearned = "role_learned"

// ParseApplianceRole reads a role name: "gate" or "office".
func ParseApplianceRole(s string) (ApplianceRole, error) {
	switch r := ApplianceRole(strings.ToLower(strings.TrimSpace(s))); r {
	case ApplianceGate, ApplianceOffice:
		return r, nil
	}
	return "", fmt.Errorf("%w: appliance role %q (want gate or office)", ErrInvalid, s)
}

// MayIssue tells whether the role issues passes (and so has its issuer
// key certified).
func (r ApplianceRole) MayIssue() bool { return r == ApplianceOffice }

// RoleOf is the role of an appliance that may issue passes or not: the
// stored may_issue flag, and the older --issuer switch.
func RoleOf(mayIssue bool) ApplianceRole {
	if mayIssue {
		return ApplianceOffice
	}
	return ApplianceGate
}

// refusal is why the hub refuses a pushed record; empty: accepted.
type refusal string

const (
	refuseGate       refusal = "a gate pushes only its scans and audit records"
	refuseKeyRevoke  refusal = "key revocations come only from the hub's admins"
	refuseNoIssuer   refusal = "this appliance has no issuer key"
	refuseOtherKey   refusal = "pass not signed by this appliance's issuer key"
	refuseRegistrar  refusal = "person registered elsewhere (by another appliance or the hub)"
	refuseUnknownWho refusal = "person unknown to the hub"
	refuseOtherPass  refusal = "pass not issued by this appliance"
	refuseTakenPass  refusal = "pass ID already issued by the hub or another appliance"
	refuseMalformed  refusal = "malformed record"
)

// authorizeEvent decides whether appliance a may send record e, given
// what the hub holds so far in tx (records of the same push before e
// included). It reads only; the caller stores and applies what it
// accepts.
func authorizeEvent(ctx context.Context, tx *sql.Tx, a *Appliance, e *OutboxRecord) (refusal, error) {
	if a.Retired() && e.At.After(a.RetiredAt) {
		return refuseAfterRetirement, nil // from a retired appliance's final bundle
	}
	if e.Kind == "audit" {
		return "", nil // its own trail: what it says it did
	}
	if a.Role != ApplianceOffice {
		return refuseGate, nil
	}
	switch e.Kind {
	case "pass":
		var p struct {
			ID  string `json:"id"`
			KID string `json:"kid"`
		}
		if json.Unmarshal([]byte(e.Body), &p) != nil {
			return refuseMalformed, nil
		}
		if !a.HasIssuer {
			return refuseNoIssuer, nil
		}
		if !strings.EqualFold(p.KID, hex.EncodeToString(a.IssuerKID[:])) {
			return refuseOtherKey, nil
		}
		// A pass ID is public (any checker reads it from the QR code):
		// the hub holds no signed pass to check the claim against, so the
		// first claim of an ID stands and a later one is refused, or an
		// office could claim another's pass and then revoke it.
		theirs, err := passClaimedElsewhere(ctx, tx, a, p.ID)
		if err != nil || theirs {
			return refuseTakenPass, err
		}
		return "", nil
	case "status":
		var st struct {
			Subject string `json:"subject"`
		}
		if json.Unmarshal([]byte(e.Body), &st) != nil {
			return refuseMalformed, nil
		}
		subject, err := hex.DecodeString(st.Subject)
		if err != nil || len(subject) != 16 {
			return refuseMalformed, nil
		}
		// A person new to the hub is registered by this office.
		return checkRegistrar(ctx, tx, a, subject, "")
	case "revocation":
		var r outboxRevocation
		if json.Unmarshal([]byte(e.Body), &r) != nil {
			return refuseMalformed, nil
		}
		target, err := hex.DecodeString(r.Target)
		if err != nil {
			return refuseMalformed, nil
		}
		switch r.Kind {
		case RevokeSubject:
			return checkRegistrar(ctx, tx, a, target, refuseUnknownWho)
		case RevokePass:
			var n int
			err := tx.QueryRowContext(ctx, `SELECT count(*) FROM district_events
				WHERE appliance_id = ? AND kind = 'pass' AND upper(body ->> 'id') = upper(?)`,
				a.ID, r.Target).Scan(&n)
			if err != nil {
				return "", err
			}
			if n == 0 {
				return refuseOtherPass, nil
			}
			if theirs, err := passClaimedElsewhere(ctx, tx, a, r.Target); err != nil || theirs {
				return refuseOtherPass, err
			}
			return "", nil
		default:
			return refuseKeyRevoke, nil
		}
	}
	return refuseMalformed, nil
}

// passClaimedElsewhere tells whether the pass with ID id (hex) was
// issued at the hub's own desk or claimed by another appliance's pass
// record.
func passClaimedElsewhere(ctx context.Context, tx *sql.Tx, a *Appliance, id string) (bool, error) {
	raw, err := hex.DecodeString(id)
	if err != nil {
		return false, nil // no such pass anywhere: nothing to take
	}
	var n int
	err = tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM passes WHERE id = ?1)
		+ (SELECT count(*) FROM district_events WHERE kind = 'pass' AND upper(body ->> 'id') = upper(?2) AND appliance_id != ?3)`,
		raw, id, a.ID).Scan(&n)
	return n > 0, err
}

// checkRegistrar accepts a record about subject when a registered the
// person; a person the hub does not know yet gets unknown (empty:
// accepted, a becomes the registrar).
func checkRegistrar(ctx context.Context, tx *sql.Tx, a *Appliance, subject []byte, unknown refusal) (refusal, error) {
	var registrar sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT registrar FROM people WHERE subject = ?`, subject).Scan(&registrar)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return unknown, nil
	case err != nil:
		return "", err
	case !registrar.Valid || registrar.Int64 != a.ID:
		return refuseRegistrar, nil
	}
	return "", nil
}

// auditRefusal records at the hub that it refused record e of a.
func auditRefusal(ctx context.Context, tx *sql.Tx, a *Appliance, e *OutboxRecord, why refusal, now time.Time) error {
	sum := sha256.Sum256([]byte(e.Body))
	return appendAudit(ctx, tx, &AuditRecord{Actor: ActorSync, Action: AuditRecordRefused, Subject: a.Name,
		Detail: AuditDetail(map[string]any{"appliance": a.Name, "role": a.Role, "kind": e.Kind, "seq": e.Seq,
			"why": string(why), "body_sha256": hex.EncodeToString(sum[:])})}, now)
}

// ActorSync is the actor of what the hub records on its own while
// ingesting appliances' records.
const ActorSync = "sync"

// HubRole returns the role this appliance's hub gave it; empty on a hub,
// a standalone appliance, or one enrolled before roles whose hub has not
// said yet (it keeps working as before until it does).
func (db *DB) HubRole(ctx context.Context) (ApplianceRole, error) {
	var role sql.NullString
	err := db.r.QueryRowContext(ctx, `SELECT role FROM sync_hub WHERE id = 1`).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hub role: %w", err)
	}
	return ApplianceRole(role.String), nil
}

// IsGate tells whether this appliance is a gate of its district: it
// checks only, and holds no pseudonym key.
func (db *DB) IsGate(ctx context.Context) (bool, error) {
	r, err := db.HubRole(ctx)
	return r == ApplianceGate, err
}

// PseudonymKeyOrErr returns the district's pseudonym key, or ErrGate on
// a gate, which holds none: every use of the key goes through it, so a
// gate never computes a pseudonym with an empty key.
func (d *District) PseudonymKeyOrErr() ([]byte, error) {
	if len(d.PseudonymKey) != 32 {
		return nil, ErrGate
	}
	return d.PseudonymKey, nil
}

// ErrGate refuses on a gate what only an office or the hub does
// (registering people, issuing, status changes, imports, traces).
var ErrGate = errors.New("this appliance is a gate of its district: it checks passes only (registering, issuing, status changes, imports and traces are done at an office or the hub)")

// applyRole stores the role the hub says this appliance has. Learning
// that it is a gate drops the pseudonym key, with SQLite's secure delete
// so its bytes do not stay in the file's free space; it reports whether
// it dropped one (the caller then checkpoints the WAL, which still holds
// the page as it was).
func applyRole(ctx context.Context, tx *sql.Tx, role ApplianceRole, now time.Time) (dropped bool, err error) {
	if _, err := ParseApplianceRole(string(role)); err != nil {
		return false, err
	}
	var cur sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT role FROM sync_hub WHERE id = 1`).Scan(&cur); err != nil {
		return false, err
	}
	if cur.String != string(role) {
		if _, err := tx.ExecContext(ctx, `UPDATE sync_hub SET role = ? WHERE id = 1`, string(role)); err != nil {
			return false, err
		}
		if err := appendAudit(ctx, tx, &AuditRecord{Actor: ActorHub, Action: AuditRoleLearned, Subject: string(role),
			Detail: AuditDetail(map[string]any{"old": cur.String, "new": role})}, now); err != nil {
			return false, err
		}
	}
	if role != ApplianceGate {
		return false, nil
	}
	return dropPseudonymKey(ctx, tx)
}

// dropPseudonymKey removes the district's pseudonym key and the city's,
// overwriting their bytes in the database file.
func dropPseudonymKey(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM district WHERE pseudonym_key IS NOT NULL) +
		(SELECT count(*) FROM city_pseudonym)`).Scan(&n); err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return false, err
	}
	// A sealed key lives in the sealed table; its district column holds
	// only zero bytes. Both go.
	_, err := tx.ExecContext(ctx, `UPDATE district SET pseudonym_key = NULL`)
	if err == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM sealed WHERE name = ?`, sealedPseudonym)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM city_pseudonym`) // the city's key too
	}
	if _, perr := tx.ExecContext(ctx, `PRAGMA secure_delete = OFF`); err == nil {
		err = perr
	}
	return err == nil, err
}

// checkpointAfterDrop copies the WAL into the file and truncates it, so
// the page images that held a dropped key leave the WAL file.
func (db *DB) checkpointAfterDrop(ctx context.Context) error {
	_, err := db.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// Refusal is a record the hub refused from an appliance, as its audit
// trail holds it.
type Refusal struct {
	At        time.Time
	Appliance string
	Role      ApplianceRole
	Kind      string // outbox kind: pass, status, revocation
	Seq       int64  // the appliance's outbox sequence number
	Why       string
}

// Refusals lists the records this hub refused, oldest first.
func (db *DB) Refusals(ctx context.Context) ([]*Refusal, error) {
	var list []*Refusal
	err := db.FindAudit(ctx, AuditFilter{}, func(r *AuditRecord) error {
		if r.Action != AuditRecordRefused {
			return nil
		}
		var d struct {
			Appliance string        `json:"appliance"`
			Role      ApplianceRole `json:"role"`
			Kind      string        `json:"kind"`
			Seq       int64         `json:"seq"`
			Why       string        `json:"why"`
		}
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			return fmt.Errorf("audit record %d: %w", r.Seq, err)
		}
		list = append(list, &Refusal{At: r.At, Appliance: d.Appliance, Role: d.Role, Kind: d.Kind, Seq: d.Seq, Why: d.Why})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("refused records: %w", err)
	}
	return list, nil
}

// AuditApplianceRole is the hub's record of an appliance's role changed.
const AuditApplianceRole = "appliance_role"

// SetApplianceRole changes the role of the named appliance, as the hub's
// admins decide. Making an office a gate revokes its issuer key district
// wide (it could otherwise go on signing passes every checker accepts)
// and the appliance drops its pseudonym key when its next pull tells it;
// a gate is not made an office in place, since it holds neither an issuer
// certificate nor the pseudonym key: it is enrolled again (ErrInvalid).
// ErrNotFound for an unknown appliance, ErrRetired for a retired one.
func (db *DB) SetApplianceRole(ctx context.Context, name string, role ApplianceRole, actor Actor) (*Appliance, error) {
	if _, err := ParseApplianceRole(string(role)); err != nil {
		return nil, fmt.Errorf("set role of appliance %q: %w", name, err)
	}
	now := db.now()
	var a *Appliance
	err := db.update(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = unretiredAppliance(ctx, tx, name)
		switch {
		case err != nil:
			return err
		case a.Role == role:
			return nil
		case role == ApplianceOffice:
			return fmt.Errorf("%w: a gate holds no issuer certificate and no pseudonym key: enrol it again as an office", ErrInvalid)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appliances SET may_issue = ? WHERE id = ?`, role.MayIssue(), a.ID); err != nil {
			return err
		}
		detail := map[string]any{"old": a.Role, "new": role}
		if a.HasIssuer {
			if err := revokeApplianceIssuer(ctx, tx, a, "appliance "+name+" made a gate", now); err != nil {
				return err
			}
			detail["issuer_kid"] = hex.EncodeToString(a.IssuerKID[:])
		}
		a.Role = role
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditApplianceRole, Subject: name,
			Detail: AuditDetail(detail)}, now)
	})
	if err != nil {
		return nil, fmt.Errorf("set role of appliance %q: %w", name, err)
	}
	return a, nil
}
