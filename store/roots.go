package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
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

// ActorSystem is the actor of changes passgate makes by itself (repairs
// at start), not on anyone's request.
const ActorSystem = "system"

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
