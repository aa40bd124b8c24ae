package store_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// testCity is a city root trusted by a store.
type testCity struct {
	key    *pass.PrivateKey
	anchor []byte
}

func newTestCity(tb testing.TB) *testCity {
	tb.Helper()
	k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := pass.MarshalAnchor("xian", "", []*pass.PrivateKey{k})
	if err != nil {
		tb.Fatal(err)
	}
	return &testCity{key: k, anchor: a}
}

func (c *testCity) trustAt(tb testing.TB, db *store.DB) {
	tb.Helper()
	if _, _, err := db.TrustCityRoot(tb.Context(), c.anchor, pass.FormatFingerprint(c.key.Public().Fingerprint()), "cli:test"); err != nil {
		tb.Fatal(err)
	}
}

func (c *testCity) certify(tb testing.TB, district string, root *pass.PublicKey, nb, na time.Time) []byte {
	tb.Helper()
	b, err := pass.CertifyDistrictRoot(c.key, district, root, nb, na)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func newRoot(tb testing.TB) *pass.PublicKey {
	tb.Helper()
	k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k.Public()
}

// setupRealRoot stores district "xa" whose root has a real public key.
func setupRealRoot(tb testing.TB, db *store.DB) *pass.PublicKey {
	tb.Helper()
	k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	d := &store.District{ID: "xa", Name: "Xi'an Yanta", PseudonymKey: make([]byte, 32), Appliance: "desk-1"}
	root := &store.Key{KID: k.Public().KID, Alg: pass.AlgEdDSA, Public: k.Public().Raw, Private: []byte("root-private"), District: "xa"}
	issuer := &store.Key{KID: kid(2), Alg: pass.AlgEdDSA, Public: []byte("issuer-public"), Private: []byte("issuer-private"),
		Cert: []byte("cert"), District: "xa", NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour)}
	if err := db.Setup(tb.Context(), d, root, issuer, &store.User{Username: "admin", PasswordHash: testHash}); err != nil {
		tb.Fatal(err)
	}
	return k.Public()
}

func districtKeys(t *testing.T, db *store.DB, district string) []*store.Key {
	t.Helper()
	keys, err := db.FindKeys(t.Context(), store.KeyFilter{Role: store.RoleRoot})
	if err != nil {
		t.Fatal(err)
	}
	var out []*store.Key
	for _, k := range keys {
		if k.District == district {
			out = append(out, k)
		}
	}
	return out
}

func cityRefusals(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditCityRecordRefused {
			out = append(out, string(r.Actor)+" "+string(r.Detail))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Each hostile message is refused with an audit record naming its
// stream sequence and why; a good one is applied once; the position
// moves past all of them in the same transaction.
func TestApplyCityTrustMessages_Table(t *testing.T) {
	db := MustOpenDB(t)
	MustSetup(t, db)
	city, other := newTestCity(t), newTestCity(t)
	city.trustAt(t, db)
	nb, na := t0.Add(-time.Hour), t0.Add(365*24*time.Hour)
	rootB := newRoot(t)
	certB := city.certify(t, "db", rootB, nb, na)
	retireB, err := pass.RetireDistrictRoot(city.key, "db", rootB, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		m    store.CityTrustMessage
		why  string
	}{
		{"refused by the link", store.CityTrustMessage{SubjectDistrict: "db", Refused: "1500 bytes, over 1024"}, "1500 bytes"},
		{"garbage", store.CityTrustMessage{SubjectDistrict: "db", Record: []byte("\xd2\x84garbage")}, "malformed"},
		{"empty", store.CityTrustMessage{SubjectDistrict: "db"}, "malformed"},
		{"oversize", store.CityTrustMessage{SubjectDistrict: "db", Record: bytes.Repeat([]byte{0xd2}, pass.MaxCityRecordLen+1)}, "limit"},
		{"another district's subject", store.CityTrustMessage{SubjectDistrict: "dc", Record: certB}, "a certification of district"},
		{"a retirement on a trust subject", store.CityTrustMessage{SubjectDistrict: "db", Record: retireB}, "a retire record on district"},
		{"a certification on the retirements subject", store.CityTrustMessage{Retirement: true, Record: certB}, "a certify record on the city's retirements"},
		{"no district's subject", store.CityTrustMessage{SubjectDistrict: "\xff.>", Record: certB}, "not on a district's trust subject"},
		{"another city's", store.CityTrustMessage{SubjectDistrict: "db", Record: other.certify(t, "db", rootB, nb, na)}, "not by the city root"},
		{"not valid now", store.CityTrustMessage{SubjectDistrict: "db", Record: city.certify(t, "db", rootB, t0.Add(-48*time.Hour), t0.Add(-24*time.Hour))}, "not now"},
		{"this district's root not held", store.CityTrustMessage{SubjectDistrict: "xa", Record: city.certify(t, "xa", rootB, nb, na)}, "only by a rotation"},
	}
	for i, c := range cases {
		c.m.StreamSeq = uint64(i + 1)
		outs, err := db.ApplyCityTrustMessages(t.Context(), []store.CityTrustMessage{c.m})
		if err != nil || outs[0] != store.CityRefused {
			t.Fatalf("%s: %v %v, want refused", c.name, outs, err)
		}
		got := cityRefusals(t, db)
		if len(got) != i+1 || !strings.Contains(got[i], c.why) || !strings.Contains(got[i], `"stream_seq":`) {
			t.Fatalf("%s: audit %q, want %q", c.name, got, c.why)
		}
	}
	if keys := districtKeys(t, db, "db"); len(keys) != 0 {
		t.Fatalf("a refused record stored a key: %+v", keys)
	}
	n := uint64(len(cases))
	outs, err := db.ApplyCityTrustMessages(t.Context(), []store.CityTrustMessage{
		{StreamSeq: n + 1, SubjectDistrict: "db", Record: certB},
		{StreamSeq: n + 2, SubjectDistrict: "db", Record: certB}, // published again
		{StreamSeq: n, SubjectDistrict: "db", Record: certB},     // delivered again
	})
	if err != nil || outs[0] != store.CityStored || outs[1] != store.CityHeld || outs[2] != store.CityHeld {
		t.Fatalf("good record: %v %v", outs, err)
	}
	if keys := districtKeys(t, db, "db"); len(keys) != 1 || !keys[0].NotAfter.Equal(na) {
		t.Fatalf("B's root: %+v", keys)
	}
	if pos, err := db.CityTrustPosition(t.Context()); err != nil || pos != n+2 {
		t.Fatalf("position %d %v, want %d", pos, err, n+2)
	}
	outs, err = db.ApplyCityTrustMessages(t.Context(), []store.CityTrustMessage{
		{StreamSeq: n + 3, Retirement: true, Record: retireB},
		{StreamSeq: n + 4, SubjectDistrict: "db", Record: city.certify(t, "db", rootB, nb, na.Add(time.Hour))},
	})
	if err != nil || outs[0] != store.CityStored || outs[1] != store.CityRefused {
		t.Fatalf("retirement, then a certificate: %v %v", outs, err)
	}
	if got := cityRefusals(t, db); !strings.Contains(got[len(got)-1], "retired") || !strings.HasPrefix(got[len(got)-1], "city:db ") {
		t.Fatalf("last refusal: %q", got[len(got)-1])
	}
}

// Without a city root nothing is applied, refused or passed: the
// position stays, so the records are read once the root is trusted.
func TestApplyCityTrustMessages_NoCityRootHoldsOff(t *testing.T) {
	db := MustOpenDB(t)
	MustSetup(t, db)
	city := newTestCity(t)
	cert := city.certify(t, "db", newRoot(t), t0.Add(-time.Hour), t0.Add(time.Hour))
	m := []store.CityTrustMessage{{StreamSeq: 1, SubjectDistrict: "db", Record: cert}}
	if _, err := db.ApplyCityTrustMessages(t.Context(), m); !errors.Is(err, store.ErrNoCityRoot) {
		t.Fatalf("without a city root: %v", err)
	}
	if pos, _ := db.CityTrustPosition(t.Context()); pos != 0 || len(cityRefusals(t, db)) != 0 {
		t.Fatalf("position %d, refusals %q", pos, cityRefusals(t, db))
	}
	city.trustAt(t, db)
	if outs, err := db.ApplyCityTrustMessages(t.Context(), m); err != nil || outs[0] != store.CityStored {
		t.Fatalf("after the city root: %v %v", outs, err)
	}
}

// A hub publishes its own root's certificate until the stream
// acknowledged it, and all of them again when asked (its link starts);
// never another district's, nor a retirement.
func TestCityTrustToPublish(t *testing.T) {
	db := MustOpenDB(t)
	root := setupRealRoot(t, db)
	if _, list, err := db.CityTrustToPublish(t.Context(), true); err != nil || len(list) != 0 {
		t.Fatalf("without a city root: %d %v", len(list), err)
	}
	city := newTestCity(t)
	city.trustAt(t, db)
	own := city.certify(t, "xa", root, t0.Add(-time.Hour), t0.Add(time.Hour))
	if _, err := db.ImportCityRecord(t.Context(), own, "cli:test"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ImportCityRecord(t.Context(), city.certify(t, "db", newRoot(t), t0.Add(-time.Hour), t0.Add(time.Hour)), "cli:test"); err != nil {
		t.Fatal(err)
	}
	d, list, err := db.CityTrustToPublish(t.Context(), false)
	if err != nil || d != "xa" || len(list) != 1 || !bytes.Equal(list[0].Record, own) {
		t.Fatalf("to publish: %s %d %v", d, len(list), err)
	}
	if err := db.MarkCityTrustPublished(t.Context(), list[0].Digest); err != nil {
		t.Fatal(err)
	}
	if _, l, _ := db.CityTrustToPublish(t.Context(), false); len(l) != 0 {
		t.Fatalf("published again: %d", len(l))
	}
	if _, l, _ := db.CityTrustToPublish(t.Context(), true); len(l) != 1 {
		t.Fatalf("all: %d", len(l))
	}
	retire, _ := pass.RetireDistrictRoot(city.key, "xa", root, t0.Add(-time.Minute))
	if _, err := db.ImportCityRecord(t.Context(), retire, "cli:test"); err != nil {
		t.Fatal(err)
	}
	if _, l, _ := db.CityTrustToPublish(t.Context(), true); len(l) != 0 {
		t.Fatalf("a retired root's certificate to publish: %d", len(l))
	}
}

// Whatever arrives on the stream, applying it never fails and never
// stores a record that is not the city root's, of the kind its subject
// carries.
func FuzzApplyCityTrustMessages(f *testing.F) {
	city := newTestCity(f)
	root := newRoot(f)
	cert := city.certify(f, "db", root, t0.Add(-time.Hour), t0.Add(time.Hour))
	retire, _ := pass.RetireDistrictRoot(city.key, "db", root, t0)
	f.Add(cert, "db", false)
	f.Add(cert, "dc", false)
	f.Add(retire, "", true)
	f.Add(retire, "db", false)
	f.Add([]byte("\xd2\x84\x40\xa0\x40\x40"), "db", false)
	db := MustOpenDB(f)
	MustSetup(f, db)
	city.trustAt(f, db)
	var seq atomic.Uint64
	f.Fuzz(func(t *testing.T, b []byte, district string, retirement bool) {
		m := store.CityTrustMessage{StreamSeq: seq.Add(1), Retirement: retirement, SubjectDistrict: district, Record: b}
		outs, err := db.ApplyCityTrustMessages(t.Context(), []store.CityTrustMessage{m})
		if err != nil {
			t.Fatal(err)
		}
		if outs[0] != store.CityStored {
			return
		}
		r, err := pass.ParseCityRecord(b, city.key.Public())
		if err != nil || (r.Kind == pass.CityRetire) != retirement || (!retirement && r.District != district) {
			t.Fatalf("stored %x on %q (retirement %v): %v %+v", b, district, retirement, err, r)
		}
	})
}
