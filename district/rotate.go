package district

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"passgate/pass"
	"passgate/store"
)

// Rotated tells what RotateRoot did.
type Rotated struct {
	District string
	Old, New *pass.PublicKey
	Certs    int // issuer certificates issued again by the new root
}

// RotateRoot replaces the district root, on purpose, at the hub (or a
// standalone district): a new root of the same algorithm, a rotation
// record signed by the old root and the new, and every issuer key of the
// district certified again by the new root with its former validity. The
// old root stays trusted for store.RootGrace, so passes it chains stay
// valid for their whole life; appliances learn of the new root through
// the rotation record in the trust list (network or bundle).
func RotateRoot(ctx context.Context, db *store.DB, actor store.Actor) (*Rotated, error) {
	d, err := db.District(ctx)
	if err != nil {
		return nil, fmt.Errorf("rotate root: %w", err)
	}
	roots, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot, HasPrivate: true})
	if err != nil {
		return nil, fmt.Errorf("rotate root: %w", err)
	}
	// The newest root of the district is the one in charge; FindKeys
	// lists oldest first.
	var cur *store.Key
	for _, k := range roots {
		if k.District == d.ID && k.RevokedAt.IsZero() {
			cur = k
		}
	}
	if cur == nil {
		return nil, fmt.Errorf("rotate root: %w: no root key of district %s with its private half here (only the district's hub holds it)", store.ErrNotFound, d.ID)
	}
	old, err := pass.ParsePrivateKey(cur.Private)
	if err != nil {
		return nil, fmt.Errorf("rotate root: current root: %w", err)
	}
	nk, err := pass.GenerateKey(old.Public().Alg, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("rotate root: generate: %w", err)
	}
	now := db.Now()
	rec, err := pass.SignRotation(d.ID, old, nk, now)
	if err != nil {
		return nil, fmt.Errorf("rotate root: %w", err)
	}
	newKey, err := keyRecord(nk, store.RoleRoot, d.ID, nil, now, time.Time{}) // a root has no end of its own
	if err != nil {
		return nil, err
	}
	newKey.Rotation = rec

	issuers, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleIssuer})
	if err != nil {
		return nil, fmt.Errorf("rotate root: %w", err)
	}
	var trusted []pass.Root
	for _, k := range roots {
		if k.District == d.ID {
			if pk, err := pass.ParsePublicKey(k.Alg, k.Public); err == nil {
				trusted = append(trusted, pass.Root{District: d.ID, Key: pk})
			}
		}
	}
	certs := make(map[pass.KeyID][]byte)
	for _, k := range issuers {
		if k.District != d.ID || !k.RevokedAt.IsZero() || len(k.Cert) == 0 {
			continue
		}
		c, err := pass.ParseCert(k.Cert, trusted)
		if err != nil {
			// A certificate no root here verifies cannot be vouched for
			// again; it keeps what it has.
			continue
		}
		c2, err := pass.IssueCert(nk, pass.Cert{Key: c.Key, District: c.District, Appliance: c.Appliance,
			NotBefore: c.NotBefore, NotAfter: c.NotAfter})
		if err != nil {
			return nil, fmt.Errorf("rotate root: certify %s again: %w", k.KID, err)
		}
		certs[k.KID] = c2
	}
	if err := db.RotateRoot(ctx, &store.RootRotation{New: newKey, Certs: certs}, actor); err != nil {
		return nil, err
	}
	return &Rotated{District: d.ID, Old: old.Public(), New: nk.Public(), Certs: len(certs)}, nil
}
