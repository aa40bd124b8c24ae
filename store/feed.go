package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The feed: what a hub sends down to its appliances (trust list,
// revocations, policy) and how an appliance applies it.

// Actor of changes an appliance applies from its hub.
const ActorHub = "hub"

// OriginHub marks revocations pulled from the hub: the outbox trigger
// skips them, so they are not sent back up.
const OriginHub = "hub"

// TrustKeys returns every root and issuer key held here, revoked ones
// included, with the private halves removed, in key ID order: the hub's
// trust list. A root never goes out marked revoked, whatever this file
// says: a root is replaced by a rotation, never revoked by the feed.
func (db *DB) TrustKeys(ctx context.Context) ([]*Key, error) {
	keys, _, err := db.TrustKeysVersion(ctx)
	return keys, err
}

// TrustKeysVersion is TrustKeys with the trust version of the same
// snapshot (see TrustVersion).
func (db *DB) TrustKeysVersion(ctx context.Context) ([]*Key, int64, error) {
	var keys []*Key
	var version int64
	err := db.view(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT version FROM trust_version WHERE id = 1`).Scan(&version); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY kid`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanKey(rows)
			if err != nil {
				return err
			}
			k.Private = nil
			if k.Role == RoleRoot {
				k.RevokedAt = time.Time{}
			}
			keys = append(keys, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("trust keys: %w", err)
	}
	return keys, version, nil
}

// FeedPositions is where the hub's feed stands: the trust version (moved
// by the transaction of every change to keys), the last revocation seq
// and the policy's version (its update time in ms). One cheap read: a
// hub watches it to wake the appliances that wait for a change.
type FeedPositions struct {
	TrustVersion   int64
	RevocationsSeq int64
	PolicyVersion  int64
}

// FeedPositions reads where the feed stands, in one snapshot.
func (db *DB) FeedPositions(ctx context.Context) (FeedPositions, error) {
	var p FeedPositions
	err := db.r.QueryRowContext(ctx, `SELECT (SELECT version FROM trust_version WHERE id = 1),
		coalesce((SELECT max(seq) FROM revocations), 0), coalesce((SELECT updated_ms FROM policy WHERE id = 1), 0)`).
		Scan(&p.TrustVersion, &p.RevocationsSeq, &p.PolicyVersion)
	if err != nil {
		return p, fmt.Errorf("feed positions: %w", err)
	}
	return p, nil
}

// RevocationsPage returns at most limit revocations with Seq > after, in
// Seq order, and whether more follow, each with its identity and the
// hub's tag (revrestore.go). A key revocation naming a root key held here
// is left out (such a row can only come from before roots were guarded):
// the feed never carries one.
func (db *DB) RevocationsPage(ctx context.Context, after int64, limit int) ([]*Revocation, bool, error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("revocations page: %w: limit %d", ErrInvalid, limit)
	}
	var list []*Revocation
	more := false
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT seq, kind, target, before_ms, reason, at_ms, coalesce(restored_id, seq)
			FROM revocations WHERE seq > ?
				AND NOT (kind = 3 AND target IN (SELECT kid FROM keys WHERE role = 'root'))
			ORDER BY seq LIMIT ?`, after, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if len(list) == limit {
				more = true
				break
			}
			r := &Revocation{}
			if err := scanRevocation(rows, r, &r.ID); err != nil {
				return err
			}
			list = append(list, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		tk, err := db.revocationTagKeys(ctx, tx)
		if err != nil {
			return err
		}
		tk.sign(list)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("revocations after %d: %w", after, err)
	}
	return list, more, nil
}

// SyncHub is the hub an enrolled appliance talks to (the sync_hub row).
type SyncHub struct {
	URL        string
	HubCA      []byte // DER certificate the hub's TLS chain ends in
	Appliance  string // this appliance's name at the hub
	Token      []byte
	BundleKey  []byte // Ed25519 private key (seed ‖ public) signing bundles
	EnrolledAt time.Time
	// Role is what the hub's admins let this appliance do; empty until
	// the hub said (an appliance enrolled before roles).
	Role ApplianceRole
}

// SyncHubInfo returns the hub this appliance is enrolled with;
// ErrNotEnrolled on a standalone appliance or a hub.
func (db *DB) SyncHubInfo(ctx context.Context) (*SyncHub, error) {
	h := &SyncHub{}
	err := db.view(ctx, func(tx *sql.Tx) error {
		var enrolled int64
		var role sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT url, hub_ca, appliance, token, bundle_key, enrolled_ms, role FROM sync_hub WHERE id = 1`).
			Scan(&h.URL, &h.HubCA, &h.Appliance, &h.Token, &h.BundleKey, &enrolled, &role)
		h.EnrolledAt, h.Role = time.UnixMilli(enrolled), ApplianceRole(role.String)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotEnrolled
		}
		if err != nil {
			return err
		}
		h.BundleKey, err = db.unseal(bundleKeyLabel, h.BundleKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sync hub: %w", err)
	}
	return h, nil
}

// FeedState is how far an appliance has applied its hub's feed, and the
// last outcome of talking to the hub.
type FeedState struct {
	RevocationsSeq int64  // last hub revocation applied
	TrustHash      []byte // hash of the trust list applied
	PolicyVersion  int64  // hub version of the policy applied
	// Generation is the hub's feed generation these positions are in
	// (nil before the first hub that said); HistoryChangedAt is when the
	// hub's history last changed under this appliance (zero: never).
	Generation       []byte
	HistoryChangedAt time.Time
	LastPull         time.Time
	LastPush         time.Time
	LastError        string
	LastErrorAt      time.Time
}

// FeedState returns the appliance's sync_state; ErrNotEnrolled when not
// enrolled.
func (db *DB) FeedState(ctx context.Context) (*FeedState, error) {
	s := &FeedState{}
	err := db.view(ctx, func(tx *sql.Tx) error {
		var pull, push, errAt, changed sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revocations_seq, trust_hash, policy_ms, last_pull_ms, last_push_ms,
			last_error, last_error_ms, generation, history_changed_ms FROM sync_state WHERE id = 1`).
			Scan(&s.RevocationsSeq, &s.TrustHash, &s.PolicyVersion, &pull, &push, &s.LastError, &errAt, &s.Generation, &changed)
		s.LastPull, s.LastPush, s.LastErrorAt = timeOrZero(pull), timeOrZero(push), timeOrZero(errAt)
		s.HistoryChangedAt = timeOrZero(changed)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotEnrolled
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sync state: %w", err)
	}
	return s, nil
}

// Feed is one increment from the hub, as ApplyFeed takes it.
type Feed struct {
	// Keys is the hub's whole trust list (public halves) when it changed,
	// nil when unchanged; TrustHash is its hash.
	Keys      []*Key
	TrustHash []byte
	// Revocations are the hub's, in its Seq order; RevocationsSeq is the
	// last hub seq they reach (kept when there are none).
	Revocations    []*Revocation
	RevocationsSeq int64
	// Policy is the hub's policy when newer than the applied one, with
	// its version; nil when unchanged.
	Policy        *Policy
	PolicyVersion int64
	// Role is the role the hub's admins gave this appliance; empty when
	// the hub did not say (an older hub).
	Role ApplianceRole
	// Generation is the hub's feed generation (nil from an older hub).
	// One other than the appliance's restarts its feed first
	// (RestartFeed): the increment is then applied over a fresh start.
	Generation []byte
	// Draining: the hub is retiring this appliance; it issues no new
	// passes (ErrDraining). Absent from a hub that predates it: false.
	Draining bool
	// City is the city root of the hub's trust list (with Keys); nil
	// when the hub trusts none.
	City *CityRoot
	// At is when the hub wrote the increment, for one that travelled as
	// a file: the lists are as old as the bundle, not as its import.
	// Zero for a pull, which is answered now.
	At time.Time
}

// FeedResult counts what ApplyFeed changed.
type FeedResult struct {
	KeysAdded, KeysRevoked int
	Revocations            int // new revocations stored
	PolicyChanged          bool
	// RootRevocationsRefused counts revocations of a root key that were
	// ignored (and audited): a root is never revoked by the feed.
	RootRevocationsRefused int
	// RootsRotated counts new roots of this district accepted through
	// their rotation record; RootsRefused those refused (audited).
	RootsRotated, RootsRefused int
	// CertsUpdated counts issuer certificates the hub issued again.
	CertsUpdated int
	// KeyDropped: the hub said this appliance is a gate and its
	// pseudonym key was removed.
	KeyDropped bool
}

// Add counts o's changes into r (a pull of several pages).
func (r *FeedResult) Add(o *FeedResult) {
	r.KeysAdded += o.KeysAdded
	r.KeysRevoked += o.KeysRevoked
	r.Revocations += o.Revocations
	r.PolicyChanged = r.PolicyChanged || o.PolicyChanged
	r.RootRevocationsRefused += o.RootRevocationsRefused
	r.RootsRotated += o.RootsRotated
	r.RootsRefused += o.RootsRefused
	r.CertsUpdated += o.CertsUpdated
	r.KeyDropped = r.KeyDropped || o.KeyDropped
}

// pullRecordEvery is how often a pull that brought nothing new is
// recorded as the time of the last pull (the age of the lists).
const pullRecordEvery = 30 * time.Second

// ApplyFeed applies an increment from the hub in one transaction: keys
// added or marked revoked (public halves only; a key whose private half
// is held here is never replaced; a root is never marked revoked: that is
// refused and audited), revocations stored with origin "hub"
// unless an identical one is already here, the policy replaced (audited,
// actor "hub"; the scan retention stays this appliance's), and the
// sync_state moved on. An increment older than what was applied (a
// revocations seq or policy version below the stored one) is refused
// with ErrInvalid: it would move the state backwards.
func (db *DB) ApplyFeed(ctx context.Context, f *Feed) (*FeedResult, error) {
	if f == nil {
		return nil, fmt.Errorf("apply feed: %w: nil feed", ErrInvalid)
	}
	now := db.now()
	// The lists are as fresh as the increment: a bundle's are as old as
	// its writing (never taken as newer than now: clocks differ).
	pulled := now
	if !f.At.IsZero() && f.At.Before(now) {
		pulled = f.At
	}
	res := &FeedResult{}
	// An empty increment changes nothing but the time of the pull. That
	// is recorded at most every pullRecordEvery, so an idle appliance's
	// pulls (every 2 s) do not take the writer and an fsync from the scan
	// log each time.
	if f.Keys == nil && len(f.Revocations) == 0 && f.Policy == nil && !db.roleChanges(ctx, f.Role) && !db.drainingChanges(ctx, f.Draining) {
		var last sql.NullInt64
		var lastErr string
		var gen []byte
		err := db.r.QueryRowContext(ctx, `SELECT last_pull_ms, last_error, generation FROM sync_state WHERE id = 1`).Scan(&last, &lastErr, &gen)
		if err == nil && lastErr == "" && last.Valid && now.Sub(time.UnixMilli(last.Int64)) < pullRecordEvery &&
			(f.Generation == nil || bytes.Equal(gen, f.Generation)) {
			db.notePull(pulled)
			return res, nil
		}
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := applyGeneration(ctx, tx, f.Generation, now); err != nil {
			return err
		}
		var seq, pver int64
		err := tx.QueryRowContext(ctx, `SELECT revocations_seq, policy_ms FROM sync_state WHERE id = 1`).Scan(&seq, &pver)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotEnrolled
		}
		if err != nil {
			return err
		}
		f.skipApplied(seq)
		if f.Keys != nil {
			if err := applyFeedCity(ctx, tx, f.City, now); err != nil {
				return err
			}
			if err := applyKeys(ctx, tx, f.Keys, now, res); err != nil {
				return err
			}
		}
		if err := applyFeedRevocations(ctx, tx, f, seq, now, res); err != nil {
			return err
		}
		if f.Policy != nil && f.PolicyVersion > pver {
			if err := applyFeedPolicy(ctx, tx, f, now, res); err != nil {
				return err
			}
			pver = f.PolicyVersion
		}
		if f.Role != "" {
			if res.KeyDropped, err = applyRole(ctx, tx, f.Role, now); err != nil {
				return fmt.Errorf("hub role: %w", err)
			}
		}
		if err := applyDraining(ctx, tx, f.Draining, now); err != nil {
			return fmt.Errorf("hub draining: %w", err)
		}
		var hash any
		if f.TrustHash != nil {
			hash = f.TrustHash
		}
		_, err = tx.ExecContext(ctx, `UPDATE sync_state SET revocations_seq = ?, trust_hash = coalesce(?, trust_hash),
			policy_ms = ?, last_pull_ms = max(coalesce(last_pull_ms, 0), ?), last_error = '', last_error_ms = NULL WHERE id = 1`,
			f.RevocationsSeq, hash, pver, pulled.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply hub feed: %w", err)
	}
	db.notePull(pulled)
	if res.KeyDropped {
		if err := db.checkpointAfterDrop(ctx); err != nil {
			return nil, fmt.Errorf("apply hub feed: checkpoint after dropping the pseudonym key: %w", err)
		}
	}
	return res, nil
}

// notePull records in memory that a pull succeeded at t (never moving
// back), for SyncStatus.
func (db *DB) notePull(t time.Time) {
	ms := t.UnixMilli()
	for {
		old := db.lastPull.Load()
		if old >= ms || db.lastPull.CompareAndSwap(old, ms) {
			return
		}
	}
}

// skipApplied drops from a repeated page (an answer that crossed a
// retry) the revocations already applied up to seq, rather than fail.
func (f *Feed) skipApplied(seq int64) {
	if len(f.Revocations) > 0 && f.Revocations[0].Seq <= seq {
		i := 0
		for i < len(f.Revocations) && f.Revocations[i].Seq <= seq {
			i++
		}
		f.Revocations = f.Revocations[i:]
	}
	if f.RevocationsSeq < seq {
		f.RevocationsSeq = seq
	}
}

// applyFeedRevocations stores the feed's revocations after seq, in
// order, and moves f.RevocationsSeq on past them.
func applyFeedRevocations(ctx context.Context, tx *sql.Tx, f *Feed, seq int64, now time.Time, res *FeedResult) error {
	last := seq
	for _, r := range f.Revocations {
		if r.Seq <= last {
			return fmt.Errorf("%w: hub revocations out of order (%d after %d)", ErrInvalid, r.Seq, last)
		}
		last = r.Seq
		added, err := applyRevocation(ctx, tx, r, now, res)
		if err == nil {
			err = noteHubTag(ctx, tx, r, f.Generation)
		}
		if err != nil {
			return fmt.Errorf("hub revocation %d: %w", r.Seq, err)
		}
		if added {
			res.Revocations++
		}
	}
	f.RevocationsSeq = max(f.RevocationsSeq, last)
	return nil
}

// applyFeedPolicy replaces the policy with the hub's, keeping this
// appliance's scan retention and backlog warning (how long its own
// uplink may lag is its admin's call), and audits it when it changed.
func applyFeedPolicy(ctx context.Context, tx *sql.Tx, f *Feed, now time.Time, res *FeedResult) error {
	old, err := findPolicy(ctx, tx)
	if err != nil {
		return err
	}
	p := *f.Policy
	p.ScanRetention, p.BacklogWarn = old.ScanRetention, old.BacklogWarn
	if p.TimeZone == "" { // a hub too old to send its zone
		p.TimeZone = old.TimeZone
	}
	if err := setPolicy(ctx, tx, &p, ActorHub, now); err != nil {
		return fmt.Errorf("hub policy: %w", err)
	}
	if o, n := policyAudit(old), policyAudit(&p); o != n {
		res.PolicyChanged = true
		return appendAudit(ctx, tx, &AuditRecord{
			At: now, Actor: ActorHub, Action: AuditPolicyChanged, Subject: "policy",
			Detail: AuditDetail(map[string]any{"old": o, "new": n, "hub_version": f.PolicyVersion}),
		}, now)
	}
	return nil
}

// roleChanges tells whether role differs from the stored one (or the
// stored district still has a key a gate must not hold): an otherwise
// empty increment is then applied, not skipped.
func (db *DB) roleChanges(ctx context.Context, role ApplianceRole) bool {
	if role == "" {
		return false
	}
	var cur sql.NullString
	var keyed int
	err := db.r.QueryRowContext(ctx, `SELECT (SELECT role FROM sync_hub WHERE id = 1),
		(SELECT count(*) FROM district WHERE pseudonym_key IS NOT NULL)`).Scan(&cur, &keyed)
	return err != nil || cur.String != string(role) || (role == ApplianceGate && keyed > 0)
}

// drainingChanges tells whether the hub's word on draining differs from
// what is stored (an error reads as a change: the write path decides).
func (db *DB) drainingChanges(ctx context.Context, draining bool) bool {
	var cur bool
	err := db.r.QueryRowContext(ctx, `SELECT draining FROM sync_hub WHERE id = 1`).Scan(&cur)
	return err != nil || cur != draining
}

// applyDraining stores whether the hub is retiring this appliance,
// audited when it changes.
func applyDraining(ctx context.Context, tx *sql.Tx, draining bool, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE sync_hub SET draining = ? WHERE id = 1 AND draining <> ?`, draining, draining)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	return appendAudit(ctx, tx, &AuditRecord{Actor: ActorHub, Action: AuditApplianceDraining, Subject: "draining",
		Detail: AuditDetail(map[string]any{"draining": draining})}, now)
}

// applyKeys merges the hub's trust list into keys. A new root of this
// district is taken only through its rotation record (acceptNewRoot); a
// new certificate of an issuer key held here only when it verifies under
// a root of the district held here (after the list's new roots).
func applyKeys(ctx context.Context, tx *sql.Tx, keys []*Key, now time.Time, res *FeedResult) error {
	d, err := findDistrict(ctx, tx)
	if err != nil {
		return err
	}
	var recert, pending []*Key
	for _, k := range keys {
		if k == nil {
			continue
		}
		var revoked sql.NullInt64
		var public []byte
		var role string
		var cert []byte
		err := tx.QueryRowContext(ctx, `SELECT public, revoked_ms, role, cert FROM keys WHERE kid = ?`, k.KID[:]).Scan(&public, &revoked, &role, &cert)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if k.Role == RoleRoot && k.District == d.ID {
				// After the other keys, in the order their rotation
				// records chain (see below).
				pending = append(pending, k)
				continue
			}
			if k.Role == RoleRoot {
				if err := acceptFeedRoot(ctx, tx, k, d.ID, now, res); err != nil {
					return err
				}
				continue
			}
			if err := addTrustKey(ctx, tx, k, now, res); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if !bytes.Equal(public, k.Public) {
				// Same key ID, different key: never let the hub swap a
				// key under an ID this appliance already trusts.
				return fmt.Errorf("%w: trust key %x differs from the one held here", ErrInvalid, k.KID[:])
			}
			if role == RoleIssuer && len(k.Cert) > 0 && !bytes.Equal(cert, k.Cert) {
				recert = append(recert, k)
			}
			if role == RoleRoot && len(k.Cert) > 0 && !bytes.Equal(cert, k.Cert) {
				if err := applyFeedCityRecord(ctx, tx, k, d.ID, now, res, &res.CertsUpdated); err != nil {
					return err
				}
			}
			if !k.RevokedAt.IsZero() && !revoked.Valid {
				marked, err := markTrustKeyRevoked(ctx, tx, k, role, "feed", now)
				switch {
				case err != nil:
					return err
				case marked:
					res.KeysRevoked++
				default:
					res.RootRevocationsRefused++
				}
			}
		}
	}
	// New roots of this district: one whose record's old root is held
	// goes first, so a chain of rotations (old → r2 → r3) is taken in
	// one list whatever the order of its keys. What is left is refused.
	for len(pending) > 0 {
		i := slices.IndexFunc(pending, func(k *Key) bool { return rotationFromHeld(ctx, tx, k, d.ID) })
		if i < 0 {
			i = 0 // none chains: each is refused in turn
		}
		k := pending[i]
		pending = slices.Delete(pending, i, i+1)
		ok, err := acceptNewRoot(ctx, tx, k, d.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			res.RootsRefused++
			continue
		}
		res.RootsRotated++
		// A city record about the new root is judged after it is held.
		cityRec := k.Cert
		k.Cert = nil
		if err := addTrustKey(ctx, tx, k, now, res); err != nil {
			return err
		}
		if len(cityRec) > 0 {
			k.Cert = cityRec
			if err := applyFeedCityRecord(ctx, tx, k, d.ID, now, res, &res.CertsUpdated); err != nil {
				return err
			}
		}
	}
	for _, k := range recert {
		changed, err := updateIssuerCert(ctx, tx, k, d.ID)
		if err != nil {
			return err
		}
		if changed {
			res.CertsUpdated++
		}
	}
	return nil
}

// addTrustKey stores a key of the hub's trust list not held here, public
// half only; a revocation it carries is applied unless it is a root's.
func addTrustKey(ctx context.Context, tx *sql.Tx, k *Key, now time.Time, res *FeedResult) error {
	nk := *k
	nk.Private = nil
	nk.CreatedAt, nk.RevokedAt = time.Time{}, time.Time{} // marked below, unless a root
	if err := createKey(ctx, tx, &nk, now); err != nil {
		return fmt.Errorf("trust key %x: %w", k.KID[:], err)
	}
	if !k.RevokedAt.IsZero() {
		marked, err := markTrustKeyRevoked(ctx, tx, k, k.Role, "feed", now)
		if err != nil {
			return err
		}
		if !marked {
			res.RootRevocationsRefused++
		}
	}
	res.KeysAdded++
	return nil
}

// applyRevocation stores one hub revocation unless an identical one
// (kind, target, cutoff) is here already, for example one this appliance
// made and pushed up. A key revocation naming a root held here is
// refused and audited instead. It reports whether it stored it.
func applyRevocation(ctx context.Context, tx *sql.Tx, r *Revocation, now time.Time, res *FeedResult) (bool, error) {
	want := r.Kind.targetLen()
	switch {
	case want == 0:
		return false, fmt.Errorf("%w: revocation kind %d", ErrInvalid, r.Kind)
	case len(r.Target) != want:
		return false, fmt.Errorf("%w: revocation target is %d bytes, want %d", ErrInvalid, len(r.Target), want)
	case (r.Kind == RevokeSubject) == r.Before.IsZero():
		return false, fmt.Errorf("%w: only subject revocations have a cutoff, and they must", ErrInvalid)
	case len(r.Reason) > maxReasonLen:
		return false, fmt.Errorf("%w: reason longer than %d bytes", ErrInvalid, maxReasonLen)
	}
	if r.Kind == RevokeIssuer {
		root, err := isRootKey(ctx, tx, r.Target)
		if err != nil {
			return false, err
		}
		if root {
			res.RootRevocationsRefused++
			return false, refuseRootRevocation(ctx, tx, r.Target, "", "feed", now)
		}
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM revocations WHERE target = ? AND kind = ? AND before_ms IS ?`,
		r.Target, r.Kind, msOrNull(r.Before)).Scan(&n)
	if err != nil || n > 0 {
		return false, err
	}
	at := r.At
	if at.IsZero() {
		at = time.UnixMilli(0)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO revocations (kind, target, before_ms, reason, at_ms, origin)
		VALUES (?, ?, ?, ?, ?, ?)`, r.Kind, r.Target, msOrNull(r.Before), r.Reason, at.UnixMilli(), OriginHub)
	if err != nil {
		return false, mapErr(err)
	}
	if r.Kind == RevokeIssuer {
		// The key itself is marked too, as the trust list would.
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_ms = ? WHERE kid = ? AND revoked_ms IS NULL`,
			at.UnixMilli(), r.Target); err != nil {
			return false, err
		}
	}
	return true, nil
}

// RecordSyncError notes the last failure to talk to the hub, shown on
// the status page; ApplyFeed clears it.
func (db *DB) RecordSyncError(ctx context.Context, msg string) error {
	msg = cutReason(msg)
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sync_state (id, last_error, last_error_ms) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET last_error = excluded.last_error, last_error_ms = excluded.last_error_ms`,
			msg, now.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("record sync error: %w", err)
	}
	return nil
}
