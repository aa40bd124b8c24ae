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

// A district root is the anchor every pass of its district chains to.
// Nothing that arrives from elsewhere (the hub's feed, a bundle, an
// enrolment answer) may revoke one: a single revoked root makes every
// pass of the district unknown_issuer on every gate, and a restart would
// not bring it back. A root is only ever replaced, on purpose, by a
// rotation record it signed itself. These are the guards.

// Audit actions of the root guards.
const (
	// AuditRootRevocationRefused: a feed, bundle or enrolment answer
	// tried to revoke a district root; it was ignored.
	AuditRootRevocationRefused = "root_revocation_refused"
	// AuditRootRestored: a root found marked revoked (by an earlier
	// version that accepted such a revocation) was restored at start.
	AuditRootRestored = "root_restored"
)

// isRootKey reports whether kid names a root key held here.
func isRootKey(ctx context.Context, tx *sql.Tx, kid []byte) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE kid = ? AND role = 'root'`, kid).Scan(&n)
	return n > 0, err
}

// refuseRootRevocation records that via (the feed, a bundle, an
// enrolment) tried to revoke root kid of district; the revocation is
// dropped by the caller.
func refuseRootRevocation(ctx context.Context, tx *sql.Tx, kid []byte, district, via string, now time.Time) error {
	return appendAudit(ctx, tx, &AuditRecord{
		Actor: ActorHub, Action: AuditRootRevocationRefused, Subject: fmt.Sprintf("%x", kid),
		Detail: AuditDetail(map[string]any{"district": district, "via": via,
			"why": "a district root is never revoked by the feed; it is replaced by a root-signed rotation"}),
	}, now)
}

// markTrustKeyRevoked marks a key of a trust list revoked at k.RevokedAt,
// unless it is a root (role is the role held here, or the list's for a
// new key): then the revocation is refused and audited. It reports
// whether the key was marked.
func markTrustKeyRevoked(ctx context.Context, tx *sql.Tx, k *Key, role, via string, now time.Time) (bool, error) {
	if role == RoleRoot || k.Role == RoleRoot {
		return false, refuseRootRevocation(ctx, tx, k.KID[:], k.District, via, now)
	}
	_, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_ms = ? WHERE kid = ? AND revoked_ms IS NULL`,
		k.RevokedAt.UnixMilli(), k.KID[:])
	return err == nil, err
}

// restoreRevokedRoots clears the revocation of every root key that
// carries one, each restore audited. Earlier versions applied a key
// revocation of a root arriving in the feed; such a root is restored
// once, at the first start of this version (afterwards nothing can mark
// a root revoked, so the query finds nothing). A root is never revoked
// on purpose: it is replaced by a rotation, which does not use this mark.
func (db *DB) restoreRevokedRoots(ctx context.Context) error {
	var n int
	if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE role = 'root' AND revoked_ms IS NOT NULL`).Scan(&n); err != nil {
		return fmt.Errorf("restore revoked roots: %w", err)
	}
	if n == 0 {
		return nil
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT kid, district, revoked_ms FROM keys WHERE role = 'root' AND revoked_ms IS NOT NULL`)
		if err != nil {
			return err
		}
		type revoked struct {
			kid      []byte
			district string
			at       int64
		}
		var list []revoked
		for rows.Next() {
			var r revoked
			if err := rows.Scan(&r.kid, &r.district, &r.at); err != nil {
				rows.Close()
				return err
			}
			list = append(list, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, r := range list {
			if _, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_ms = NULL WHERE kid = ?`, r.kid); err != nil {
				return err
			}
			if err := appendAudit(ctx, tx, &AuditRecord{
				Actor: ActorSystem, Action: AuditRootRestored, Subject: fmt.Sprintf("%x", r.kid),
				Detail: AuditDetail(map[string]any{"district": r.district, "was_revoked_ms": r.at,
					"why": "a district root is never revoked by the feed"}),
			}, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore revoked roots: %w", err)
	}
	return nil
}

// Audit actions of trust between districts.
const (
	// AuditRootTrusted: another district's root was added to this
	// district's trust after its fingerprint was compared.
	AuditRootTrusted = "root_trusted"
	// AuditRootImportRefused: a trust anchor file was refused (damaged,
	// fingerprint not matching, this district's own).
	AuditRootImportRefused = "root_import_refused"
)

// ErrFingerprintMismatch: the fingerprint the admin compared out of band
// is not one of the file's roots.
var ErrFingerprintMismatch = errors.New("the fingerprint does not match any root key in the file")

// ErrOwnDistrict: a trust anchor of this district's own roots; they
// change only by a rotation.
var ErrOwnDistrict = errors.New("the file is this district's own trust anchor")

// TrustedRoot is a root key held here, with its fingerprint.
type TrustedRoot struct {
	*Key
	Own         bool // a root of this passgate's own district
	Fingerprint [32]byte
}

// TrustedRoots lists every root key held here, own district's first.
func (db *DB) TrustedRoots(ctx context.Context) ([]TrustedRoot, error) {
	d, err := db.District(ctx)
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	keys, err := db.FindKeys(ctx, KeyFilter{Role: RoleRoot})
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	var own, other []TrustedRoot
	for _, k := range keys {
		pk, err := pass.ParsePublicKey(k.Alg, k.Public)
		if err != nil {
			return nil, fmt.Errorf("trusted root %s: %w", k.KID, err)
		}
		tr := TrustedRoot{Key: k, Own: k.District == d.ID, Fingerprint: pk.Fingerprint()}
		k.Private = nil
		if tr.Own {
			own = append(own, tr)
		} else {
			other = append(other, tr)
		}
	}
	return append(own, other...), nil
}

// ImportTrustAnchor adds the roots of another district's trust anchor
// file to this district's trust, once fingerprint (as the admin read it
// from the other district by another channel) matches one of the file's
// roots; the file's signatures make that root vouch for the others. On a
// hub, the roots then reach every appliance with the trust list. Every
// outcome is audited: each root added, or the refusal. It returns the
// parsed file and how many roots were new.
func (db *DB) ImportTrustAnchor(ctx context.Context, file []byte, fingerprint string, actor Actor) (*pass.Anchor, int, error) {
	now := db.now()
	refuse := func(district string, why error) error {
		detail := map[string]any{"why": why.Error(), "fingerprint_given": fingerprint}
		if len(detail["fingerprint_given"].(string)) > 200 {
			detail["fingerprint_given"] = "(too long)"
		}
		if err := db.Audit(ctx, &AuditRecord{Actor: actor, Action: AuditRootImportRefused, Subject: district,
			Detail: AuditDetail(detail)}); err != nil {
			return errors.Join(why, err)
		}
		return why
	}
	a, err := pass.ParseAnchor(file)
	if err != nil {
		return nil, 0, fmt.Errorf("import trust anchor: %w", refuse("", err))
	}
	fp, err := pass.ParseFingerprint(fingerprint)
	if err != nil {
		return a, 0, fmt.Errorf("import trust anchor: %w", refuse(a.District, fmt.Errorf("%w: %v", ErrInvalid, err)))
	}
	matched := false
	for _, r := range a.Roots {
		matched = matched || r.Fingerprint() == fp
	}
	if !matched {
		return a, 0, fmt.Errorf("import trust anchor: %w", refuse(a.District, ErrFingerprintMismatch))
	}
	added := 0
	err = db.update(ctx, func(tx *sql.Tx) error {
		added = 0
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		if a.District == d.ID {
			return ErrOwnDistrict
		}
		for _, r := range a.Roots {
			var district, role string
			var public []byte
			err := tx.QueryRowContext(ctx, `SELECT district, role, public FROM keys WHERE kid = ?`, r.KID[:]).Scan(&district, &role, &public)
			switch {
			case err == nil && district == a.District && role == RoleRoot && bytes.Equal(public, r.Raw):
				continue // trusted already
			case err == nil:
				return fmt.Errorf("%w: key %s is held here already for district %q as %s", ErrConflict, r.KID, district, role)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			k := &Key{KID: r.KID, Role: RoleRoot, Alg: r.Alg, Public: r.Raw, District: a.District}
			if err := createKey(ctx, tx, k, now); err != nil {
				return err
			}
			fpr := r.Fingerprint()
			if err := appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditRootTrusted, Subject: r.KID.String(),
				Detail: AuditDetail(map[string]any{"district": a.District, "name": a.Name, "alg": r.Alg.String(),
					"fingerprint": fmt.Sprintf("%x", fpr[:])})}, now); err != nil {
				return err
			}
			added++
		}
		return nil
	})
	if errors.Is(err, ErrOwnDistrict) || errors.Is(err, ErrConflict) {
		return a, 0, fmt.Errorf("import trust anchor: %w", refuse(a.District, err))
	}
	if err != nil {
		return a, 0, fmt.Errorf("import trust anchor: %w", err)
	}
	return a, added, nil
}

// ExportTrustAnchor writes this district's trust anchor file: every root
// of the district whose private half is held here (the hub, or a
// standalone district), each signing the file. ErrNotFound elsewhere: an
// enrolled appliance holds no root to sign with.
func (db *DB) ExportTrustAnchor(ctx context.Context) ([]byte, error) {
	d, err := db.District(ctx)
	if err != nil {
		return nil, fmt.Errorf("export trust anchor: %w", err)
	}
	keys, err := db.FindKeys(ctx, KeyFilter{Role: RoleRoot, HasPrivate: true})
	if err != nil {
		return nil, fmt.Errorf("export trust anchor: %w", err)
	}
	var roots []*pass.PrivateKey
	now := db.now()
	for _, k := range keys {
		if k.District != d.ID || (!k.NotAfter.IsZero() && now.After(k.NotAfter)) {
			continue // another district's, or replaced and past its grace
		}
		pk, err := pass.ParsePrivateKey(k.Private)
		if err != nil {
			return nil, fmt.Errorf("export trust anchor: root %s: %w", k.KID, err)
		}
		roots = append(roots, pk)
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("export trust anchor: %w: no root key of district %s with its private half here (only the district's hub holds it)", ErrNotFound, d.ID)
	}
	b, err := pass.MarshalAnchor(d.ID, d.Name, roots)
	if err != nil {
		// The display name is a courtesy; a name the format cannot carry
		// (too long) is left out rather than failing the export.
		b, err = pass.MarshalAnchor(d.ID, "", roots)
	}
	if err != nil {
		return nil, fmt.Errorf("export trust anchor: %w", err)
	}
	return b, nil
}

// RootGrace is how long a replaced root stays trusted after its
// successor arrived here: the longest a pass lives (a paper pass), so
// every pass issued under the old root runs its course.
const RootGrace = pass.PaperValidity

// Audit actions of root rotation.
const (
	// AuditRootRotated: this district's root was replaced by a new one
	// through a rotation record (made here, or arrived from the hub).
	AuditRootRotated = "root_rotated"
	// AuditRootRefused: a new root of this district arrived without a
	// valid rotation record signed by a root trusted here; ignored.
	AuditRootRefused = "root_refused"
)

// RootRotation is a rotation made at the hub: the new root (with its
// private half and its rotation record) and the issuer certificates the
// new root issued again, by key.
type RootRotation struct {
	New   *Key
	Certs map[pass.KeyID][]byte
}

// RotateRoot stores a rotation made here in one transaction: the new
// root, the issuer keys' new certificates, and the end of the old root's
// trust (RootGrace from now), audited. The record must be valid and its
// old root a root of this district whose private half is held here.
func (db *DB) RotateRoot(ctx context.Context, rot *RootRotation, actor Actor) error {
	if rot == nil || rot.New == nil {
		return fmt.Errorf("rotate root: %w: nothing to store", ErrInvalid)
	}
	r, err := pass.ParseRotation(rot.New.Rotation)
	if err != nil {
		return fmt.Errorf("rotate root: %w: %v", ErrInvalid, err)
	}
	now := db.now()
	err = db.update(ctx, func(tx *sql.Tx) error {
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE kid = ? AND role = 'root' AND district = ? AND private IS NOT NULL`,
			r.Old.KID[:], d.ID).Scan(&n); err != nil {
			return err
		}
		if n == 0 || r.District != d.ID || r.New.KID != rot.New.KID || rot.New.Role != RoleRoot || rot.New.District != d.ID {
			return fmt.Errorf("%w: the record does not hand this district's root over to the new key", ErrInvalid)
		}
		replaced, err := successorHeld(ctx, tx, r.Old.KID, d.ID)
		if err != nil {
			return err
		}
		if replaced {
			return fmt.Errorf("%w: root %s has already been replaced", ErrInvalid, r.Old.KID)
		}
		if err := createKey(ctx, tx, rot.New, now); err != nil {
			return err
		}
		until, err := endRootTrust(ctx, tx, r.Old.KID, now)
		if err != nil {
			return err
		}
		for kid, cert := range rot.Certs {
			if _, err := tx.ExecContext(ctx, `UPDATE keys SET cert = ? WHERE kid = ? AND role = 'issuer'`, cert, kid[:]); err != nil {
				return err
			}
		}
		return auditRotation(ctx, tx, actor, r, until, len(rot.Certs), now)
	})
	if err != nil {
		return fmt.Errorf("rotate root: %w", err)
	}
	return nil
}

// endRootTrust makes the replaced root kid trusted for RootGrace more
// (never longer than already set) and returns until when.
func endRootTrust(ctx context.Context, tx *sql.Tx, kid pass.KeyID, now time.Time) (time.Time, error) {
	until := now.Add(RootGrace).UnixMilli()
	_, err := tx.ExecContext(ctx, `UPDATE keys SET not_after_ms = min(coalesce(not_after_ms, ?1), ?1) WHERE kid = ?2`, until, kid[:])
	return time.UnixMilli(until), err
}

func auditRotation(ctx context.Context, tx *sql.Tx, actor Actor, r *pass.Rotation, until time.Time, certs int, now time.Time) error {
	fo, fn := r.Old.Fingerprint(), r.New.Fingerprint()
	return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditRootRotated, Subject: r.New.KID.String(),
		Detail: AuditDetail(map[string]any{"district": r.District, "old": r.Old.KID.String(), "old_trusted_until_ms": until.UnixMilli(),
			"old_fingerprint": fmt.Sprintf("%x", fo[:]), "new_fingerprint": fmt.Sprintf("%x", fn[:]), "certificates_reissued": certs})}, now)
}

// acceptNewRoot decides whether a root of this passgate's own district
// arriving from the hub may be trusted: only through its rotation record,
// signed by a root of the district trusted here (and by the new root).
// Accepted, the old root is trusted RootGrace more. Refused, the refusal
// is audited and the key must not be stored.
func acceptNewRoot(ctx context.Context, tx *sql.Tx, k *Key, district string, now time.Time) (bool, error) {
	refuse := func(why string) (bool, error) {
		return false, appendAudit(ctx, tx, &AuditRecord{Actor: ActorHub, Action: AuditRootRefused, Subject: k.KID.String(),
			Detail: AuditDetail(map[string]any{"district": k.District, "why": why})}, now)
	}
	if len(k.Rotation) == 0 {
		return refuse("a new root of this district without a rotation record")
	}
	r, err := pass.ParseRotation(k.Rotation)
	if err != nil {
		return refuse(err.Error())
	}
	if r.District != district || r.New.KID != k.KID || !bytes.Equal(r.New.Raw, k.Public) {
		return refuse("the rotation record is for another district or key")
	}
	var public []byte
	var notAfter sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT public, not_after_ms FROM keys WHERE kid = ? AND role = 'root' AND district = ?`,
		r.Old.KID[:], district).Scan(&public, &notAfter)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return refuse("the rotation record is not signed by a root of this district trusted here")
	case err != nil:
		return false, err
	case !bytes.Equal(public, r.Old.Raw):
		return refuse("the rotation record's old root differs from the one trusted here")
	case notAfter.Valid && now.After(time.UnixMilli(notAfter.Int64)):
		return refuse("the rotation record's old root is no longer trusted here")
	}
	// A root that handed the district over already cannot do it again:
	// a second hand-over is a fork, made by whoever holds the key that
	// was rotated away, perhaps because it was stolen.
	replaced, err := successorHeld(ctx, tx, r.Old.KID, district)
	if err != nil {
		return false, err
	}
	if replaced {
		return refuse("the rotation record's old root has already been replaced")
	}
	until, err := endRootTrust(ctx, tx, r.Old.KID, now)
	if err != nil {
		return false, err
	}
	return true, auditRotation(ctx, tx, ActorHub, r, until, 0, now)
}

// successorHeld reports whether a root of district held here came by a
// rotation record from root old.
func successorHeld(ctx context.Context, tx *sql.Tx, old pass.KeyID, district string) (bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT rotation FROM keys WHERE role = 'root' AND district = ? AND rotation IS NOT NULL`, district)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var rec []byte
		if err := rows.Scan(&rec); err != nil {
			return false, err
		}
		if r, err := pass.ParseRotation(rec); err == nil && r.Old.KID == old {
			return true, nil
		}
	}
	return false, rows.Err()
}

// rotationFromHeld reports whether k's rotation record names as its old
// root a root of district held here (without judging the signatures:
// acceptNewRoot does).
func rotationFromHeld(ctx context.Context, tx *sql.Tx, k *Key, district string) bool {
	r, err := pass.ParseRotation(k.Rotation)
	if err != nil {
		return false
	}
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE kid = ? AND role = 'root' AND district = ?`, r.Old.KID[:], district).Scan(&n)
	return err == nil && n > 0
}

// updateIssuerCert takes a new certificate of an issuer key held here
// from the hub (the hub issued it again after a rotation) when it
// verifies under a root of the district trusted here and certifies the
// same key; otherwise the one held stays. It reports whether it changed.
func updateIssuerCert(ctx context.Context, tx *sql.Tx, k *Key, district string) (bool, error) {
	if k.District != district || len(k.Cert) == 0 {
		return false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT alg, public FROM keys WHERE role = 'root' AND district = ?`, district)
	if err != nil {
		return false, err
	}
	var roots []pass.Root
	for rows.Next() {
		var alg int64
		var public []byte
		if err := rows.Scan(&alg, &public); err != nil {
			rows.Close()
			return false, err
		}
		if pk, err := pass.ParsePublicKey(pass.Alg(alg), public); err == nil {
			roots = append(roots, pass.Root{District: district, Key: pk})
		}
	}
	if err := rows.Close(); err != nil {
		return false, err
	}
	c, err := pass.ParseCert(k.Cert, roots)
	if err != nil || c.Key.KID != k.KID {
		return false, nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE keys SET cert = ?, not_before_ms = ?, not_after_ms = ? WHERE kid = ? AND role = 'issuer'`,
		k.Cert, c.NotBefore.UnixMilli(), c.NotAfter.UnixMilli(), k.KID[:])
	return err == nil, err
}
