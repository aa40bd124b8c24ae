package store_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// mustEnrolled stores an enrolled appliance with its own issuer key
// kid(2) (private half held) and the root kid(1) trusted.
func mustEnrolled(t *testing.T) *store.DB {
	t.Helper()
	db := MustOpenDB(t)
	p := store.DefaultPolicy()
	err := db.SetupEnrolled(t.Context(), &store.EnrolledSetup{
		District: &store.District{ID: "xa", Name: "Xi'an", PseudonymKey: make([]byte, 32), Appliance: "gate-1"},
		Trust:    []*store.Key{{KID: kid(1), Role: store.RoleRoot, Alg: pass.AlgEdDSA, Public: []byte("root-public"), District: "xa"}},
		Issuer: &store.Key{KID: kid(2), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("own-public"),
			Private: []byte("own-private"), Cert: []byte("cert"), District: "xa"},
		Policy: &p, PolicyVersion: 100, TrustHash: []byte("h0"),
		Hub:   &store.SyncHub{URL: "https://hub:8443", HubCA: []byte("ca"), Token: make([]byte, 32), BundleKey: []byte("bk")},
		Admin: &store.User{Username: "admin", PasswordHash: testHash},
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestSetupEnrolled(t *testing.T) {
	t.Parallel()
	db := mustEnrolled(t)
	d, err := db.District(t.Context())
	if err != nil || d.Appliance != "gate-1" {
		t.Fatalf("district %+v: %v", d, err)
	}
	st, err := db.FeedState(t.Context())
	if err != nil || st.PolicyVersion != 100 || string(st.TrustHash) != "h0" {
		t.Fatalf("feed state %+v: %v", st, err)
	}
	if k, err := db.SigningKey(t.Context()); err != nil || k.KID != kid(2) {
		t.Fatalf("own key: %+v %v", k, err)
	}
	if eps, err := db.SyncEpochs(t.Context()); err != nil || len(eps) == 0 {
		t.Fatalf("no first epoch: %v", err)
	}
	// Once is all: a data directory with a district refuses.
	p := store.DefaultPolicy()
	err = db.SetupEnrolled(t.Context(), &store.EnrolledSetup{
		District: &store.District{ID: "xb", Name: "x", PseudonymKey: make([]byte, 32), Appliance: "g"},
		Policy:   &p, Hub: &store.SyncHub{HubCA: []byte("ca"), Token: make([]byte, 32), BundleKey: []byte("bk")},
		Admin: &store.User{Username: "admin2", PasswordHash: testHash},
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second enrolment: %v", err)
	}
	// A standalone district is not enrolled.
	sa := MustOpenDB(t)
	MustSetup(t, sa)
	if _, err := sa.FeedState(t.Context()); !errors.Is(err, store.ErrNotEnrolled) {
		t.Fatalf("feed state of a standalone: %v", err)
	}
	if _, err := sa.ApplyFeed(t.Context(), &store.Feed{}); !errors.Is(err, store.ErrNotEnrolled) {
		t.Fatalf("feed applied to a standalone: %v", err)
	}
}

func TestApplyFeed(t *testing.T) {
	t.Parallel()
	db := mustEnrolled(t)
	issuer := &store.Key{KID: kid(3), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("other-issuer"), District: "xa"}
	revs := []*store.Revocation{
		{Seq: 5, Kind: store.RevokeSubject, Target: bytes.Repeat([]byte{1}, 16), Before: t0, Reason: "red", At: t0},
		{Seq: 7, Kind: store.RevokePass, Target: bytes.Repeat([]byte{2}, 12), Reason: "lost", At: t0},
	}
	p := store.DefaultPolicy()
	p.MinDoses = 3
	res, err := db.ApplyFeed(t.Context(), &store.Feed{
		Keys: []*store.Key{issuer}, TrustHash: []byte("h1"), Revocations: revs, Policy: &p, PolicyVersion: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeysAdded != 1 || res.Revocations != 2 || !res.PolicyChanged {
		t.Fatalf("result %+v", res)
	}
	st, _ := db.FeedState(t.Context())
	if st.RevocationsSeq != 7 || st.PolicyVersion != 200 || string(st.TrustHash) != "h1" {
		t.Fatalf("state %+v", st)
	}
	got, _ := db.Policy(t.Context())
	if got.MinDoses != 3 || got.UpdatedBy != store.ActorHub {
		t.Fatalf("policy %+v", got)
	}
	// The same page again (an answer repeated after a retry) and an
	// older policy change nothing.
	old := p
	old.MinDoses = 1
	res, err = db.ApplyFeed(t.Context(), &store.Feed{Revocations: revs, Policy: &old, PolicyVersion: 150})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revocations != 0 || res.PolicyChanged {
		t.Fatalf("repeated feed changed %+v", res)
	}
	if got, _ := db.Policy(t.Context()); got.MinDoses != 3 {
		t.Fatal("an older policy version replaced a newer one")
	}
	// A revocation identical to one made here is not stored twice.
	own := &store.Revocation{Kind: store.RevokePass, Target: bytes.Repeat([]byte{9}, 12), Reason: "mine"}
	if err := db.CreateRevocation(t.Context(), own); err != nil {
		t.Fatal(err)
	}
	res, err = db.ApplyFeed(t.Context(), &store.Feed{Revocations: []*store.Revocation{{Seq: 8, Kind: own.Kind, Target: own.Target, Reason: "mine", At: t0}}})
	if err != nil || res.Revocations != 0 {
		t.Fatalf("echo of own revocation: %+v %v", res, err)
	}
	// The own key keeps its private half when the list names it; a
	// revocation of it is applied (a retired appliance stops issuing).
	pubOwn := &store.Key{KID: kid(2), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("own-public"), District: "xa", RevokedAt: t0}
	if _, err := db.ApplyFeed(t.Context(), &store.Feed{Keys: []*store.Key{pubOwn}, TrustHash: []byte("h2")}); err != nil {
		t.Fatal(err)
	}
	keys, _ := db.FindKeys(t.Context(), store.KeyFilter{HasPrivate: true})
	if len(keys) != 1 || !bytes.Equal(keys[0].Private, []byte("own-private")) || keys[0].RevokedAt.IsZero() {
		t.Fatalf("own key after the feed: %+v", keys)
	}

	// Hostile increments are refused whole: nothing of them is stored.
	before, _ := db.RevocationsSince(t.Context(), 0)
	for name, f := range map[string]*store.Feed{
		"key swapped under a known id": {Keys: []*store.Key{{KID: kid(3), Role: store.RoleIssuer, Alg: pass.AlgEdDSA, Public: []byte("evil"), District: "xa"}}},
		"revocation of unknown kind":   {Revocations: []*store.Revocation{{Seq: 20, Kind: 9, Target: []byte{1}, At: t0}}},
		"target of the wrong length":   {Revocations: []*store.Revocation{{Seq: 20, Kind: store.RevokePass, Target: []byte{1, 2}, At: t0}}},
		"subject without cutoff":       {Revocations: []*store.Revocation{{Seq: 20, Kind: store.RevokeSubject, Target: make([]byte, 16), At: t0}}},
		"pass with a cutoff":           {Revocations: []*store.Revocation{{Seq: 20, Kind: store.RevokePass, Target: make([]byte, 12), Before: t0, At: t0}}},
		"reason too long":              {Revocations: []*store.Revocation{{Seq: 20, Kind: store.RevokePass, Target: make([]byte, 12), Reason: strings.Repeat("x", 501), At: t0}}},
		"out of order": {Revocations: []*store.Revocation{
			{Seq: 30, Kind: store.RevokePass, Target: bytes.Repeat([]byte{3}, 12), At: t0},
			{Seq: 29, Kind: store.RevokePass, Target: bytes.Repeat([]byte{4}, 12), At: t0}}},
		"bad policy": {Policy: &store.Policy{Colors: nil}, PolicyVersion: 999},
	} {
		if _, err := db.ApplyFeed(t.Context(), f); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	after, _ := db.RevocationsSince(t.Context(), 0)
	if len(after) != len(before) {
		t.Fatalf("refused feeds stored %d revocations", len(after)-len(before))
	}
	if st, _ := db.FeedState(t.Context()); st.RevocationsSeq != 8 {
		t.Fatalf("refused feeds moved the revocation seq to %d", st.RevocationsSeq)
	}
}

func TestAppliances(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t)
	MustSetup(t, db)
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	for _, name := range []string{"", " x", "x ", "a\x00b", "tab\there", strings.Repeat("n", 65), "\xff\xfe"} {
		if _, err := db.AddAppliance(t.Context(), name, store.ApplianceGate, hash(name), t0.Add(time.Hour), "t"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	a, err := db.AddAppliance(t.Context(), "北门 gate", store.ApplianceOffice, hash("c1"), t0.Add(time.Hour), "t")
	if err != nil || a.Role != store.ApplianceOffice || a.Enrolled() {
		t.Fatalf("add: %+v %v", a, err)
	}
	if _, err := db.AddAppliance(t.Context(), "北门 gate", store.ApplianceGate, hash("c2"), t0.Add(time.Hour), "t"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := db.ApplianceByCode(t.Context(), hash("nope")); !errors.Is(err, store.ErrCodeInvalid) {
		t.Fatalf("unknown code: %v", err)
	}
	e := &store.Enrolment{CodeHash: hash("c1"), TokenHash: hash("tok"), BundleKey: make([]byte, 32), Actor: "t",
		Issuer: &store.Key{KID: kid(7), Alg: pass.AlgEdDSA, Public: []byte("app-issuer"), Cert: []byte("c"), District: "xa"}}
	if a, err = db.EnrolAppliance(t.Context(), e); err != nil || !a.Enrolled() || a.IssuerKID != kid(7) {
		t.Fatalf("enrol: %+v %v", a, err)
	}
	// The code is spent: a second enrolment with it fails.
	e2 := *e
	e2.TokenHash, e2.Issuer = hash("tok2"), nil
	if _, err := db.EnrolAppliance(t.Context(), &e2); !errors.Is(err, store.ErrCodeInvalid) {
		t.Fatalf("second enrolment: %v", err)
	}
	if got, err := db.ApplianceByToken(t.Context(), hash("tok")); err != nil || got.Name != "北门 gate" {
		t.Fatalf("by token: %+v %v", got, err)
	}
	// An expired code.
	if _, err := db.AddAppliance(t.Context(), "late", store.ApplianceGate, hash("c3"), t0, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplianceByCode(t.Context(), hash("c3")); !errors.Is(err, store.ErrCodeExpired) {
		t.Fatalf("expired code: %v", err)
	}
	// Retiring revokes the issuer key (key row and revocation) and voids
	// the token.
	if _, err := db.RetireAppliance(t.Context(), "北门 gate", "stolen", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplianceByToken(t.Context(), hash("tok")); !errors.Is(err, store.ErrRetired) {
		t.Fatalf("retired token: %v", err)
	}
	if _, err := db.RetireAppliance(t.Context(), "北门 gate", "", "t"); !errors.Is(err, store.ErrRetired) {
		t.Fatalf("retire twice: %v", err)
	}
	revs, _ := db.RevocationsSince(t.Context(), 0)
	if len(revs) != 1 || revs[0].Kind != store.RevokeIssuer || !bytes.Equal(revs[0].Target, []byte{0x40, 7, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("revocations after retirement: %+v", revs)
	}
	var acts []string
	_ = db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error { acts = append(acts, r.Action); return nil })
	for _, want := range []string{store.AuditApplianceAdded, store.AuditApplianceEnrolled, store.AuditApplianceRetired} {
		found := false
		for _, a := range acts {
			found = found || a == want
		}
		if !found {
			t.Errorf("audit trail lacks %q: %v", want, acts)
		}
	}
	// An enrolled appliance cannot act as a hub.
	app := mustEnrolled(t)
	if _, err := app.AddAppliance(t.Context(), "sub", store.ApplianceGate, hash("c9"), t0.Add(time.Hour), "t"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("hub add on an enrolled appliance: %v", err)
	}
}

// TestApplyFeed_KeepsBacklogWarn: a policy from the hub leaves the
// appliance's own backlog warning as its admin set it.
func TestApplyFeed_KeepsBacklogWarn(t *testing.T) {
	t.Parallel()
	db := mustEnrolled(t)
	p, err := db.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p.BacklogWarn = 42 * time.Minute
	if err := db.ChangePolicy(t.Context(), p, "admin"); err != nil {
		t.Fatal(err)
	}
	hub := store.DefaultPolicy()
	hub.BacklogWarn, hub.MinDoses = 0, 2
	if _, err := db.ApplyFeed(t.Context(), &store.Feed{Policy: &hub, PolicyVersion: 300}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.MinDoses != 2 || got.BacklogWarn != 42*time.Minute {
		t.Fatalf("after the hub's policy: doses %d, backlog warning %v; want 2 and 42m", got.MinDoses, got.BacklogWarn)
	}
}

// A hub's policy carries the district's zone; one from a hub too old to
// send a zone keeps the appliance's own.
func TestApplyFeed_TimeZone(t *testing.T) {
	db := mustEnrolled(t)
	for i, tc := range []struct{ sent, want string }{{"Asia/Urumqi", "Asia/Urumqi"}, {"", "Asia/Urumqi"}, {"UTC", "UTC"}} {
		p := store.DefaultPolicy()
		p.TimeZone = tc.sent
		if _, err := db.ApplyFeed(t.Context(), &store.Feed{Policy: &p, PolicyVersion: int64(300 + i)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Policy(t.Context()); got.TimeZone != tc.want {
			t.Fatalf("hub sent %q: zone %q, want %q", tc.sent, got.TimeZone, tc.want)
		}
	}
}
