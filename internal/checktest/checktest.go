// Package checktest sets up a standalone district with a checker, for
// tests of the check pipeline and of the input readers that feed it.
package checktest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// District is a standalone district in a temporary directory, with a
// fixed clock (Now) shared by the store and the checker.
type District struct {
	T            testing.TB
	Ctx          context.Context
	DB           *store.DB
	Checker      *check.Checker
	Now          time.Time
	Root         *pass.PrivateKey
	Issuer       *pass.PrivateKey
	Cert         []byte // the issuer's certificate
	ID           string // the district's id
	Signer       *pass.Signer
	PseudonymKey []byte
}

// New sets up the district in t.TempDir().
func New(t testing.TB) *District {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if _, err := district.Setup(ctx, db, district.SetupOptions{Name: "雁塔区", AdminPassword: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	f := &District{T: t, Ctx: ctx, DB: db, Now: now}
	roots, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot, HasPrivate: true})
	if err != nil || len(roots) != 1 {
		t.Fatalf("root keys: %v %d", err, len(roots))
	}
	if f.Root, err = pass.ParsePrivateKey(roots[0].Private); err != nil {
		t.Fatal(err)
	}
	ik, err := db.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Issuer, err = pass.ParsePrivateKey(ik.Private); err != nil {
		t.Fatal(err)
	}
	f.Cert = ik.Cert
	if f.Signer, err = pass.NewSigner(f.Issuer, f.Cert); err != nil {
		t.Fatal(err)
	}
	d, err := db.District(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.ID, f.PseudonymKey = d.ID, d.PseudonymKey
	if f.Checker, err = check.New(ctx, check.Config{DB: db, Now: func() time.Time { return f.Now }}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Checker.Close) // before the store closes
	return f
}

// Claims returns claims of a new person that the default policy allows
// at f.Now.
func (f *District) Claims() pass.Claims {
	c := pass.Claims{
		District: f.ID,
		Name:     "张*明", IDTail: "1234", Color: pass.Green, TestedAt: f.Now.Add(-18 * time.Hour),
		Doses: 2, IssuedAt: f.Now.Add(-time.Hour), ExpiresAt: f.Now.Add(23 * time.Hour), Kind: pass.Phone,
	}
	if _, err := rand.Read(c.ID[:]); err != nil {
		f.T.Fatal(err)
	}
	// A different person each time, so a revocation in one case does not
	// reach another.
	if _, err := rand.Read(c.Subject[:]); err != nil {
		f.T.Fatal(err)
	}
	return c
}

// Sign signs c with the district's issuer key.
func (f *District) Sign(c pass.Claims) string {
	f.T.Helper()
	return SignWith(f.T, f.Signer, c)
}

// SignWith signs c with s, failing t on an error.
func SignWith(t testing.TB, s *pass.Signer, c pass.Claims) string {
	t.Helper()
	text, err := s.Sign(&c)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return text
}
