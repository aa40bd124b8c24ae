package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"passgate/pass"
)

// Audit actions of the hub's appliance registry.
const (
	AuditApplianceAdded    = "appliance_added"
	AuditApplianceEnrolled = "appliance_enrolled"
	AuditApplianceRetired  = "appliance_retired"
	AuditApplianceDraining = "appliance_draining"
	// AuditEnrolRefused records an enrolment request with a valid code
	// that the hub refused: a key it cannot accept, or a signature that
	// does not prove possession of the keys offered.
	AuditEnrolRefused = "appliance_enrol_refused"
)

// Errors of enrolment and sync authentication, wrapped like the others.
var (
	// ErrCodeInvalid: no appliance waits for this enrolment code (never
	// made, already used, or made on another hub).
	ErrCodeInvalid = errors.New("unknown or already used enrolment code")
	// ErrCodeExpired: the enrolment code is past its validity.
	ErrCodeExpired = errors.New("enrolment code expired")
	// ErrRetired: the appliance was retired; its token is void.
	ErrRetired = errors.New("appliance retired")
)

// MaxApplianceName bounds an appliance's name (the schema's CHECK).
const MaxApplianceName = 64

// Appliance is an appliance registered at this hub.
type Appliance struct {
	ID          int64
	Name        string
	Role        ApplianceRole
	CodeExpires time.Time // zero once enrolled
	BundleKey   []byte    // Ed25519 public key of its bundles; nil until enrolled
	IssuerKID   pass.KeyID
	HasIssuer   bool
	CreatedAt   time.Time
	EnrolledAt  time.Time // zero until enrolled
	RetiredAt   time.Time // zero unless retired
	// DrainingAt is when its admins put it in draining before retiring
	// it: it issues no new passes and still sends what it holds. Zero:
	// not draining.
	DrainingAt   time.Time
	BundleInSeq  int64
	BundleOutSeq int64
	LastContact  time.Time
	ClockSkew    time.Duration
	Backlog      int64
	RevocSeq     int64 // last hub revocation it reported applied
	// EnrolledFrom is where the enrolment request came from: the remote
	// address online, or the file it was carried in.
	EnrolledFrom string
	// IssuerFingerprint is the SHA-256 fingerprint of the issuer key it
	// proved possession of at enrolment (pass.PublicKey.Fingerprint).
	IssuerFingerprint []byte
}

// Enrolled tells whether the appliance completed enrolment.
func (a *Appliance) Enrolled() bool { return !a.EnrolledAt.IsZero() }

// Retired tells whether the appliance was retired.
func (a *Appliance) Retired() bool { return !a.RetiredAt.IsZero() }

const applianceColumns = `id, name, may_issue, code_expires_ms, bundle_key, issuer_kid,
	created_ms, enrolled_ms, retired_ms, bundle_in_seq, bundle_out_seq,
	last_contact_ms, clock_skew_ms, backlog, revocations_seq, enrolled_from, issuer_fpr, draining_ms`

func scanAppliance(row interface{ Scan(...any) error }) (*Appliance, error) {
	a := &Appliance{}
	var expires, enrolled, retired, contact, draining sql.NullInt64
	var from sql.NullString
	var kid []byte
	var created, skew int64
	var mayIssue bool
	err := row.Scan(&a.ID, &a.Name, &mayIssue, &expires, &a.BundleKey, &kid,
		&created, &enrolled, &retired, &a.BundleInSeq, &a.BundleOutSeq,
		&contact, &skew, &a.Backlog, &a.RevocSeq, &from, &a.IssuerFingerprint, &draining)
	if err != nil {
		return nil, err
	}
	a.Role = RoleOf(mayIssue)
	if len(kid) == len(a.IssuerKID) {
		copy(a.IssuerKID[:], kid)
		a.HasIssuer = true
	}
	a.CodeExpires, a.EnrolledAt, a.RetiredAt = timeOrZero(expires), timeOrZero(enrolled), timeOrZero(retired)
	a.LastContact, a.DrainingAt = timeOrZero(contact), timeOrZero(draining)
	a.EnrolledFrom = from.String
	a.CreatedAt = time.UnixMilli(created)
	a.ClockSkew = time.Duration(skew) * time.Millisecond
	return a, nil
}

// CheckApplianceName reports whether name can name an appliance: 1 to 64
// bytes of UTF-8 without surrounding spaces and without control or format
// characters (bidirectional overrides among them: a name ends up on
// screens). The name never goes into a pass: certificates carry
// CertApplianceID.
func CheckApplianceName(name string) error {
	if err := pass.CheckText("appliance name", name, MaxApplianceName); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("%w: appliance name has surrounding spaces", ErrInvalid)
	}
	return nil
}

// OwnApplianceID is the identifier in the certificate of the district's
// own issuer key (the hub's, or a standalone appliance's).
const OwnApplianceID = "a0"

// CertApplianceID is the short identifier a hub puts in the certificate
// of the appliance with registry id id, instead of its name, so that no
// name changes the size of a pass (pass.CheckIdent).
func CertApplianceID(id int64) string { return "a" + strconv.FormatInt(id, 10) }

// AddAppliance registers an appliance with role to be enrolled with the
// code whose SHA-256 is codeHash, valid until expires. A hub must hold
// its district root with the private half. ErrConflict if the name is
// taken.
func (db *DB) AddAppliance(ctx context.Context, name string, role ApplianceRole, codeHash []byte, expires time.Time, actor Actor) (*Appliance, error) {
	if err := CheckApplianceName(name); err != nil {
		return nil, fmt.Errorf("add appliance: %w", err)
	}
	if _, err := ParseApplianceRole(string(role)); err != nil {
		return nil, fmt.Errorf("add appliance: %w", err)
	}
	if len(codeHash) != sha256.Size {
		return nil, fmt.Errorf("add appliance: %w: code hash", ErrInvalid)
	}
	now := db.now()
	var a *Appliance
	err := db.update(ctx, func(tx *sql.Tx) error {
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		if err := requireHub(ctx, tx); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO appliances (name, may_issue, code_hash, code_expires_ms, created_ms)
			VALUES (?, ?, ?, ?, ?)`, name, role.MayIssue(), codeHash, expires.UnixMilli(), now.UnixMilli())
		if err != nil {
			return mapErr(err)
		}
		id, _ := res.LastInsertId()
		if a, err = scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE id = ?`, id)); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditApplianceAdded, Subject: name,
			Detail: AuditDetail(map[string]any{"district": d.ID, "role": role, "code_expires_ms": expires.UnixMilli()})}, now)
	})
	if err != nil {
		return nil, fmt.Errorf("add appliance %q: %w", name, err)
	}
	return a, nil
}

// requireHub fails unless this data directory can act as a hub: it holds
// the district root's private key and is not itself enrolled elsewhere.
func requireHub(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sync_hub`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: this appliance is enrolled with a hub; only the hub enrols appliances", ErrInvalid)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE role = 'root' AND private IS NOT NULL AND revoked_ms IS NULL`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: no district root key with its private half here", ErrInvalid)
	}
	return nil
}

// Appliances lists the appliances registered here, by name.
func (db *DB) Appliances(ctx context.Context) ([]*Appliance, error) {
	var list []*Appliance
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+applianceColumns+` FROM appliances ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAppliance(rows)
			if err != nil {
				return err
			}
			list = append(list, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list appliances: %w", err)
	}
	return list, nil
}

// ApplianceByName returns the appliance, or ErrNotFound.
func (db *DB) ApplianceByName(ctx context.Context, name string) (*Appliance, error) {
	var a *Appliance
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		a, err = scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE name = ?`, name))
		return mapErr(err)
	})
	if err != nil {
		return nil, fmt.Errorf("appliance %q: %w", name, err)
	}
	return a, nil
}

// ApplianceByCode returns the appliance waiting for the enrolment code
// whose SHA-256 is codeHash: ErrCodeInvalid if none (or it was
// retired), ErrCodeExpired if past its validity.
func (db *DB) ApplianceByCode(ctx context.Context, codeHash []byte) (*Appliance, error) {
	now := db.now()
	var a *Appliance
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		a, err = applianceByCode(ctx, tx, codeHash, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func applianceByCode(ctx context.Context, tx *sql.Tx, codeHash []byte, now time.Time) (*Appliance, error) {
	if len(codeHash) != sha256.Size {
		return nil, ErrCodeInvalid
	}
	a, err := scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE code_hash = ?`, codeHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrCodeInvalid
	}
	if err != nil {
		return nil, err
	}
	if a.Retired() || a.Enrolled() {
		return nil, ErrCodeInvalid
	}
	if !now.Before(a.CodeExpires) {
		return nil, ErrCodeExpired
	}
	return a, nil
}

// ApplianceByToken returns the enrolled appliance whose sync token has
// SHA-256 tokenHash: ErrNotFound if none, ErrRetired if it was retired.
func (db *DB) ApplianceByToken(ctx context.Context, tokenHash []byte) (*Appliance, error) {
	if len(tokenHash) != sha256.Size {
		return nil, ErrNotFound
	}
	var a *Appliance
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		a, err = scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE token_hash = ?`, tokenHash))
		return mapErr(err)
	})
	if err != nil {
		return nil, err
	}
	if a.Retired() {
		return nil, ErrRetired
	}
	return a, nil
}

// Enrolment is what the hub records when an appliance enrols.
type Enrolment struct {
	CodeHash  []byte
	TokenHash []byte // SHA-256 of the bearer token handed to the appliance
	BundleKey []byte // Ed25519 public key
	// Issuer is the appliance's issuer key (public half and the root's
	// certificate), nil for an appliance that only checks. It joins the
	// hub's keys, so it is on the trust list every appliance pulls.
	Issuer *Key
	Actor  Actor
	// From is where the request came from (the remote address, or the
	// file); IssuerFingerprint the SHA-256 fingerprint of Issuer's key.
	From              string
	IssuerFingerprint []byte
}

// EnrolAppliance completes an enrolment in one transaction: the code is
// checked again (so two requests with one code cannot both succeed) and
// cleared, the token and keys stored, the issuer key trusted, and the
// enrolment audited. It returns the appliance as it is now.
func (db *DB) EnrolAppliance(ctx context.Context, e *Enrolment) (*Appliance, error) {
	if e == nil || len(e.TokenHash) != sha256.Size || len(e.BundleKey) == 0 {
		return nil, fmt.Errorf("enrol appliance: %w: token or bundle key missing", ErrInvalid)
	}
	now := db.now()
	var a *Appliance
	err := db.update(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = applianceByCode(ctx, tx, e.CodeHash, now); err != nil {
			return err
		}
		if e.Issuer != nil && !a.Role.MayIssue() {
			return fmt.Errorf("%w: appliance %q may not issue", ErrInvalid, a.Name)
		}
		var kid any
		if e.Issuer != nil {
			k := *e.Issuer
			k.Private = nil
			k.Role = RoleIssuer
			if err := createKey(ctx, tx, &k, now); err != nil {
				return fmt.Errorf("issuer key: %w", err)
			}
			kid = k.KID[:]
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appliances SET code_hash = NULL, code_expires_ms = NULL,
			token_hash = ?, bundle_key = ?, issuer_kid = ?, enrolled_ms = ?, last_contact_ms = ?,
			enrolled_from = ?, issuer_fpr = ?
			WHERE id = ?`, e.TokenHash, e.BundleKey, kid, now.UnixMilli(), now.UnixMilli(),
			truncateText(e.From, maxFromLen), nilIfEmpty(e.IssuerFingerprint), a.ID); err != nil {
			return mapErr(err)
		}
		if a, err = scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE id = ?`, a.ID)); err != nil {
			return err
		}
		detail := map[string]any{"role": a.Role, "from": a.EnrolledFrom}
		if a.HasIssuer {
			detail["issuer_kid"] = fmt.Sprintf("%x", a.IssuerKID[:])
			detail["issuer_sha256"] = fmt.Sprintf("%x", a.IssuerFingerprint)
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: e.Actor, Action: AuditApplianceEnrolled, Subject: a.Name,
			Detail: AuditDetail(detail)}, now)
	})
	if err != nil {
		return nil, fmt.Errorf("enrol appliance: %w", err)
	}
	return a, nil
}

// maxFromLen bounds where a request came from (the schema's CHECK).
const maxFromLen = 300

// truncateText cuts s to at most n bytes on a character boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// RefuseEnrolment records an enrolment request for the appliance whose
// code's SHA-256 is codeHash that the hub refused, with why and where it
// came from. The code stays valid: whoever holds it may try again with a
// request that proves possession of its keys.
func (db *DB) RefuseEnrolment(ctx context.Context, codeHash []byte, from, why string, actor Actor) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		subject := "unknown"
		if a, err := applianceByCode(ctx, tx, codeHash, now); err == nil {
			subject = a.Name
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditEnrolRefused, Subject: subject,
			Detail: AuditDetail(map[string]string{"from": truncateText(from, maxFromLen), "reason": truncateText(why, maxReasonLen)})}, now)
	})
	if err != nil {
		return fmt.Errorf("record refused enrolment: %w", err)
	}
	return nil
}

// ErrDraining refuses issuing at an appliance its hub put in draining
// before retiring it.
var ErrDraining = errors.New("this appliance is being retired by its district hub (draining): it issues no new passes; issue at another office or the hub")

// DrainAppliance puts an enrolled appliance in draining before it is
// retired: it learns it from its next pull or down bundle and issues no
// new passes from then on, while its pushes and bundles are still taken,
// so nothing it holds is lost when it is retired. Audited. ErrRetired
// for a retired appliance, ErrConflict for one already draining or not
// enrolled yet.
func (db *DB) DrainAppliance(ctx context.Context, name string, actor Actor) (*Appliance, error) {
	now := db.now()
	var a *Appliance
	err := db.update(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = unretiredAppliance(ctx, tx, name)
		switch {
		case err != nil:
			return err
		case !a.Enrolled():
			return fmt.Errorf("%w: appliance %q has not completed enrolment", ErrConflict, name)
		case !a.DrainingAt.IsZero():
			return fmt.Errorf("%w: appliance %q is draining since %s", ErrConflict, name, a.DrainingAt.UTC().Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appliances SET draining_ms = ? WHERE id = ?`, now.UnixMilli(), a.ID); err != nil {
			return err
		}
		a.DrainingAt = now
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditApplianceDraining, Subject: name,
			Detail: AuditDetail(map[string]any{"role": a.Role})}, now)
	})
	if err != nil {
		return nil, fmt.Errorf("drain appliance %q: %w", name, err)
	}
	return a, nil
}

// unretiredAppliance reads the appliance named name for a change:
// ErrNotFound for an unknown one, ErrRetired for a retired one.
func unretiredAppliance(ctx context.Context, tx *sql.Tx, name string) (*Appliance, error) {
	a, err := scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE name = ?`, name))
	if err != nil {
		return nil, mapErr(err)
	}
	if a.Retired() {
		return nil, ErrRetired
	}
	return a, nil
}

// Draining tells whether this appliance's hub put it in draining.
func (db *DB) Draining(ctx context.Context) (bool, error) {
	var d bool
	err := db.r.QueryRowContext(ctx, `SELECT draining FROM sync_hub WHERE id = 1`).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("draining: %w", err)
	}
	return d, nil
}

// RetireAppliance retires an appliance: its token and any unused code
// become void, and its issuer key is revoked (keys.revoked_ms and a
// revocation of the key, which every appliance pulls). Retiring twice is
// ErrRetired.
func (db *DB) RetireAppliance(ctx context.Context, name, reason string, actor Actor) (*Appliance, error) {
	if len(reason) > maxReasonLen {
		return nil, fmt.Errorf("retire appliance: %w: reason longer than %d bytes", ErrInvalid, maxReasonLen)
	}
	now := db.now()
	var a *Appliance
	err := db.update(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE name = ?`, name))
		if err != nil {
			return mapErr(err)
		}
		if a.Retired() {
			return ErrRetired
		}
		// The token hash stays, so the appliance is told it was retired
		// (403 "retired") rather than that its token is unknown.
		if _, err := tx.ExecContext(ctx, `UPDATE appliances SET retired_ms = ?, code_hash = NULL
			WHERE id = ?`, now.UnixMilli(), a.ID); err != nil {
			return err
		}
		if a.HasIssuer {
			why := "appliance " + name + " retired"
			if reason != "" {
				why += ": " + reason
			}
			if err := revokeApplianceIssuer(ctx, tx, a, truncateText(why, maxReasonLen), now); err != nil {
				return err
			}
		}
		a.RetiredAt = now
		detail := map[string]any{"reason": reason}
		if a.HasIssuer {
			detail["issuer_kid"] = fmt.Sprintf("%x", a.IssuerKID[:])
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditApplianceRetired, Subject: name,
			Detail: AuditDetail(detail)}, now)
	})
	if err != nil {
		return nil, fmt.Errorf("retire appliance %q: %w", name, err)
	}
	return a, nil
}

// TouchAppliance records a pull: last contact, clock skew, backlog and
// the last hub revocation the appliance applied.
func (db *DB) TouchAppliance(ctx context.Context, id int64, applianceNow time.Time, backlog, revocSeq int64) error {
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE appliances SET last_contact_ms = ?, clock_skew_ms = ?, backlog = ?,
			revocations_seq = max(revocations_seq, ?) WHERE id = ?`,
			now.UnixMilli(), applianceNow.UnixMilli()-now.UnixMilli(), max(backlog, 0), revocSeq, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("record contact of appliance %d: %w", id, err)
	}
	return nil
}

// revokeApplianceIssuer revokes a's issuer key at the hub (keys.revoked_ms
// and a revocation of the key, which every appliance pulls), for reason
// (cut to what a revocation holds).
func revokeApplianceIssuer(ctx context.Context, tx *sql.Tx, a *Appliance, reason string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_ms = ? WHERE kid = ? AND revoked_ms IS NULL`,
		now.UnixMilli(), a.IssuerKID[:]); err != nil {
		return err
	}
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return createRevocation(ctx, tx, &Revocation{Kind: RevokeIssuer, Target: a.IssuerKID[:], Reason: reason}, now)
}
