package districtsync

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passgate/check"
	"passgate/pass"
	"passgate/store"
)

// cityKey is a city root with its anchor file and fingerprint.
type cityKey struct {
	key    *pass.PrivateKey
	anchor []byte
	fp     string
}

func newCityKey(t *testing.T) *cityKey {
	t.Helper()
	k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pass.MarshalAnchor("xian", "西安", []*pass.PrivateKey{k})
	if err != nil {
		t.Fatal(err)
	}
	return &cityKey{key: k, anchor: a, fp: pass.FormatFingerprint(k.Public().Fingerprint())}
}

// certify makes c's certificate of db's district root, valid from nb to na.
func (c *cityKey) certify(t *testing.T, db *store.DB, nb, na time.Time) []byte {
	t.Helper()
	root := hubRoot(t, db)
	pk, err := pass.ParsePublicKey(root.Alg, root.Public)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pass.CertifyDistrictRoot(c.key, root.District, pk, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reasonAt checks text at db with a fresh checker.
func reasonAt(t *testing.T, db *store.DB, text string) check.Reason {
	t.Helper()
	chk, err := check.New(t.Context(), check.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer chk.Close()
	d, err := chk.Check(t.Context(), "gate-1", text)
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

// auditHas reports whether db holds an audit record of action whose
// subject is subject (any subject when empty) and whose detail contains
// detail.
func auditHas(t *testing.T, db *store.DB, action, subject, detail string) bool {
	t.Helper()
	found := false
	err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == action && (subject == "" || r.Subject == subject) && strings.Contains(string(r.Detail), detail) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func mustPull(t *testing.T, db *store.DB) *PullResult {
	t.Helper()
	res, err := PullOnce(t.Context(), db, clientOf(t, db))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// cityWorld is two districts, each a hub with one gate, under one city.
type cityWorld struct {
	city      *cityKey
	hA, hB    *enrHub
	gA, gB    *store.DB
	textA     string
	certA, cB []byte
}

func newCityWorld(t *testing.T) *cityWorld {
	t.Helper()
	w := &cityWorld{city: newCityKey(t), hA: newEnrHub(t), hB: newEnrHub(t)}
	w.gA, w.gB = enrolled(t, w.hA, "gate-a", false), enrolled(t, w.hB, "gate-b", false)
	w.textA = issueAtHub(t, w.hA.db)
	now := time.Now()
	w.certA = w.city.certify(t, w.hA.db, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	w.cB = w.city.certify(t, w.hB.db, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	return w
}

// join makes both hubs trust the city and import both certificates.
func (w *cityWorld) join(t *testing.T) {
	t.Helper()
	for _, h := range []*enrHub{w.hA, w.hB} {
		if _, added, err := h.db.TrustCityRoot(t.Context(), w.city.anchor, w.city.fp, "cli:test"); err != nil || !added {
			t.Fatalf("trust city: %v %v", added, err)
		}
		for _, c := range [][]byte{w.certA, w.cB} {
			if _, err := h.db.ImportCityRecord(t.Context(), c, "cli:test"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A pass of district A is unknown_issuer at district B's gate until
// both hubs hold the city's certificates and the gate synced; then it
// is allowed, unchanged. A retirement of A's root, carried the same way,
// makes it unknown_issuer again at both districts' gates.
func TestCity_PassCrossesDistricts(t *testing.T) {
	t.Parallel()
	w := newCityWorld(t)
	if r := reasonAt(t, w.gB, w.textA); r != check.ReasonUnknownIssuer {
		t.Fatalf("before the city: %s", r)
	}
	w.join(t)
	if r := reasonAt(t, w.gB, w.textA); r != check.ReasonUnknownIssuer {
		t.Fatalf("before the gate synced: %s", r)
	}
	res := mustPull(t, w.gB)
	if res.KeysAdded == 0 || res.RootsRefused != 0 {
		t.Fatalf("pull at gate B: %+v", res.FeedResult)
	}
	mustPull(t, w.gA)
	if r := reasonAt(t, w.gB, w.textA); r != check.ReasonOK {
		t.Fatalf("district A's pass at district B's gate: %s", r)
	}
	if r := reasonAt(t, w.gA, w.textA); r != check.ReasonOK {
		t.Fatalf("district A's pass at its own gate: %s", r)
	}
	if !auditHas(t, w.gB, store.AuditCityRootTrusted, "", "xian") || !auditHas(t, w.gB, store.AuditCityRecordApplied, hubRoot(t, w.hA.db).KID.String(), "certify") {
		t.Fatal("gate B did not audit what it took")
	}

	// A renewed certificate extends the trust of A's root at B's gate.
	rootA := hubRoot(t, w.hA.db)
	later := time.Now().Add(3 * 365 * 24 * time.Hour).Truncate(time.Second)
	renewed := w.city.certify(t, w.hA.db, time.Now().Add(-time.Hour), later)
	if _, err := w.hB.db.ImportCityRecord(t.Context(), renewed, "cli:test"); err != nil {
		t.Fatal(err)
	}
	if res := mustPull(t, w.gB); res.CertsUpdated != 1 {
		t.Fatalf("renewal at gate B: %+v", res.FeedResult)
	}
	if k := keyAt(t, w.gB, rootA.KID); !k.NotAfter.Equal(later) {
		t.Fatalf("renewed root trusted until %v, want %v", k.NotAfter, later)
	}

	pk, _ := pass.ParsePublicKey(rootA.Alg, rootA.Public)
	retire, err := pass.RetireDistrictRoot(w.city.key, rootA.District, pk, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*enrHub{w.hA, w.hB} {
		if _, err := h.db.ImportCityRecord(t.Context(), retire, "cli:test"); err != nil {
			t.Fatal(err)
		}
	}
	mustPull(t, w.gA)
	mustPull(t, w.gB)
	for name, db := range map[string]*store.DB{"gate B": w.gB, "gate A": w.gA, "hub B": w.hB.db} {
		if r := reasonAt(t, db, w.textA); r != check.ReasonUnknownIssuer {
			t.Errorf("retired root's pass at %s: %s", name, r)
		}
	}
	// A retirement is final: the certificate again is refused.
	if _, err := w.hB.db.ImportCityRecord(t.Context(), w.certA, "cli:test"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("certificate of a retired root: %v", err)
	}
	if !auditHas(t, w.hB.db, store.AuditCityRecordRefused, rootA.KID.String(), "retired") {
		t.Fatal("refusal not audited")
	}
}

// injectRoot puts a root of another district with cert into the hub's
// file behind its back, as a hub that went wrong would send it.
func injectRoot(t *testing.T, h *enrHub, k *pass.PublicKey, district string, cert []byte) {
	t.Helper()
	raw, err := sql.Open("sqlite", filepath.Join(h.dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var c any
	if cert != nil {
		c = cert
	}
	if _, err := raw.Exec(`INSERT INTO keys (kid, role, alg, public, cert, district, created_ms) VALUES (?, 'root', ?, ?, ?, ?, 1)`,
		k.KID[:], int64(k.Alg), k.Raw, c, district); err != nil {
		t.Fatal(err)
	}
}

// A gate that trusts the city root takes no other district's root from
// its hub's feed unless the city root certified it now: a certificate by
// another city key, an altered one, an expired one, none at all are each
// refused and audited, and the pass stays unknown_issuer.
func TestCity_FeedRefusesUncertifiedRoots(t *testing.T) {
	t.Parallel()
	w := newCityWorld(t)
	w.join(t)
	mustPull(t, w.gB)
	other := newCityKey(t)
	now := time.Now()
	cases := []struct {
		name string
		cert func(root *pass.PublicKey, district string) []byte
		why  string
	}{
		{"another city", func(root *pass.PublicKey, d string) []byte {
			b, _ := pass.CertifyDistrictRoot(other.key, d, root, now.Add(-time.Hour), now.Add(time.Hour))
			return b
		}, "not by the city root"},
		{"altered", func(root *pass.PublicKey, d string) []byte {
			b, _ := pass.CertifyDistrictRoot(w.city.key, d, root, now.Add(-time.Hour), now.Add(time.Hour))
			b[len(b)-1] ^= 1
			return b
		}, "does not verify"},
		{"expired", func(root *pass.PublicKey, d string) []byte {
			b, _ := pass.CertifyDistrictRoot(w.city.key, d, root, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
			return b
		}, "not now"},
		{"for another district", func(root *pass.PublicKey, d string) []byte {
			b, _ := pass.CertifyDistrictRoot(w.city.key, "DOTHER01", root, now.Add(-time.Hour), now.Add(time.Hour))
			return b
		}, "another root or district"},
		{"none", func(*pass.PublicKey, string) []byte { return nil }, "without a certificate"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			district := "DX" + string(rune('A'+i))
			injectRoot(t, w.hB, k.Public(), district, c.cert(k.Public(), district))
			res := mustPull(t, w.gB)
			// Each list the hub sends is judged whole: the earlier
			// cases' roots are refused again with this one.
			if res.RootsRefused != i+1 {
				t.Fatalf("refused %d roots, want %d", res.RootsRefused, i+1)
			}
			if holdsKey(t, w.gB, k.Public().KID) {
				t.Fatal("the gate holds the refused root")
			}
			if !auditHas(t, w.gB, store.AuditCityRecordRefused, k.Public().KID.String(), c.why) {
				t.Fatalf("no audit record saying %q", c.why)
			}
		})
	}
	// District A's own genuine root went through all along.
	if r := reasonAt(t, w.gB, w.textA); r != check.ReasonOK {
		t.Fatalf("genuine pass: %s", r)
	}
}

// Trust reaches a gate only through its hub's feed: a city root or city
// record given to a gate directly is refused and audited there, and a
// hub refuses records its city root did not sign and a second city root.
func TestCity_OnlyTheHubTakesCityTrust(t *testing.T) {
	t.Parallel()
	w := newCityWorld(t)
	if _, _, err := w.gB.TrustCityRoot(t.Context(), w.city.anchor, w.city.fp, "cli:test"); !errors.Is(err, store.ErrNotHub) {
		t.Fatalf("city root at a gate: %v", err)
	}
	if !auditHas(t, w.gB, store.AuditCityRootRefused, "", "only the district hub") {
		t.Fatal("city root at a gate: no audit")
	}
	if _, err := w.gB.ImportCityRecord(t.Context(), w.certA, "cli:test"); !errors.Is(err, store.ErrNotHub) {
		t.Fatalf("certificate at a gate: %v", err)
	}
	if !auditHas(t, w.gB, store.AuditCityRecordRefused, "", "only the district hub") {
		t.Fatal("certificate at a gate: no audit")
	}
	if _, err := w.gB.CityRoot(t.Context()); !errors.Is(err, store.ErrNoCityRoot) {
		t.Fatalf("gate holds a city root: %v", err)
	}

	// At the hub: no city root yet, then a wrong fingerprint.
	if _, err := w.hB.db.ImportCityRecord(t.Context(), w.certA, "cli:test"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("certificate without a city root: %v", err)
	}
	other := newCityKey(t)
	if _, _, err := w.hB.db.TrustCityRoot(t.Context(), w.city.anchor, other.fp, "cli:test"); !errors.Is(err, store.ErrFingerprintMismatch) {
		t.Fatalf("wrong fingerprint: %v", err)
	}
	w.join(t)
	if _, _, err := w.hB.db.TrustCityRoot(t.Context(), other.anchor, other.fp, "cli:test"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second city root: %v", err)
	}
	rootA := hubRoot(t, w.hA.db)
	pk, _ := pass.ParsePublicKey(rootA.Alg, rootA.Public)
	forged, _ := pass.CertifyDistrictRoot(other.key, rootA.District, pk, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if _, err := w.hB.db.ImportCityRecord(t.Context(), forged, "cli:test"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("certificate by another city: %v", err)
	}
	if !auditHas(t, w.hB.db, store.AuditCityRootRefused, "", "already") || !auditHas(t, w.hB.db, store.AuditCityRecordRefused, "", "not by the city root") {
		t.Fatal("hub refusals not audited")
	}

	// A hub whose city root changed behind its admin's back: the gate
	// keeps the one it holds.
	mustPull(t, w.gB)
	raw, err := sql.Open("sqlite", filepath.Join(w.hB.dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE city_root SET kid = ?, public = ?`, other.key.Public().KID[:], other.key.Public().Raw); err != nil {
		t.Fatal(err)
	}
	mustPull(t, w.gB)
	held, err := w.gB.CityRoot(t.Context())
	if err != nil || !bytes.Equal(held.Key.Raw, w.city.key.Public().Raw) {
		t.Fatalf("gate's city root: %v", err)
	}
	if !auditHas(t, w.gB, store.AuditCityRootRefused, other.key.Public().KID.String(), "not replaced") {
		t.Fatal("replaced city root: no audit")
	}
}

func holdsKey(t *testing.T, db *store.DB, kid pass.KeyID) bool {
	t.Helper()
	return findKey(t, db, kid) != nil
}

// keyAt is the key kid held at db; the test fails without one.
func keyAt(t *testing.T, db *store.DB, kid pass.KeyID) *store.Key {
	t.Helper()
	k := findKey(t, db, kid)
	if k == nil {
		t.Fatalf("key %s not held", kid)
	}
	return k
}

func findKey(t *testing.T, db *store.DB, kid pass.KeyID) *store.Key {
	t.Helper()
	keys, err := db.FindKeys(t.Context(), store.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.KID == kid {
			return k
		}
	}
	return nil
}

// An appliance enrolled by files after its hub joined the city takes
// the city root and the certified roots from its first bundle, judged
// like a pulled list; the enrolment answer alone does not plant them.
func TestCity_TrustByBundle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hub := newBundleHub(t, "District B")
	city := newCityKey(t)
	if _, _, err := hub.TrustCityRoot(ctx, city.anchor, city.fp, "cli:test"); err != nil {
		t.Fatal(err)
	}
	foreign, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pass.CertifyDistrictRoot(city.key, "DFOREIGN1", foreign.Public(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.ImportCityRecord(ctx, cert, "cli:test"); err != nil {
		t.Fatal(err)
	}
	app := enrolByFilesAs(t, hub, "gate-b", store.ApplianceGate)
	if holdsKey(t, app, foreign.Public().KID) {
		t.Fatal("the enrolment answer planted a certified root")
	}
	if _, err := importBytes(app, exportDownBytes(t, hub, "gate-b")); err != nil {
		t.Fatal(err)
	}
	if k := keyAt(t, app, foreign.Public().KID); k.District != "DFOREIGN1" || !bytes.Equal(k.Cert, cert) {
		t.Fatalf("certified root at the appliance: %+v", k)
	}
	if c, err := app.CityRoot(ctx); err != nil || c.Key.KID != city.key.Public().KID {
		t.Fatalf("city root at the appliance: %v", err)
	}
}

// A gate cannot hand its hub a district root: a push that carries a
// trust list with a city-certified root and a city root teaches the
// hub nothing (the push message has no place for trust; only the hub's
// admin imports it).
func TestCity_GatePushCarriesNoTrust(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newCityWorld(t)
	w.join(t)
	forged := newCityKey(t)
	k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pass.CertifyDistrictRoot(w.city.key, "DPUSHED1", k.Public(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keys := []*store.Key{{KID: k.Public().KID, Role: store.RoleRoot, Alg: k.Public().Alg, Public: k.Public().Raw, District: "DPUSHED1", Cert: cert}}
	trust := TrustList{Hash: TrustHash(keys), Keys: []TrustKey{TrustKeyToWire(keys[0])}}
	trust.City = &CityKey{City: "forged", Alg: int(forged.key.Public().Alg), Public: forged.key.Public().Raw}
	trust.Hash = trustHashCity(trust.Hash, trust.City)
	body := map[string]any{"now_ms": time.Now().UnixMilli(), "backlog": 0, "trust": trust, "city_record": cert}
	var resp PushResponse
	if err := clientOf(t, w.gB).Call(ctx, PathPush, body, &resp); err != nil {
		t.Fatalf("push: %v", err)
	}
	if holdsKey(t, w.hB.db, k.Public().KID) {
		t.Fatal("the hub took a root from a gate's push")
	}
	if c, err := w.hB.db.CityRoot(ctx); err != nil || c.Key.KID != w.city.key.Public().KID {
		t.Fatalf("the hub's city root: %v", err)
	}
}
