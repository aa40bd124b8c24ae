package store_test

import (
	"bytes"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// auditActions counts the audit records by action.
func auditActions(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	n := map[string]int{}
	if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		n[r.Action]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func rootRevoked(t *testing.T, db *store.DB, id pass.KeyID) bool {
	t.Helper()
	keys, err := db.FindKeys(t.Context(), store.KeyFilter{Role: store.RoleRoot})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.KID == id {
			return !k.RevokedAt.IsZero()
		}
	}
	t.Fatalf("root %x not held", id[:])
	return false
}

func TestApplyFeed_RootRevocationRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		feed func() *store.Feed
	}{
		{"trust list marks the root revoked", func() *store.Feed {
			return &store.Feed{TrustHash: []byte("h1"), Keys: []*store.Key{{KID: kid(1), Role: store.RoleRoot, Alg: pass.AlgEdDSA,
				Public: []byte("root-public"), District: "xa", RevokedAt: t0}}}
		}},
		{"trust list calls the root an issuer and revokes it", func() *store.Feed {
			return &store.Feed{TrustHash: []byte("h1"), Keys: []*store.Key{{KID: kid(1), Role: store.RoleIssuer, Alg: pass.AlgEdDSA,
				Public: []byte("root-public"), District: "xa", RevokedAt: t0}}}
		}},
		{"key revocation names the root", func() *store.Feed {
			return &store.Feed{RevocationsSeq: 9, Revocations: []*store.Revocation{
				{Seq: 9, Kind: store.RevokeIssuer, Target: func() []byte { k := kid(1); return k[:] }(), Reason: "compromised", At: t0}}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := mustEnrolled(t)
			res, err := db.ApplyFeed(t.Context(), c.feed())
			if err != nil {
				t.Fatal(err)
			}
			if res.RootRevocationsRefused != 1 || res.KeysRevoked != 0 || res.Revocations != 0 {
				t.Fatalf("result %+v", res)
			}
			if rootRevoked(t, db, kid(1)) {
				t.Fatal("the feed revoked the district root")
			}
			if revs, _ := db.RevocationsSince(t.Context(), 0); len(revs) != 0 {
				t.Fatalf("root revocation stored: %+v", revs[0])
			}
			if n := auditActions(t, db)[store.AuditRootRevocationRefused]; n != 1 {
				t.Fatalf("%d refusal records, want 1", n)
			}
			// The feed still moved on: the same page is not asked again.
			if st, _ := db.FeedState(t.Context()); c.name == "key revocation names the root" && st.RevocationsSeq != 9 {
				t.Fatalf("revocations seq %d", st.RevocationsSeq)
			}
		})
	}
}

func TestApplyFeed_NewRootArrivesRevoked(t *testing.T) {
	t.Parallel()
	db := mustEnrolled(t)
	other := &store.Key{KID: kid(7), Role: store.RoleRoot, Alg: pass.AlgEdDSA, Public: []byte("other-root"), District: "xb", RevokedAt: t0}
	res, err := db.ApplyFeed(t.Context(), &store.Feed{TrustHash: []byte("h1"), Keys: []*store.Key{other}})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeysAdded != 1 || res.RootRevocationsRefused != 1 || rootRevoked(t, db, kid(7)) {
		t.Fatalf("result %+v", res)
	}
}

func TestCreateRevocation_RootRefused(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	root, issuer := MustSetup(t, db)
	err := db.CreateRevocation(t.Context(), &store.Revocation{Kind: store.RevokeIssuer, Target: bytes.Clone(root.KID[:])})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("root revoked: %v", err)
	}
	if err := db.CreateRevocation(t.Context(), &store.Revocation{Kind: store.RevokeIssuer, Target: bytes.Clone(issuer.KID[:])}); err != nil {
		t.Fatalf("issuer revocation refused: %v", err)
	}
}

// An earlier version marked a root revoked when a feed said so; the next
// start restores it, once, with an audit record.
func TestOpen_RestoresRevokedRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Now = func() time.Time { return t0 }
	root, issuer := MustSetup(t, db)
	if err := db.CreateRevocation(t.Context(), &store.Revocation{Kind: store.RevokeIssuer, Target: bytes.Clone(issuer.KID[:])}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	// What the old feed code left behind.
	if _, err := raw.Exec(`UPDATE keys SET revoked_ms = 1 WHERE kid IN (?, ?)`, root.KID[:], issuer.KID[:]); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db = MustOpenDBDir(t, dir)
	if rootRevoked(t, db, root.KID) {
		t.Fatal("root still revoked after start")
	}
	keys, _ := db.FindKeys(t.Context(), store.KeyFilter{Role: store.RoleIssuer})
	if len(keys) != 1 || keys[0].RevokedAt.IsZero() {
		t.Fatal("the repair touched an issuer key")
	}
	if n := auditActions(t, db)[store.AuditRootRestored]; n != 1 {
		t.Fatalf("%d restore records, want 1", n)
	}
	db.Close()
	db = MustOpenDBDir(t, dir)
	if n := auditActions(t, db)[store.AuditRootRestored]; n != 1 {
		t.Fatalf("%d restore records after a second start, want 1", n)
	}
}

// The hub's feed never carries a root revocation, even one its file holds.
func TestFeedOut_NoRootRevocation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := MustOpenDBDir(t, dir)
	root, issuer := MustSetup(t, db)
	if err := db.CreateRevocation(t.Context(), &store.Revocation{Kind: store.RevokeIssuer, Target: bytes.Clone(issuer.KID[:])}); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO revocations (kind, target, reason, at_ms) VALUES (3, ?, 'x', 1)`, root.KID[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE keys SET revoked_ms = 1 WHERE kid = ?`, root.KID[:]); err != nil {
		t.Fatal(err)
	}
	revs, _, err := db.RevocationsPage(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || !bytes.Equal(revs[0].Target, issuer.KID[:]) {
		t.Fatalf("feed revocations %+v", revs)
	}
	keys, err := db.TrustKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Role == store.RoleRoot && !k.RevokedAt.IsZero() {
			t.Fatal("trust list carries a revoked root")
		}
	}
}

// An enrolment answer whose trust list marks the root revoked enrols with
// the root in force, and says so in the audit trail.
func TestSetupEnrolled_RootRevocationRefused(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	p := store.DefaultPolicy()
	err := db.SetupEnrolled(t.Context(), &store.EnrolledSetup{
		District: &store.District{ID: "xa", Name: "Xi'an", PseudonymKey: make([]byte, 32), Appliance: "gate-1"},
		Trust:    []*store.Key{{KID: kid(1), Role: store.RoleRoot, Alg: pass.AlgEdDSA, Public: []byte("root-public"), District: "xa", RevokedAt: t0}},
		Policy:   &p, PolicyVersion: 100, TrustHash: []byte("h0"),
		Hub:   &store.SyncHub{URL: "https://hub:8443", HubCA: []byte("ca"), Token: make([]byte, 32), BundleKey: []byte("bk")},
		Admin: &store.User{Username: "admin", PasswordHash: testHash},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rootRevoked(t, db, kid(1)) {
		t.Fatal("enrolled with a revoked root")
	}
	if n := auditActions(t, db)[store.AuditRootRevocationRefused]; n != 1 {
		t.Fatalf("%d refusal records, want 1", n)
	}
}
