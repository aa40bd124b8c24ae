package citylink_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"passgate/check"
	"passgate/citylink"
	"passgate/district"
	"passgate/internal/natstest"
	"passgate/pass"
	"passgate/store"
)

// city is a city root key with its anchor file.
type city struct {
	key    *pass.PrivateKey
	anchor []byte
}

func newCity(t *testing.T) *city {
	t.Helper()
	k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pass.MarshalAnchor("xian", "西安", []*pass.PrivateKey{k})
	if err != nil {
		t.Fatal(err)
	}
	return &city{key: k, anchor: a}
}

// trust makes db trust the city root, as its admin does.
func (c *city) trust(t *testing.T, db *store.DB) {
	t.Helper()
	if _, _, err := db.TrustCityRoot(context.Background(), c.anchor, pass.FormatFingerprint(c.key.Public().Fingerprint()), "cli:test"); err != nil {
		t.Fatal(err)
	}
}

// ownRoot is db's district root.
func ownRoot(t *testing.T, db *store.DB) *pass.PublicKey {
	t.Helper()
	roots, err := db.FindKeys(context.Background(), store.KeyFilter{Role: store.RoleRoot, HasPrivate: true})
	if err != nil || len(roots) == 0 {
		t.Fatalf("root: %v", err)
	}
	pk, err := pass.ParsePublicKey(roots[0].Alg, roots[0].Public)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func (c *city) certify(t *testing.T, district string, root *pass.PublicKey) []byte {
	t.Helper()
	b, err := pass.CertifyDistrictRoot(c.key, district, root, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *city) retire(t *testing.T, district string, root *pass.PublicKey) []byte {
	t.Helper()
	b, err := pass.RetireDistrictRoot(c.key, district, root, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func issue(t *testing.T, db *store.DB) string {
	t.Helper()
	p, err := district.Issue(context.Background(), db, district.IssueRequest{Name: "张三明", IDNumber: "610113199001011230",
		TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	return p.Text
}

// reason checks text with a fresh checker on db, as a gate reading
// db's trust does.
func reason(t *testing.T, db *store.DB, text string) check.Reason {
	t.Helper()
	chk, err := check.New(context.Background(), check.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer chk.Close()
	d, err := chk.Check(context.Background(), "gate-1", text)
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

func waitReason(t *testing.T, db *store.DB, text string, want check.Reason, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := reason(t, db, text)
		if r == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pass checked %s after %v, want %s", r, limit, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trustRefusals are the details of the city record refusals audited in
// db that name a stream sequence: those of the city link.
func trustRefusals(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	err := db.FindAudit(context.Background(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditCityRecordRefused && strings.Contains(string(r.Detail), "stream_seq") {
			out = append(out, string(r.Actor)+" "+string(r.Detail))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// streamHas waits until the city stream holds n messages on subject.
func streamHas(t *testing.T, c *natstest.Cluster, subject string, n uint64) {
	t.Helper()
	s := c.Stream()
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
		if err == nil && info.State.Subjects[subject] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream holds %v on %s, want %d (%v)", info, subject, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func consoleConn(t *testing.T, c *natstest.Cluster) *nats.Conn {
	t.Helper()
	return c.Connect(c.ConsoleSeedFile(), nats.CustomInboxPrefix(citylink.ConsoleInboxPrefix))
}

// District A's certificate, imported at A's hub only, reaches B's hub
// over the city stream, and B's hub (so its gates) takes A's passes. B
// trusts the city root only after the certificate is on the stream: it
// read nothing before, refused nothing, and reads it once it trusts the
// root. A retirement the console publishes reaches both hubs: A's
// passes are refused at both.
func TestCityTrust_CertificateAndRetirementCrossTheCity(t *testing.T) {
	c, hA, hB := twoHubs(t)
	ctx := context.Background()
	cy := newCity(t)
	textA := issue(t, hA.db)
	rootA := ownRoot(t, hA.db)
	cy.trust(t, hA.db)
	certA := cy.certify(t, hA.id, rootA)
	if _, err := hA.db.ImportCityRecord(ctx, certA, "cli:test"); err != nil {
		t.Fatal(err)
	}
	streamHas(t, c, citylink.TrustSubject(hA.id), 1)
	time.Sleep(3 * time.Second) // B's link runs without a city root meanwhile
	if got := trustRefusals(t, hB.db); len(got) != 0 {
		t.Fatalf("B refused records before it trusted a city root: %q", got)
	}
	if r := reason(t, hB.db, textA); r != check.ReasonUnknownIssuer {
		t.Fatalf("A's pass at B before B trusts the city: %s", r)
	}
	cy.trust(t, hB.db)
	waitReason(t, hB.db, textA, check.ReasonOK, 15*time.Second)

	// Republished when A's link starts again: the stream stores it once.
	hA.halt()
	hA.start(t, c)
	time.Sleep(3 * time.Second)
	streamHas(t, c, citylink.TrustSubject(hA.id), 1)
	if info, _ := c.Stream().Info(ctx, jetstream.WithSubjectFilter(citylink.TrustSubject(hA.id))); info.State.Subjects[citylink.TrustSubject(hA.id)] != 1 {
		t.Fatalf("A's certificate on the stream %d times", info.State.Subjects[citylink.TrustSubject(hA.id)])
	}

	retire := cy.retire(t, hA.id, rootA)
	if _, _, err := citylink.PublishRetirement(ctx, consoleConn(t, c), cy.key.Public(), retire); err != nil {
		t.Fatal(err)
	}
	waitReason(t, hB.db, textA, check.ReasonUnknownIssuer, 15*time.Second)
	waitReason(t, hA.db, textA, check.ReasonUnknownIssuer, 15*time.Second)
	if got := trustRefusals(t, hB.db); len(got) != 0 {
		t.Fatalf("B refused: %q", got)
	}
	// A retired root's certificate is not published again.
	if _, list, err := hA.db.CityTrustToPublish(ctx, true); err != nil || len(list) != 0 {
		t.Fatalf("A would publish %d records after the retirement: %v", len(list), err)
	}
}

// Every hostile trust record is refused at the hub, audited with its
// stream sequence, and acknowledged: the consumer holds nothing back and
// a good record after them is applied.
func TestCityTrust_HostileRecordsRefused(t *testing.T) {
	c, hA, hB := twoHubs(t)
	ctx := context.Background()
	cy, other := newCity(t), newCity(t)
	cy.trust(t, hA.db)
	cy.trust(t, hB.db)
	rootA, rootB := ownRoot(t, hA.db), ownRoot(t, hB.db)

	jsA, err := jetstream.New(c.Connect(c.SeedFile(hA.id), nats.CustomInboxPrefix(citylink.InboxPrefix(hA.id))))
	if err != nil {
		t.Fatal(err)
	}
	onA := citylink.TrustSubject(hA.id)
	hostile := [][]byte{
		cy.certify(t, hB.id, rootB),            // another district's root on A's subject
		cy.retire(t, hA.id, rootA),             // a retirement on a trust subject
		other.certify(t, hA.id, rootA),         // not the city root's
		[]byte("\xd2\x84 not a record"),        // garbage
		bytes.Repeat([]byte{0xd2}, 1500),       // over the record bound, under the stream's
		cy.certify(t, "DNOSUCH1", rootA)[:100], // cut short
	}
	for _, b := range hostile {
		if _, err := jsA.Publish(ctx, onA, b); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	// A certification on the retirements subject, by the console.
	js, err := jetstream.New(consoleConn(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, citylink.RetireSubject, cy.certify(t, hA.id, rootA)); err != nil {
		t.Fatal(err)
	}
	// The console's command checks before it sends.
	if _, _, err := citylink.PublishRetirement(ctx, consoleConn(t, c), cy.key.Public(), cy.certify(t, hA.id, rootA)); err == nil {
		t.Fatal("PublishRetirement sent a certification")
	}
	if _, _, err := citylink.PublishRetirement(ctx, consoleConn(t, c), cy.key.Public(), other.retire(t, hA.id, rootA)); err == nil {
		t.Fatal("PublishRetirement sent another city's retirement")
	}

	deadline := time.Now().Add(20 * time.Second)
	for len(trustRefusals(t, hB.db)) < len(hostile)+1 {
		if time.Now().After(deadline) {
			t.Fatalf("refusals at B: %q, want %d", trustRefusals(t, hB.db), len(hostile)+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	whys := strings.Join(trustRefusals(t, hB.db), "\n")
	for _, want := range []string{"a certification of district", "a retire record on district", "not by the city root",
		"malformed", "1500 bytes", "a certify record on the city's retirements subject", "city:" + hA.id + " "} {
		if !strings.Contains(whys, want) {
			t.Errorf("no refusal saying %q in:\n%s", want, whys)
		}
	}
	// Neither B's root is touched nor A's retired: A's pass still holds at A.
	if r := reason(t, hA.db, issue(t, hA.db)); r != check.ReasonOK {
		t.Fatalf("A's pass at A: %s", r)
	}
	cons, err := jetstream.New(c.Connect(c.AdminSeedFile()))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consumer(ctx, citylink.StreamName, citylink.TrustConsumerName(hB.id))
	if err != nil {
		t.Fatal(err)
	}
	// Acknowledged: none waits to be delivered again.
	deadline = time.Now().Add(10 * time.Second)
	for {
		info, err := cc.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumRedelivered == 0 && info.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's trust consumer: pending %d, awaiting ack %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n := len(trustRefusals(t, hB.db))
	// A good record after them is applied.
	textA := issue(t, hA.db)
	if _, err := hA.db.ImportCityRecord(ctx, cy.certify(t, hA.id, rootA), "cli:test"); err != nil {
		t.Fatal(err)
	}
	waitReason(t, hB.db, textA, check.ReasonOK, 15*time.Second)
	if got := len(trustRefusals(t, hB.db)); got != n {
		t.Fatalf("refusals %d, then %d: redelivered?", n, got)
	}
}

// A hub's store restored from a backup older than the city's records
// gets them again from the stream: its position in the store is older
// than its consumer's on the cluster.
func TestCityTrust_RestoredHubReadsAgain(t *testing.T) {
	c, hA, hB := twoHubs(t)
	ctx := context.Background()
	cy := newCity(t)
	cy.trust(t, hA.db)
	cy.trust(t, hB.db)
	textA := issue(t, hA.db)
	backup := filepath.Join(t.TempDir(), "b.db")
	if err := hB.db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if _, err := hA.db.ImportCityRecord(ctx, cy.certify(t, hA.id, ownRoot(t, hA.db)), "cli:test"); err != nil {
		t.Fatal(err)
	}
	waitReason(t, hB.db, textA, check.ReasonOK, 15*time.Second)

	hB.halt()
	if err := hB.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(hB.dir, store.FileName+suffix))
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hB.dir, store.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, hB.dir)
	if err != nil {
		t.Fatal(err)
	}
	hB.db = db
	t.Cleanup(func() { hB.halt(); db.Close() })
	if r := reason(t, hB.db, textA); r != check.ReasonUnknownIssuer {
		t.Fatalf("restored B before its link runs: %s", r)
	}
	hB.start(t, c)
	waitReason(t, hB.db, textA, check.ReasonOK, 15*time.Second)
}

// Only "city.<district>.trust" names a district's trust subject.
func TestTrustSubjectDistrict(t *testing.T) {
	if d, err := citylink.TrustSubjectDistrict(citylink.TrustSubject("Dab-1")); err != nil || d != "Dab-1" {
		t.Fatalf("own subject: %q %v", d, err)
	}
	for _, subj := range []string{"", "city.trust", "city..trust", "city.a.b.trust", "city.Dab-1.revocations", citylink.RetireSubject,
		"city.*.trust", "city.>.trust", "citytrust.Dab-1", "city.Dab-1.trust.x", "city.\xff.trust"} {
		if d, err := citylink.TrustSubjectDistrict(subj); err == nil {
			t.Errorf("%q gave district %q", subj, d)
		}
	}
}

func FuzzTrustSubjectDistrict(f *testing.F) {
	f.Add("city.Dab-1.trust")
	f.Add("city.a.b.trust")
	f.Fuzz(func(t *testing.T, subj string) {
		d, err := citylink.TrustSubjectDistrict(subj)
		if err == nil && (citylink.TrustSubject(d) != subj || pass.CheckIdent("district", d) != nil) {
			t.Fatalf("%q gave %q", subj, d)
		}
	})
}
