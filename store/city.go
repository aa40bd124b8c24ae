package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"passgate/pass"
)

// The city trust chain. A city root (kept offline by the city health
// commission) certifies each district root in a city record; a hub holds
// the city root's public half, imported by its admin, and the records of
// the district roots its gates are to trust; its trust list carries both
// to every appliance. An appliance that holds a city root takes another
// district's root only with a valid certify record from that city root,
// and stops trusting any root, its own district's included, a retire
// record names. Nothing but the hub's feed brings either to an
// appliance.

// Audit actions of the city trust chain.
const (
	// AuditCityRootTrusted: the city root was set here (by the hub's
	// admin, or from the hub's trust list on an appliance).
	AuditCityRootTrusted = "city_root_trusted"
	// AuditCityRootRefused: a city root was refused (fingerprint not
	// matching, another city root already held, not at a hub).
	AuditCityRootRefused = "city_root_refused"
	// AuditCityRecordApplied: a district root was certified or retired
	// here by a city record.
	AuditCityRecordApplied = "city_record_applied"
	// AuditCityRecordRefused: a city record, or another district's root
	// without one, was refused.
	AuditCityRecordRefused = "city_record_refused"
)

// ErrNoCityRoot: this passgate holds no city root.
var ErrNoCityRoot = errors.New("no city root is trusted here")

// ErrNotHub: the operation is the hub's (or a standalone district's);
// an enrolled appliance takes trust only from its hub's feed.
var ErrNotHub = errors.New("only the district hub takes trust from outside; an enrolled appliance takes it from its hub's feed")

// CityRoot is the city root trusted here: public half only.
type CityRoot struct {
	City      string // the city's identifier, as its anchor file names it
	Key       *pass.PublicKey
	CreatedAt time.Time
}

// CityRoot returns the city root trusted here, or ErrNoCityRoot.
func (db *DB) CityRoot(ctx context.Context) (*CityRoot, error) {
	var c *CityRoot
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = findCityRoot(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("city root: %w", err)
	}
	return c, nil
}

func findCityRoot(ctx context.Context, tx *sql.Tx) (*CityRoot, error) {
	var city string
	var alg int64
	var public []byte
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT city, alg, public, created_ms FROM city_root WHERE id = 1`).Scan(&city, &alg, &public, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoCityRoot
	}
	if err != nil {
		return nil, err
	}
	k, err := pass.ParsePublicKey(pass.Alg(alg), public)
	if err != nil {
		return nil, fmt.Errorf("%w: city root held here: %v", ErrCorrupt, err)
	}
	return &CityRoot{City: city, Key: k, CreatedAt: time.UnixMilli(created)}, nil
}

// isEnrolled reports whether this passgate is an appliance enrolled with
// a hub.
func isEnrolled(ctx context.Context, tx *sql.Tx) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sync_hub`).Scan(&n)
	return n > 0, err
}

// TrustCityRoot makes the city root of a city's trust anchor file (one
// root, pass/SPEC.md section 14) the one trusted here, once fingerprint,
// read out by the city by another channel, matches it. Only a hub or a
// standalone district takes it so: an enrolled appliance takes its
// hub's. A second, different city root is refused: a city root is
// replaced by no file. Every outcome is audited.
func (db *DB) TrustCityRoot(ctx context.Context, file []byte, fingerprint string, actor Actor) (*CityRoot, bool, error) {
	now := db.now()
	refuse := func(subject string, why error) error {
		if err := db.Audit(ctx, &AuditRecord{Actor: actor, Action: AuditCityRootRefused, Subject: subject,
			Detail: AuditDetail(map[string]any{"why": why.Error()})}); err != nil {
			return errors.Join(why, err)
		}
		return why
	}
	a, err := pass.ParseAnchor(file)
	if err != nil {
		return nil, false, fmt.Errorf("trust city root: %w", refuse("", fmt.Errorf("%w: %v", ErrInvalid, err)))
	}
	if len(a.Roots) != 1 {
		return nil, false, fmt.Errorf("trust city root: %w", refuse(a.District, fmt.Errorf("%w: a city anchor file holds one root, this one %d", ErrInvalid, len(a.Roots))))
	}
	fp, err := pass.ParseFingerprint(fingerprint)
	if err != nil || fp != a.Roots[0].Fingerprint() {
		return nil, false, fmt.Errorf("trust city root: %w", refuse(a.District, ErrFingerprintMismatch))
	}
	c := &CityRoot{City: a.District, Key: a.Roots[0], CreatedAt: now}
	added := false
	err = db.update(ctx, func(tx *sql.Tx) error {
		if enrolled, err := isEnrolled(ctx, tx); err != nil || enrolled {
			return errors.Join(err, ErrNotHub)
		}
		var err error
		added, err = storeCityRoot(ctx, tx, c, actor, now)
		return err
	})
	if errors.Is(err, ErrNotHub) || errors.Is(err, ErrConflict) {
		return nil, false, fmt.Errorf("trust city root: %w", refuse(a.District, err))
	}
	if err != nil {
		return nil, false, fmt.Errorf("trust city root: %w", err)
	}
	return c, added, nil
}

// storeCityRoot sets c as the city root, audited, unless the same one is
// held already (false); another one held is ErrConflict.
func storeCityRoot(ctx context.Context, tx *sql.Tx, c *CityRoot, actor Actor, now time.Time) (bool, error) {
	held, err := findCityRoot(ctx, tx)
	switch {
	case err == nil && held.Key.KID == c.Key.KID && bytes.Equal(held.Key.Raw, c.Key.Raw):
		return false, nil
	case err == nil:
		return false, fmt.Errorf("%w: city root %s is trusted here already; a city root is not replaced", ErrConflict, held.Key.KID)
	case !errors.Is(err, ErrNoCityRoot):
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO city_root (id, city, kid, alg, public, created_ms) VALUES (1, ?, ?, ?, ?, ?)`,
		c.City, c.Key.KID[:], int64(c.Key.Alg), c.Key.Raw, now.UnixMilli()); err != nil {
		return false, err
	}
	fp := c.Key.Fingerprint()
	return true, appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditCityRootTrusted, Subject: c.Key.KID.String(),
		Detail: AuditDetail(map[string]any{"city": c.City, "alg": c.Key.Alg.String(), "fingerprint": fmt.Sprintf("%x", fp[:])})}, now)
}

// ImportCityRecord applies a city record at the hub (or a standalone
// district): a certify record adds the district root it names (another
// district's) or attaches the record to that root (this district's or
// one held already); a retire record ends the trust of the root it
// names. The trust list then carries the record to every appliance.
// Refused, audited: no city root here, a record that does not verify
// under it, a certification not valid now, a certification of a retired
// root, a root of this district not held here, a run on an enrolled
// appliance.
func (db *DB) ImportCityRecord(ctx context.Context, b []byte, actor Actor) (*pass.CityRecord, error) {
	now := db.now()
	var rec *pass.CityRecord
	var refused error
	err := db.update(ctx, func(tx *sql.Tx) error {
		if enrolled, err := isEnrolled(ctx, tx); err != nil || enrolled {
			if err != nil {
				return err
			}
			refused = ErrNotHub
			return auditCityRefusal(ctx, tx, actor, "", "", ErrNotHub.Error(), now)
		}
		var k *Key
		var why string
		var err error
		rec, k, why, err = importCityRecord(ctx, tx, b, actor, now)
		if err != nil || why == "" {
			return err
		}
		refused = fmt.Errorf("%w: %s", ErrInvalid, why)
		subject, district := "", ""
		if k != nil {
			subject, district = k.KID.String(), k.District
		}
		return auditCityRefusal(ctx, tx, actor, subject, district, why, now)
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, fmt.Errorf("import city record: %w", err)
	}
	return rec, nil
}

// importCityRecord is ImportCityRecord's work in tx at a hub: the record
// applied, or why it was refused (nothing changed, not audited yet), and
// the root it is about when it parsed.
func importCityRecord(ctx context.Context, tx *sql.Tx, b []byte, actor Actor, now time.Time) (*pass.CityRecord, *Key, string, error) {
	d, err := findDistrict(ctx, tx)
	if err != nil {
		return nil, nil, "", err
	}
	k, why, err := checkCityRecord(ctx, tx, b, now)
	if err != nil || why != "" {
		return nil, k, why, err
	}
	rec, why, err := applyCityRecord(ctx, tx, k, d.ID, actor, now)
	return rec, k, why, err
}

// checkCityRecord parses b under the city root held here and returns
// the key it is about, as a trust list would carry it, or why not.
func checkCityRecord(ctx context.Context, tx *sql.Tx, b []byte, now time.Time) (*Key, string, error) {
	city, err := findCityRoot(ctx, tx)
	if errors.Is(err, ErrNoCityRoot) {
		return nil, ErrNoCityRoot.Error(), nil
	}
	if err != nil {
		return nil, "", err
	}
	r, err := pass.ParseCityRecord(b, city.Key)
	if err != nil {
		return nil, err.Error(), nil
	}
	k := &Key{KID: r.Root.KID, Role: RoleRoot, Alg: r.Root.Alg, Public: r.Root.Raw, District: r.District, Cert: bytes.Clone(b)}
	return k, "", nil
}

func auditCityRefusal(ctx context.Context, tx *sql.Tx, actor Actor, subject, district, why string, now time.Time) error {
	return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditCityRecordRefused, Subject: subject,
		Detail: AuditDetail(map[string]any{"district": district, "why": why})}, now)
}

// applyCityRecord applies the city record in k.Cert to the root k
// (public half, district), held here or not: it returns the record, or
// why it was refused (then nothing changed). A root of this district
// (own) that is not held here is refused: it comes only by a rotation.
func applyCityRecord(ctx context.Context, tx *sql.Tx, k *Key, own string, actor Actor, now time.Time) (*pass.CityRecord, string, error) {
	city, err := findCityRoot(ctx, tx)
	if errors.Is(err, ErrNoCityRoot) {
		return nil, "a city record, but no city root is trusted here", nil
	}
	if err != nil {
		return nil, "", err
	}
	r, err := pass.ParseCityRecord(k.Cert, city.Key)
	if err != nil {
		return nil, err.Error(), nil
	}
	if r.Root.KID != k.KID || !bytes.Equal(r.Root.Raw, k.Public) || r.District != k.District || k.Role != RoleRoot {
		return nil, "the city record is about another root or district", nil
	}
	var held struct {
		role, district string
		public, cert   []byte
		notAfter       sql.NullInt64
	}
	err = tx.QueryRowContext(ctx, `SELECT role, district, public, cert, not_after_ms FROM keys WHERE kid = ?`, k.KID[:]).
		Scan(&held.role, &held.district, &held.public, &held.cert, &held.notAfter)
	found := err == nil
	switch {
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return nil, "", err
	case found && (held.role != RoleRoot || held.district != k.District || !bytes.Equal(held.public, k.Public)):
		return nil, fmt.Sprintf("key %s is held here as %s of district %q", k.KID, held.role, held.district), nil
	case !found && k.District == own:
		return nil, "a root of this district comes only by a rotation record", nil
	case found && bytes.Equal(held.cert, k.Cert):
		return r, "", nil // applied already
	}
	if found && len(held.cert) > 0 {
		if prev, err := pass.ParseCityRecord(held.cert, city.Key); err == nil && prev.Kind == pass.CityRetire {
			return nil, "the root is retired; a retirement is final", nil
		}
	}
	var notAfter time.Time
	switch r.Kind {
	case pass.CityCertify:
		if now.Before(r.NotBefore) || !now.Before(r.NotAfter) {
			return nil, fmt.Sprintf("the certificate is valid from %s to %s, not now",
				r.NotBefore.UTC().Format(time.RFC3339), r.NotAfter.UTC().Format(time.RFC3339)), nil
		}
		if k.District != own {
			// Another district's root is trusted as long as the city
			// says; this district's own root does not depend on it.
			notAfter = r.NotAfter
		}
	case pass.CityRetire:
		notAfter = r.RetiredAt
	}
	if found {
		// A renewed certificate sets another district's root's end
		// anew; otherwise (this district's root, a retirement) the end
		// held, a rotation's grace, is never extended.
		renewal := r.Kind == pass.CityCertify && k.District != own
		if !renewal && held.notAfter.Valid && (notAfter.IsZero() || held.notAfter.Int64 < notAfter.UnixMilli()) {
			notAfter = time.UnixMilli(held.notAfter.Int64)
		}
		var na any
		if !notAfter.IsZero() {
			na = notAfter.UnixMilli()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET cert = ?, not_after_ms = ? WHERE kid = ?`, k.Cert, na, k.KID[:]); err != nil {
			return nil, "", err
		}
	} else {
		nk := &Key{KID: k.KID, Role: RoleRoot, Alg: k.Alg, Public: k.Public, District: k.District, Cert: k.Cert, NotAfter: notAfter}
		if r.Kind == pass.CityCertify {
			nk.NotBefore = r.NotBefore
		}
		if err := createKey(ctx, tx, nk, now); err != nil {
			return nil, "", err
		}
	}
	detail := map[string]any{"district": r.District, "kind": r.Kind.String(), "city_root": r.CityKID.String()}
	if !notAfter.IsZero() {
		detail["trusted_until_ms"] = notAfter.UnixMilli()
	}
	return r, "", appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditCityRecordApplied, Subject: k.KID.String(),
		Detail: AuditDetail(detail)}, now)
}

// applyFeedCity takes the city root of the hub's trust list: the first
// one is kept; another one after it is refused and audited (a city root
// is not replaced by a feed).
func applyFeedCity(ctx context.Context, tx *sql.Tx, c *CityRoot, now time.Time) error {
	if c == nil {
		return nil
	}
	_, err := storeCityRoot(ctx, tx, c, ActorHub, now)
	if errors.Is(err, ErrConflict) {
		return appendAudit(ctx, tx, &AuditRecord{Actor: ActorHub, Action: AuditCityRootRefused, Subject: c.Key.KID.String(),
			Detail: AuditDetail(map[string]any{"city": c.City, "via": "feed", "why": err.Error()})}, now)
	}
	return err
}

// acceptFeedRoot takes a root of another district that the hub's trust
// list carries and that is not held here. Where a city root is held, the
// root must come with a city record from it that certifies it now (or
// retires it); where none is, a root without a record is taken as before
// the city (the hub's admin compared its fingerprint). Refusals are
// audited and counted.
func acceptFeedRoot(ctx context.Context, tx *sql.Tx, k *Key, own string, now time.Time, res *FeedResult) error {
	if len(k.Cert) == 0 {
		_, err := findCityRoot(ctx, tx)
		if errors.Is(err, ErrNoCityRoot) {
			return addTrustKey(ctx, tx, k, now, res)
		}
		if err != nil {
			return err
		}
		res.RootsRefused++
		return auditCityRefusal(ctx, tx, ActorHub, k.KID.String(), k.District,
			"another district's root without a certificate from the city root trusted here", now)
	}
	return applyFeedCityRecord(ctx, tx, k, own, now, res, &res.KeysAdded)
}

// applyFeedCityRecord applies the city record k carries to root k,
// counting into applied, or audits and counts its refusal.
func applyFeedCityRecord(ctx context.Context, tx *sql.Tx, k *Key, own string, now time.Time, res *FeedResult, applied *int) error {
	_, why, err := applyCityRecord(ctx, tx, k, own, ActorHub, now)
	if err != nil {
		return err
	}
	if why != "" {
		res.RootsRefused++
		return auditCityRefusal(ctx, tx, ActorHub, k.KID.String(), k.District, why, now)
	}
	*applied++
	return nil
}
