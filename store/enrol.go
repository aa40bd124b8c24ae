package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Audit actions of an enrolled appliance.
const (
	// AuditEnrolled is the appliance's own record of joining a district.
	AuditEnrolled = "enrolled"
	// AuditHubAddress records a change of the hub's address.
	AuditHubAddress = "hub_address"
)

// EnrolledSetup is what an appliance stores when it enrols with a hub.
type EnrolledSetup struct {
	District *District // the hub's district, with this appliance's name
	// Trust is the hub's trust list (public halves).
	Trust []*Key
	// Issuer is this appliance's own issuer key with its private half
	// and the root's certificate; nil for an appliance that only checks.
	Issuer *Key
	Policy *Policy
	// PolicyVersion, TrustHash: what the hub said, so the first pull
	// does not fetch them again.
	PolicyVersion int64
	TrustHash     []byte
	Hub           *SyncHub
	Admin         *User
}

// SetupEnrolled stores a new enrolled appliance in one transaction: the
// district, the trust list, its own issuer key, the policy, the hub it
// syncs with and its sync state, the first admin account and the first
// sync epoch. It fails with ErrConflict when the data directory already
// has a district: an appliance enrols into a fresh one.
func (db *DB) SetupEnrolled(ctx context.Context, e *EnrolledSetup) error {
	if err := e.validate(); err != nil {
		return err
	}
	now := db.now()
	var epoch *Epoch
	err := db.update(ctx, func(tx *sql.Tx) error {
		if _, err := findDistrict(ctx, tx); err == nil {
			return fmt.Errorf("district: %w", ErrConflict)
		} else if !errors.Is(err, ErrNotInitialized) {
			return err
		}
		// The hub row first: the outbox triggers fire only while it
		// exists, so the records made here (the admin account's audit,
		// the enrolment's) go up to the hub too.
		if err := db.enrolHub(ctx, tx, e, now); err != nil {
			return err
		}
		d := *e.District
		if e.Hub.Role == ApplianceGate {
			d.PseudonymKey, d.CityPseudonymKey = nil, nil // a gate never stores one, whatever it was sent
		} else if len(d.PseudonymKey) != 32 {
			return fmt.Errorf("district: %w: an office needs the 32-byte pseudonym key", ErrInvalid)
		}
		if err := db.createDistrictSealed(ctx, tx, &d, now); err != nil {
			return err
		}
		if d.CityPseudonymKey != nil {
			if len(d.CityPseudonymKey) != 32 {
				return fmt.Errorf("district: %w: the city pseudonym key is %d bytes, want 32", ErrInvalid, len(d.CityPseudonymKey))
			}
			if _, err := db.putCityPseudonymKey(ctx, tx, d.CityPseudonymKey, ActorHub, now); err != nil {
				return err
			}
		}
		if err := db.enrolKeys(ctx, tx, e, now); err != nil {
			return err
		}
		if err := setPolicy(ctx, tx, e.Policy, ActorHub, now); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sync_state (id, trust_hash, policy_ms, last_pull_ms) VALUES (1, ?, ?, ?)`,
			e.TrustHash, e.PolicyVersion, now.UnixMilli()); err != nil {
			return fmt.Errorf("sync state: %w", mapErr(err))
		}
		if err := enrolAdmin(ctx, tx, e, now); err != nil {
			return err
		}
		var err error
		epoch, err = startSyncEpoch(ctx, tx, now)
		return err
	})
	if err == nil {
		err = db.markSyncing(epoch.ID)
	}
	if err != nil {
		return fmt.Errorf("enrol appliance %q in district %q: %w", e.District.Appliance, e.District.ID, err)
	}
	return nil
}

// validate refuses an enrolment with a part missing or contradicting
// the appliance's role.
func (e *EnrolledSetup) validate() error {
	switch {
	case e == nil || e.District == nil || e.Policy == nil || e.Hub == nil || e.Admin == nil:
		return fmt.Errorf("enrol: %w: missing district, policy, hub or admin", ErrInvalid)
	case len(e.Hub.Token) != 32:
		return fmt.Errorf("enrol: %w: sync token is %d bytes", ErrInvalid, len(e.Hub.Token))
	case e.Hub.Role != "" && e.Hub.Role != ApplianceGate && e.Hub.Role != ApplianceOffice:
		return fmt.Errorf("enrol: %w: role %q", ErrInvalid, e.Hub.Role)
	case e.Hub.Role == ApplianceGate && e.Issuer != nil:
		return fmt.Errorf("enrol: %w: a gate holds no issuer key", ErrInvalid)
	case len(e.Hub.HubCA) == 0 || len(e.Hub.BundleKey) == 0:
		// The address may be empty: enrolled offline, it syncs by bundles.
		return fmt.Errorf("enrol: %w: hub certificate or bundle key missing", ErrInvalid)
	}
	if err := CheckApplianceName(e.District.Appliance); err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	return nil
}

// enrolHub stores the hub the appliance syncs with, its bundle key sealed.
func (db *DB) enrolHub(ctx context.Context, tx *sql.Tx, e *EnrolledSetup, now time.Time) error {
	var role any
	if e.Hub.Role != "" {
		role = string(e.Hub.Role)
	}
	bundleKey, err := db.seal(bundleKeyLabel, e.Hub.BundleKey)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sync_hub (id, url, hub_ca, appliance, token, bundle_key, enrolled_ms, role)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?)`, e.Hub.URL, e.Hub.HubCA, e.District.Appliance, e.Hub.Token, bundleKey,
		now.UnixMilli(), role); err != nil {
		return fmt.Errorf("sync hub: %w", mapErr(err))
	}
	return nil
}

// enrolKeys stores the trust list (public halves only, revoked keys
// marked) and the appliance's own issuer key with its private half sealed.
func (db *DB) enrolKeys(ctx context.Context, tx *sql.Tx, e *EnrolledSetup, now time.Time) error {
	for _, k := range e.Trust {
		if e.Issuer != nil && k.KID == e.Issuer.KID {
			continue // stored below with its private half
		}
		pk := *k
		pk.Private = nil
		pk.CreatedAt, pk.RevokedAt = time.Time{}, time.Time{} // marked below, unless a root
		if err := createKey(ctx, tx, &pk, now); err != nil {
			return fmt.Errorf("trust key %x: %w", k.KID[:], err)
		}
		if !k.RevokedAt.IsZero() {
			if _, err := markTrustKeyRevoked(ctx, tx, k, k.Role, "enrolment", now); err != nil {
				return err
			}
		}
	}
	if e.Issuer != nil {
		if len(e.Issuer.Private) == 0 || len(e.Issuer.Cert) == 0 || e.Issuer.Role != RoleIssuer {
			return fmt.Errorf("own issuer key: %w: private half or certificate missing", ErrInvalid)
		}
		if err := db.createKeySealed(ctx, tx, e.Issuer, now); err != nil {
			return fmt.Errorf("own issuer key: %w", err)
		}
	}
	return nil
}

// enrolAdmin creates the first admin account and audits it and the
// enrolment.
func enrolAdmin(ctx context.Context, tx *sql.Tx, e *EnrolledSetup, now time.Time) error {
	if e.Admin.Role == "" {
		e.Admin.Role = UserAdmin
	}
	if e.Admin.Role != UserAdmin {
		return fmt.Errorf("first user: %w: role %q, want %q", ErrInvalid, e.Admin.Role, UserAdmin)
	}
	if err := createUser(ctx, tx, e.Admin, now); err != nil {
		return err
	}
	if err := auditFirstAdmin(ctx, tx, e.Admin, now); err != nil {
		return err
	}
	detail := map[string]any{"district": e.District.ID, "hub": e.Hub.URL, "appliance": e.District.Appliance}
	if e.Issuer != nil {
		detail["issuer_kid"] = fmt.Sprintf("%x", e.Issuer.KID[:])
	}
	return appendAudit(ctx, tx, &AuditRecord{Actor: "cli", Action: AuditEnrolled, Subject: e.District.Appliance,
		Detail: AuditDetail(detail)}, now)
}

// Initialised tells whether the data directory already has a district
// (standalone, hub or enrolled).
func (db *DB) Initialised(ctx context.Context) (bool, error) {
	_, err := db.District(ctx)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotInitialized):
		return false, nil
	}
	return false, err
}

// SetSyncHubURL changes the address of the hub this appliance syncs
// with, for example an appliance enrolled offline that now has a network,
// or a hub that moved. The hub's pinned certificate stays: only the same
// hub is accepted at the new address. ErrNotEnrolled when not enrolled.
func (db *DB) SetSyncHubURL(ctx context.Context, url string, actor Actor) error {
	if len(url) > 2048 {
		return fmt.Errorf("set hub address: %w: too long", ErrInvalid)
	}
	now := db.now()
	err := db.update(ctx, func(tx *sql.Tx) error {
		var old string
		err := tx.QueryRowContext(ctx, `SELECT url FROM sync_hub WHERE id = 1`).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotEnrolled
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sync_hub SET url = ? WHERE id = 1`, url); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &AuditRecord{Actor: actor, Action: AuditHubAddress, Subject: "hub",
			Detail: AuditDetail(map[string]string{"old": old, "new": url})}, now)
	})
	if err != nil {
		return fmt.Errorf("set hub address: %w", err)
	}
	return nil
}
