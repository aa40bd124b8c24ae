// Package district holds the operations of a district that combine the
// pass format with the store: creating a standalone district, registering
// residents, issuing passes and changing a person's status. The web desk
// and the CLI both go through it, so a pass issued either way is the same.
package district

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"passgate/pass"
	"passgate/store"
)

// IssuerValidity is how long an issuer certificate made at setup is valid.
// It outlives the longest pass (paper, 180 days) by a wide margin.
const IssuerValidity = 2 * 365 * 24 * time.Hour

// SetupOptions describe a new standalone district.
type SetupOptions struct {
	Name          string // display name; default "passgate"
	Appliance     string // this appliance's name; default "appliance-1"
	AdminPassword string // empty: generated
}

// SetupResult tells what Setup made.
type SetupResult struct {
	District      *store.District
	AdminUser     string
	AdminPassword string // only set when it was generated
}

// EnsureSetup makes a standalone district in db unless one exists. It
// returns nil, nil when the district already existed. Two processes racing
// to set up the same directory end with one district.
func EnsureSetup(ctx context.Context, db *store.DB, opt SetupOptions) (*SetupResult, error) {
	if _, err := db.District(ctx); err == nil {
		return nil, nil
	} else if !errors.Is(err, store.ErrNotInitialized) {
		return nil, err
	}
	res, err := Setup(ctx, db, opt)
	if errors.Is(err, store.ErrConflict) {
		return nil, nil
	}
	return res, err
}

// Setup creates a district: its root key, an issuer key certified by the
// root, a pseudonym key, the first admin account and the default policy.
func Setup(ctx context.Context, db *store.DB, opt SetupOptions) (*SetupResult, error) {
	now := db.Now().Truncate(time.Second)
	if opt.Name == "" {
		opt.Name = "passgate"
	}
	if opt.Appliance == "" {
		opt.Appliance = "appliance-1"
	}
	d := &store.District{
		ID:           "D" + randomString(7),
		Name:         opt.Name,
		PseudonymKey: make([]byte, 32),
		Appliance:    opt.Appliance,
		CreatedAt:    now,
	}
	if _, err := rand.Read(d.PseudonymKey); err != nil {
		return nil, err
	}
	rootKey, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate root key: %w", err)
	}
	issuerKey, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate issuer key: %w", err)
	}
	notAfter := now.Add(IssuerValidity)
	cert, err := pass.IssueCert(rootKey, pass.Cert{
		Key:       issuerKey.Public(),
		District:  d.ID,
		Appliance: store.OwnApplianceID, // never the name: it would change the size of every pass
		NotBefore: now.Add(-time.Hour),  // tolerate checkers whose clock is a little behind
		NotAfter:  notAfter,
	})
	if err != nil {
		return nil, fmt.Errorf("certify issuer key: %w", err)
	}
	root, err := keyRecord(rootKey, store.RoleRoot, d.ID, nil, now, time.Time{})
	if err != nil {
		return nil, err
	}
	issuer, err := keyRecord(issuerKey, store.RoleIssuer, d.ID, cert, now, notAfter)
	if err != nil {
		return nil, err
	}

	res := &SetupResult{District: d, AdminUser: "admin"}
	password := opt.AdminPassword
	if password == "" {
		password = randomString(16)
		res.AdminPassword = password
	}
	hash, err := store.HashPassword(password)
	if err != nil {
		return nil, err
	}
	admin := &store.User{Username: res.AdminUser, Role: store.UserAdmin, PasswordHash: hash, CreatedAt: now}
	if err := db.Setup(ctx, d, root, issuer, admin); err != nil {
		return nil, fmt.Errorf("set up district: %w", err)
	}
	return res, nil
}

func keyRecord(k *pass.PrivateKey, role, district string, cert []byte, now, notAfter time.Time) (*store.Key, error) {
	priv, err := k.MarshalBinary()
	if err != nil {
		return nil, err
	}
	pub := k.Public()
	return &store.Key{
		KID: pub.KID, Role: role, Alg: pub.Alg, Public: pub.Raw, Private: priv, Cert: cert,
		District: district, NotBefore: now, NotAfter: notAfter, CreatedAt: now,
	}, nil
}

// randomString returns n characters of lower-case base32: readable,
// unambiguous to type, and safe in file names and URLs.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:n]
}
