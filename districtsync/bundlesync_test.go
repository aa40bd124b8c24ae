package districtsync

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// bundleWorld is a hub and one appliance enrolled with it by files: the
// appliance's hub URL points nowhere, so bundles are the only way
// between them.
type bundleWorld struct {
	hub, app *store.DB
	appName  string
}

func bundleTestCA(tb testing.TB) []byte {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hub test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func openBundleDB(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	db, err := store.Open(tb.Context(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newBundleHub makes a hub data directory.
func newBundleHub(tb testing.TB, name string) *store.DB {
	tb.Helper()
	db := openBundleDB(tb, tb.TempDir())
	if _, err := district.EnsureSetup(tb.Context(), db, district.SetupOptions{Name: name, Appliance: "hub", AdminPassword: "correct horse battery"}); err != nil {
		tb.Fatal(err)
	}
	return db
}

// enrolByFiles enrols a new appliance with hubDB the way the offline
// path does: request, answer, completion, no network.
func enrolByFiles(tb testing.TB, hubDB *store.DB, name string) *store.DB {
	tb.Helper()
	return enrolByFilesAs(tb, hubDB, name, store.ApplianceOffice)
}

// enrolByFilesAs is enrolByFiles with the role the hub's admin gives.
func enrolByFilesAs(tb testing.TB, hubDB *store.DB, name string, role store.ApplianceRole) *store.DB {
	tb.Helper()
	ctx := tb.Context()
	ca := bundleTestCA(tb)
	cert, _ := x509.ParseCertificate(ca)
	code, err := NewCode(SPKIPin(cert))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := hubDB.AddAppliance(ctx, name, role, code.Hash(), time.Now().Add(time.Hour), "test"); err != nil {
		tb.Fatal(err)
	}
	p, err := NewPending(code, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := EnrolAppliance(ctx, hubDB, &p.Request, ca, "test", "file test")
	if err != nil {
		tb.Fatal(err)
	}
	app := openBundleDB(tb, tb.TempDir())
	// Port 1 on loopback: nothing listens, the network path is dead.
	if _, err := Complete(ctx, app, "https://127.0.0.1:1", p, resp, "correct horse battery"); err != nil {
		tb.Fatal(err)
	}
	return app
}

func newBundleWorld(t *testing.T) *bundleWorld {
	h := newBundleHub(t, "Test district")
	return &bundleWorld{hub: h, app: enrolByFiles(t, h, "gate-a"), appName: "gate-a"}
}

func exportUpBytes(t *testing.T, db *store.DB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ExportUp(t.Context(), db, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func exportDownBytes(t *testing.T, db *store.DB, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ExportDown(t.Context(), db, name, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func importBytes(db *store.DB, raw []byte) (*ImportResult, error) {
	return ImportBundle(context.Background(), db, bytes.NewReader(raw))
}

// hubState is everything at the hub a bundle import could change.
func hubState(t *testing.T, db *store.DB, name string) string {
	t.Helper()
	ctx := t.Context()
	scans, _, err := db.DistrictScans(ctx, name, 0, store.MaxScanLimit)
	if err != nil {
		t.Fatal(err)
	}
	events, _, err := db.DistrictEvents(ctx, name, 0, store.MaxScanLimit)
	if err != nil {
		t.Fatal(err)
	}
	revs, err := db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := db.ApplianceByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("scans=%d events=%d revocations=%d in=%d backlog=%d revseq=%d",
		len(scans), len(events), len(revs), a.BundleInSeq, a.Backlog, a.RevocSeq)
}

// appState is everything at the appliance a bundle import could change.
func appState(t *testing.T, db *store.DB) string {
	t.Helper()
	ctx := t.Context()
	revs, err := db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := db.FindKeys(ctx, store.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := db.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := db.FeedState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acked, _, err := db.ScansAcked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	backlog, err := db.SyncBacklog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("revocations=%d keys=%d paper=%v policy=%d revseq=%d acked=%d backlog=%d",
		len(revs), len(keys), pol.AcceptPaper, st.PolicyVersion, st.RevocationsSeq, acked, backlog)
}

// TestBundle_RoundTrip: an appliance with no network and its hub
// converge by files alone: its scans and status change reach the hub
// exactly once, the hub's revocation and policy change reach it and its
// checker enforces them, and every bundle imports once.
// fileSync is the state TestBundle_FileSync carries from one step to
// the next: the two databases, the appliance's checker, its passes and
// the scans it logged.
type fileSync struct {
	ctx          context.Context
	w            *bundleWorld
	chk          *check.Checker
	phone, paper *district.Issued
	local        []*store.Scan
}

func TestBundle_FileSync(t *testing.T) {
	t.Parallel()
	fs := fileSyncAtAppliance(t, t.Context(), newBundleWorld(t))
	fs.upToHub(t)
	fs.changeAtHub(t)
	fs.downToAppliance(t)
}

// fileSyncAtAppliance makes, at the appliance, two passes, checks of
// both, a status change.
func fileSyncAtAppliance(t *testing.T, ctx context.Context, w *bundleWorld) *fileSync {
	phone, err := district.Issue(ctx, w.app, district.IssueRequest{Name: "张三明", IDNumber: "610113199001011230",
		TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	paper, err := district.Issue(ctx, w.app, district.IssueRequest{Name: "李四", IDNumber: "P1234567",
		TestedAt: time.Now().Add(-time.Hour), Doses: 2, Kind: pass.Paper, Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	chk, err := check.New(ctx, check.Config{DB: w.app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	for _, text := range []string{phone.Text, paper.Text, "garbage"} {
		if _, err := chk.Check(ctx, "gate-1", text); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := chk.Check(ctx, "gate-1", paper.Text); !d.Allowed() {
		t.Fatalf("paper pass before the hub's policy: %s %s", d.Decision, d.Reason)
	}
	if _, err := district.Issue(ctx, w.app, district.IssueRequest{Name: "王五", IDNumber: "P7654321", Actor: "desk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := district.SetStatus(ctx, w.app, "P7654321", pass.Yellow, "contact", "desk"); err != nil {
		t.Fatal(err)
	}
	local, err := w.app.FindScans(ctx, store.ScanFilter{Limit: store.MaxScanLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != 4 {
		t.Fatalf("%d scans at the appliance, want 4", len(local))
	}
	return &fileSync{ctx: ctx, w: w, chk: chk, phone: phone, paper: paper, local: local}
}

// upToHub carries the appliance's records to the hub in bundles, twice
// and overlapping.
func (fs *fileSync) upToHub(t *testing.T) {
	ctx, w, chk, phone, local := fs.ctx, fs.w, fs.chk, fs.phone, fs.local
	// Appliance → hub.
	up1 := exportUpBytes(t, w.app)
	res, err := importBytes(w.hub, up1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored == 0 || res.Skipped != 0 {
		t.Fatalf("first import stored %d, skipped %d", res.Stored, res.Skipped)
	}
	held, _, err := w.hub.DistrictScans(ctx, w.appName, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != len(local) {
		t.Fatalf("hub holds %d scans, appliance logged %d", len(held), len(local))
	}
	events, _, err := w.hub.DistrictEvents(ctx, w.appName, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	if kinds["status"] == 0 || kinds["pass"] != 3 {
		t.Fatalf("hub events by kind: %v", kinds)
	}
	// The status change made a subject revocation at the appliance: it
	// joins the hub's list, for the other appliances.
	hubRevs, _ := w.hub.RevocationsSince(ctx, 0)
	if len(hubRevs) != 1 || hubRevs[0].Kind != store.RevokeSubject {
		t.Fatalf("hub revocations after import: %d", len(hubRevs))
	}

	// Twice: refused, nothing changes.
	before := hubState(t, w.hub, w.appName)
	if _, err := importBytes(w.hub, up1); !errors.Is(err, store.ErrBundleReplayed) {
		t.Fatalf("second import: %v", err)
	}
	if after := hubState(t, w.hub, w.appName); after != before {
		t.Fatalf("second import changed the hub:\n%s\n%s", before, after)
	}

	// More scans, and a second bundle before any answer came back: it
	// repeats the first one's records, which the hub skips.
	if _, err := chk.Check(ctx, "gate-1", phone.Text); err != nil {
		t.Fatal(err)
	}
	up2 := exportUpBytes(t, w.app)
	res, err = importBytes(w.hub, up2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 1 || res.Skipped == 0 {
		t.Fatalf("overlapping bundle stored %d, skipped %d; want 1 stored", res.Stored, res.Skipped)
	}
	checkExactlyOnce(t, w, 5)
}

// changeAtHub revokes the phone pass and refuses paper passes at the hub.
func (fs *fileSync) changeAtHub(t *testing.T) {
	ctx, w, phone := fs.ctx, fs.w, fs.phone
	// At the hub: revoke the phone pass, refuse paper passes.
	if err := w.hub.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: phone.Claims.ID[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	pol, err := w.hub.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pol.AcceptPaper = false
	w.hub.Now = func() time.Time { return time.Now().Add(time.Second) } // a newer policy version than at enrolment
	if err := w.hub.ChangePolicy(ctx, pol, "admin"); err != nil {
		t.Fatal(err)
	}
}

// downToAppliance carries the hub's answer back and checks that the
// appliance applies it once.
func (fs *fileSync) downToAppliance(t *testing.T) {
	ctx, w, chk, phone, paper := fs.ctx, fs.w, fs.chk, fs.phone, fs.paper
	// Hub → appliance.
	down1 := exportDownBytes(t, w.hub, w.appName)
	dres, err := importBytes(w.app, down1)
	if err != nil {
		t.Fatal(err)
	}
	if !dres.Feed.PolicyChanged || dres.Feed.Revocations == 0 {
		t.Fatalf("down import: %+v", dres.Feed)
	}
	// The hub's marks acknowledge every record it was sent. What waits
	// is the one record the import itself made: the audit record of the
	// policy change.
	latest, err := w.app.FindScans(ctx, store.ScanFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if acked, _, _ := w.app.ScansAcked(ctx); acked != latest[0].ID || dres.ScansAcked != acked {
		t.Fatalf("scans acknowledged after the hub's answer: %d (result %d), want %d", acked, dres.ScansAcked, latest[0].ID)
	}
	if backlog, _ := w.app.SyncBacklog(ctx); backlog != 1 {
		t.Fatalf("backlog after the hub's answer: %d, want 1", backlog)
	}
	if err := chk.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := chk.Check(ctx, "gate-1", phone.Text); d.Allowed() || d.Reason != check.ReasonRevoked {
		t.Fatalf("pass revoked at the hub: %s %s", d.Decision, d.Reason)
	}
	if d, _ := chk.Check(ctx, "gate-1", paper.Text); d.Allowed() || d.Reason != check.ReasonPaperRefused {
		t.Fatalf("paper pass under the hub's policy: %s %s", d.Decision, d.Reason)
	}

	// Twice: refused, nothing changes.
	before := appState(t, w.app)
	if _, err := importBytes(w.app, down1); !errors.Is(err, store.ErrBundleReplayed) {
		t.Fatalf("second import: %v", err)
	}
	if after := appState(t, w.app); after != before {
		t.Fatalf("second import changed the appliance:\n%s\n%s", before, after)
	}

	// The next bundle up carries only what came after the answer: the
	// two denied checks.
	up3 := exportUpBytes(t, w.app)
	res, err := importBytes(w.hub, up3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 || res.Stored < 2 {
		t.Fatalf("bundle after the answer: stored %d, skipped %d", res.Stored, res.Skipped)
	}
	checkExactlyOnce(t, w, 7)
}

// checkExactlyOnce: the hub holds each of the appliance's scans once,
// in its order, and no others.
func checkExactlyOnce(t *testing.T, w *bundleWorld, want int) {
	t.Helper()
	ctx := t.Context()
	local, err := w.app.FindScans(ctx, store.ScanFilter{Limit: store.MaxScanLimit})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(local) // FindScans lists the newest first
	held, _, err := w.hub.DistrictScans(ctx, w.appName, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != want || len(held) != want {
		t.Fatalf("appliance has %d scans, hub %d; want %d", len(local), len(held), want)
	}
	events, _, err := w.hub.DistrictEvents(ctx, w.appName, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		if e.Seq != events[0].Seq+int64(i) {
			t.Fatalf("hub event %d has appliance seq %d after %d: duplicated or missing", i, e.Seq, events[i-1].Seq)
		}
	}
	for i := range held {
		if held[i].ID != local[i].ID || held[i].Reason != local[i].Reason || !held[i].At.Equal(local[i].At) {
			t.Fatalf("hub scan %d is appliance scan %d (%s), want %d (%s)", i, held[i].ID, held[i].Reason, local[i].ID, local[i].Reason)
		}
	}
}

// refusedBundle is a bundle an import must refuse, changing nothing.
type refusedBundle struct {
	name string
	to   *store.DB
	raw  []byte
	want error
}

// genuineBundles logs three checks at the appliance and returns a
// bundle up and one down, both genuine.
func genuineBundles(t *testing.T, ctx context.Context, w *bundleWorld) (up, down []byte) {
	chk, err := check.New(ctx, check.Config{DB: w.app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	for range 3 {
		if _, err := chk.Check(ctx, "gate-1", "garbage"); err != nil {
			t.Fatal(err)
		}
	}
	up = exportUpBytes(t, w.app)
	down = exportDownBytes(t, w.hub, w.appName)
	return up, down
}

// hostileBundles builds bundles from other districts, retired, unknown
// or impersonated appliances, damaged copies of up and down, and
// bundles gate-a signed whose records do not fit.
func hostileBundles(t *testing.T, ctx context.Context, w *bundleWorld, up, down []byte) []refusedBundle {
	// Another district, with an appliance of the same name.
	other := newBundleHub(t, "Other district")
	otherApp := enrolByFiles(t, other, "gate-a")
	foreignUp := exportUpBytes(t, otherApp)
	foreignDown := exportDownBytes(t, other, "gate-a")

	// An appliance of this district the hub retired (its final bundle
	// is taken: TestBundle_RetiredFinal), and one it never heard of: a
	// name it has no record of, signed by some key.
	enrolByFiles(t, w.hub, "gate-old")
	if _, err := w.hub.RetireAppliance(ctx, "gate-old", "replaced", "admin"); err != nil {
		t.Fatal(err)
	}
	d, _ := w.hub.District(ctx)
	_, ghostSigner := testBundleKey(t, pass.AlgEdDSA)
	ghostUp := encodeTestBundle(t, BundleHeader{Direction: DirectionUp, District: d.ID, Appliance: "gate-ghost", Seq: 1, Created: 1},
		&UpPayload{}, ghostSigner)
	// A bundle of gate-a signed by another key (say, a stolen name).
	impostorUp := encodeTestBundle(t, BundleHeader{Direction: DirectionUp, District: d.ID, Appliance: w.appName, Seq: 50, Created: 1},
		&UpPayload{}, ghostSigner)
	// A down bundle for another appliance of this district.
	enrolByFiles(t, w.hub, "gate-b")
	downForB := exportDownBytes(t, w.hub, "gate-b")

	// Bundles gate-a really signed (its key stolen, or a bug) whose
	// records do not fit: refused as a whole.
	sh, err := w.app.SyncHubInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appKey, err := ParseBundleKey(sh.BundleKey)
	if err != nil {
		t.Fatal(err)
	}
	appSigner, err := NewBundleSigner(appKey)
	if err != nil {
		t.Fatal(err)
	}
	signedUp := func(seq int64, batch *ScanBatch) []byte {
		return encodeTestBundle(t, BundleHeader{Direction: DirectionUp, District: d.ID, Appliance: w.appName, Seq: seq, Created: 1},
			&UpPayload{Pushes: []PushRequest{{Scans: batch}}}, appSigner)
	}
	epoch := bytes.Repeat([]byte{9}, 16)
	badRun := signedUp(90, &ScanBatch{Epoch: epoch, From: 1, Records: []ScanRecord{
		{Seq: 1, At: 1, Source: "g", Decision: "allow", Reason: "ok"}, {Seq: 3, At: 1, Source: "g", Decision: "allow", Reason: "ok"}}})
	gapRun := signedUp(91, &ScanBatch{Epoch: epoch, From: 1, Records: []ScanRecord{{Seq: 50, At: 1, Source: "g", Decision: "allow", Reason: "ok"}}})
	badDecision := signedUp(92, &ScanBatch{Epoch: epoch, From: 1, Records: []ScanRecord{{Seq: 1, At: 1, Source: "g", Decision: "maybe", Reason: "ok"}}})

	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	return []refusedBundle{
		{"UpTampered", w.hub, flip(up, len(up)-100), ErrBundleSignature},
		{"UpTamperedSignature", w.hub, flip(up, len(up)-1), ErrBundleSignature},
		{"UpTruncated", w.hub, up[:len(up)-1], ErrBundleTruncated},
		{"UpTruncatedHalf", w.hub, up[:len(up)/2], ErrBundleTruncated},
		{"UpForeignDistrict", w.hub, foreignUp, store.ErrBundleForeign},
		{"UpUnknownAppliance", w.hub, ghostUp, store.ErrBundleForeign},
		{"UpImpostor", w.hub, impostorUp, ErrBundleSignature},
		{"UpAtAppliance", w.app, up, ErrBundleDirection},
		{"DownTampered", w.app, flip(down, len(down)-100), ErrBundleSignature},
		{"DownTruncated", w.app, down[:40], ErrBundleTruncated},
		{"DownForeignDistrict", w.app, foreignDown, store.ErrBundleForeign},
		{"DownForOtherAppliance", w.app, downForB, store.ErrBundleForeign},
		{"DownAtHub", w.hub, down, ErrBundleDirection},
		{"NotABundle", w.app, []byte("PK\x03\x04 a zip file"), ErrBundleMalformed},
		{"SignedNonConsecutive", w.hub, badRun, ErrBundleMalformed},
		{"SignedBadDecision", w.hub, badDecision, ErrBundleMalformed},
		{"SignedGap", w.hub, gapRun, new(store.GapError)},
	}
}

// TestBundle_Refused: damaged, replayed and foreign bundles are refused
// with the error that says why, and change nothing on either side.
func TestBundle_Refused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	up, down := genuineBundles(t, ctx, w)
	for _, tc := range hostileBundles(t, ctx, w, up, down) {
		t.Run(tc.name, func(t *testing.T) {
			hubBefore, appBefore := hubState(t, w.hub, w.appName), appState(t, w.app)
			_, err := importBytes(tc.to, tc.raw)
			var gap *store.GapError
			if _, wantGap := tc.want.(*store.GapError); wantGap && !errors.As(err, &gap) || !wantGap && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if after := hubState(t, w.hub, w.appName); after != hubBefore {
				t.Fatalf("hub changed:\n%s\n%s", hubBefore, after)
			}
			if after := appState(t, w.app); after != appBefore {
				t.Fatalf("appliance changed:\n%s\n%s", appBefore, after)
			}
		})
	}

	// The genuine bundles still import after all that, once each.
	if _, err := importBytes(w.hub, up); err != nil {
		t.Fatal(err)
	}
	if _, err := importBytes(w.app, down); err != nil {
		t.Fatal(err)
	}
	// An older bundle arriving after a newer one is a replay too.
	down2 := exportDownBytes(t, w.hub, w.appName)
	down3 := exportDownBytes(t, w.hub, w.appName)
	if _, err := importBytes(w.app, down3); err != nil {
		t.Fatal(err)
	}
	if _, err := importBytes(w.app, down2); !errors.Is(err, store.ErrBundleReplayed) {
		t.Fatalf("older bundle after a newer one: %v", err)
	}
	// A retired appliance gets nothing more.
	if _, err := ExportDown(ctx, w.hub, "gate-old", &bytes.Buffer{}); !errors.Is(err, store.ErrRetired) {
		t.Fatalf("export for a retired appliance: %v", err)
	}
	if _, err := ExportDown(ctx, w.hub, "gate-nobody", &bytes.Buffer{}); !errors.Is(err, store.ErrBundleForeign) {
		t.Fatalf("export for an unknown appliance: %v", err)
	}
}

// logBundleScans logs n scans at db through the group-commit writer,
// like a gate's: passes of a few thousand people, each checked a few
// times, signed by a handful of issuer keys, most allowed.
func logBundleScans(tb testing.TB, db *store.DB, n int) {
	tb.Helper()
	ctx := tb.Context()
	// As many writers as a busy site's gates: each group commit (one
	// fsync) then carries more scans, and a large log is ready in about
	// half the time it takes with fewer.
	const workers = 256
	people := make([]struct {
		id  pass.ID
		sub pass.Subject
		kid pass.KeyID
	}, max(n/4, 1))
	for i := range people {
		rand.Read(people[i].id[:])
		rand.Read(people[i].sub[:])
		people[i].kid[0] = byte(i % 5)
	}
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var err error
			for i := w; i < n && err == nil; i += workers {
				p := people[(i*7919)%len(people)]
				s := &store.Scan{Source: "gate-1", Decision: "allow", Reason: "ok", PassID: p.id, Subject: p.sub, KID: p.kid}
				if i%10 == 0 {
					s.Decision, s.Reason = "deny", "status_yellow"
				}
				err = db.LogScan(ctx, s)
			}
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			tb.Fatal(err)
		}
	}
}

// TestBundle_Epochs: records of several epochs (the appliance restarted
// between them) travel in one bundle, and the hub's answer acknowledges
// all of them.
func TestBundle_Epochs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	dir := filepath.Dir(w.app.Path())
	for i := range 3 {
		logBundleScans(t, w.app, 10+i)
		w.app.Close()
		w.app = openBundleDB(t, dir)
		if err := w.app.StartSyncing(ctx); err != nil { // a new epoch
			t.Fatal(err)
		}
	}
	epochs, err := w.app.SyncEpochs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) < 3 {
		t.Fatalf("%d epochs", len(epochs))
	}
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, w, 33)
	res, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName))
	if err != nil {
		t.Fatal(err)
	}
	if res.ScansAcked != 33 || res.Ahead {
		t.Fatalf("acknowledged %d scans (ahead %v), want 33", res.ScansAcked, res.Ahead)
	}
	// Nothing of the first bundle goes again.
	logBundleScans(t, w.app, 2)
	r, err := importBytes(w.hub, exportUpBytes(t, w.app))
	if err != nil {
		t.Fatal(err)
	}
	if r.Stored != 2 || r.Skipped != 0 {
		t.Fatalf("third bundle stored %d, skipped %d; want 2, 0", r.Stored, r.Skipped)
	}
	checkExactlyOnce(t, w, 35)
}

// TestBundle_RestoredAppliance: an appliance restored from a backup
// older than what the hub holds learns from the hub's answer that the hub
// is ahead, and its records written since the restore still reach the
// hub (in a new epoch) without being taken for ones the hub holds.
func TestBundle_RestoredAppliance(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	dir := filepath.Dir(w.app.Path())
	logBundleScans(t, w.app, 5)
	w.app.Close()
	backup := t.TempDir()
	copyBundleDir(t, dir, backup)
	w.app = openBundleDB(t, dir)
	logBundleScans(t, w.app, 5)
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); err != nil {
		t.Fatal(err)
	}
	w.app.Close()

	// Restored: scans 6 to 10 are lost here, the hub has them.
	w.app = openBundleDB(t, backup)
	res, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ahead || res.ScansAcked != 5 {
		t.Fatalf("after restore: acknowledged %d, ahead %v; want 5, true", res.ScansAcked, res.Ahead)
	}
	logBundleScans(t, w.app, 3) // ids 6 to 8 again, in the new epoch
	r, err := importBytes(w.hub, exportUpBytes(t, w.app))
	if err != nil {
		t.Fatal(err)
	}
	if r.Stored != 3 {
		t.Fatalf("records after the restore: stored %d, want 3", r.Stored)
	}
	held, _, _ := w.hub.DistrictScans(ctx, w.appName, 0, 0)
	if len(held) != 13 {
		t.Fatalf("hub holds %d scans, want 13 (10 before the restore, 3 after)", len(held))
	}
}

func copyBundleDir(tb testing.TB, from, to string) {
	tb.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestBundle_RestoredHub: a hub restored from an older backup numbers
// its bundles for an appliance again from where the backup left it; the
// appliance's next bundle tells it how far it had got, and from then on
// the hub's bundles import again.
func TestBundle_RestoredHub(t *testing.T) {
	t.Parallel()
	w := newBundleWorld(t)
	hubDir := filepath.Dir(w.hub.Path())
	w.hub.Close()
	backup := t.TempDir()
	copyBundleDir(t, hubDir, backup)
	w.hub = openBundleDB(t, hubDir)
	for range 2 {
		if _, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName)); err != nil {
			t.Fatal(err)
		}
	}
	w.hub.Close()
	w.hub = openBundleDB(t, backup)

	// Its first bundle after the restore is number 1 again: a replay.
	if _, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName)); !errors.Is(err, store.ErrBundleReplayed) {
		t.Fatalf("restored hub's bundle: %v", err)
	}
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); err != nil {
		t.Fatal(err)
	}
	res, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName))
	if err != nil {
		t.Fatalf("hub's bundle after the appliance's: %v", err)
	}
	if res.Header.Seq != 3 {
		t.Fatalf("hub's bundle after the appliance's is number %d, want 3", res.Header.Seq)
	}
}

// TestBundle_RestoredHubLostRecords: a hub restored from a backup older
// than records it had acknowledged refuses the appliance's next bundle as
// a gap; its answer shows the appliance what it lacks, and the bundle
// after that carries those records again, so the hub ends up with every
// record once.
func TestBundle_RestoredHubLostRecords(t *testing.T) {
	t.Parallel()
	w := newBundleWorld(t)
	hubDir := filepath.Dir(w.hub.Path())
	w.hub.Close()
	backup := t.TempDir()
	copyBundleDir(t, hubDir, backup)
	w.hub = openBundleDB(t, hubDir)

	logBundleScans(t, w.app, 5)
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); err != nil {
		t.Fatal(err)
	}
	if _, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName)); err != nil {
		t.Fatal(err)
	}
	w.hub.Close()
	w.hub = openBundleDB(t, backup) // the five scans are gone from the hub

	logBundleScans(t, w.app, 2)
	var gap *store.GapError
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); !errors.As(err, &gap) || gap.Expected != 1 {
		t.Fatalf("bundle to the restored hub: %v", err)
	}
	res, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Resent, store.StreamScans) {
		t.Fatalf("the appliance did not see the hub lacks its scans: %+v", res)
	}
	if _, err := importBytes(w.hub, exportUpBytes(t, w.app)); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, w, 7)
}

// TestBundle_ImportKeepsGatesLogging: a large bundle is stored run by
// run, so the hub's own gates keep logging scans while it is imported,
// each waiting at most about one run, not the whole import.
func TestBundle_ImportKeepsGatesLogging(t *testing.T) {
	if testing.Short() {
		t.Skip("logs 100,000 scans")
	}
	ctx := t.Context()
	w := newBundleWorld(t)
	logBundleScans(t, w.app, 5*MaxScanBatch)
	up := exportUpBytes(t, w.app)

	stop := make(chan struct{})
	worst := make(chan time.Duration, 1)
	go func() {
		var longest time.Duration
		defer func() { worst <- longest }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			if err := w.hub.LogScan(ctx, &store.Scan{Source: "hub-gate", Decision: "deny", Reason: "not_a_pass"}); err != nil {
				t.Error(err)
				return
			}
			longest = max(longest, time.Since(start))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	res, err := importBytes(w.hub, up)
	took := time.Since(start)
	close(stop)
	longest := <-worst
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored < 5*MaxScanBatch {
		t.Fatalf("stored %d", res.Stored)
	}
	t.Logf("import of %d records took %v; the hub's gate waited at most %v to log a scan", res.Stored, took, longest)
	if longest > took/2 {
		t.Fatalf("a gate scan waited %v during an import of %v: the import holds the write lock too long", longest, took)
	}
}

// TestBundle_TransitIsNotSkew: a bundle imported 10 minutes after it was
// written reports its time in transit and leaves the appliance's clock
// as its online exchanges measured it: no skew warning.
func TestBundle_TransitIsNotSkew(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	logBundleScans(t, w.app, 3)
	written := time.Now()
	raw := exportUpBytes(t, w.app)
	w.hub.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	res, err := importBytes(w.hub, raw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored < 3 || res.WrittenAt.Before(written.Add(-time.Second)) || res.WrittenAt.After(written.Add(time.Second)) ||
		res.Transit < 10*time.Minute-2*time.Second || res.Transit > 10*time.Minute+2*time.Second {
		t.Fatalf("import: stored %d, written %v (at %v), transit %v", res.Stored, res.WrittenAt, written, res.Transit)
	}
	list, err := w.hub.ApplianceStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.Name == w.appName && a.ClockSkew != 0 {
			t.Fatalf("transit taken for clock skew: %v", a.ClockSkew)
		}
	}
}

// TestBundle_ListAgeFromWriting: lists that travelled as a file are as
// old as the file, not as its import: a bundle carried for 20 minutes
// leaves lists 20 minutes old, and an older bundle imported after a
// newer one does not make them look fresher or older than they are.
func TestBundle_ListAgeFromWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	written := time.Now()
	older := exportDownBytes(t, w.hub, w.appName)
	newer := exportDownBytes(t, w.hub, w.appName)
	carried := 20 * time.Minute
	w.app.Now = func() time.Time { return time.Now().Add(carried) }
	lastPull := func() time.Time {
		t.Helper()
		st, err := w.app.SyncStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.LastPull
	}
	if _, err := importBytes(w.app, newer); err != nil {
		t.Fatal(err)
	}
	if got := lastPull(); got.Before(written.Add(-time.Second)) || got.After(written.Add(5*time.Second)) {
		t.Fatalf("lists dated %v after importing a bundle written at %v and carried %v", got, written, carried)
	}
	if _, err := importBytes(w.app, older); err == nil {
		t.Fatal("an older bundle imported after a newer one")
	}
	// A bundle written "later" by a hub whose clock runs ahead is
	// dated now at the latest.
	w.hub.Now = func() time.Time { return time.Now().Add(2 * carried) }
	ahead := exportDownBytes(t, w.hub, w.appName)
	if _, err := importBytes(w.app, ahead); err != nil {
		t.Fatal(err)
	}
	if got := lastPull(); got.After(time.Now().Add(carried + time.Second)) {
		t.Fatalf("lists dated %v, in the future of the appliance's clock", got)
	}
}

// TestBundle_RetiredFinal: a retired appliance's unsent scans are not
// lost: its final bundle is taken for the scans it logged before the
// retirement, and refused, with an audit record, for later ones; a
// bundle written again does not bring those back.
func TestBundle_RetiredFinal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	const before = 4
	logBundleScans(t, w.app, before)
	retired, err := w.hub.RetireAppliance(ctx, w.appName, "replaced", "admin")
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	w.app.Now = func() time.Time { return later }
	for i := range 3 {
		s := &store.Scan{At: later.Add(time.Duration(i) * time.Millisecond), Source: "after", Decision: "deny", Reason: "not_a_pass"}
		if err := w.app.LogScan(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	res, err := importBytes(w.hub, exportUpBytes(t, w.app))
	if err != nil {
		t.Fatalf("final bundle of a retired appliance: %v", err)
	}
	held, _, err := w.hub.DistrictScans(ctx, w.appName, 0, store.MaxScanLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != before || res.Refused < 3 {
		t.Fatalf("hub holds %d scans (want %d logged before the retirement at %v), refused %d", len(held), before, retired.RetiredAt, res.Refused)
	}
	for _, s := range held {
		if s.Source == "after" {
			t.Fatalf("scan logged after the retirement stored: %+v", s)
		}
	}
	refusals := 0
	err = w.hub.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditRecordRefused && strings.Contains(string(r.Detail), "after the appliance was retired") && strings.Contains(string(r.Detail), `"kind":"scans"`) {
			refusals++
		}
		return nil
	})
	if err != nil || refusals != 1 {
		t.Fatalf("%d audit records of the refused scans, %v; want 1", refusals, err)
	}
	// Written again: nothing new stored, nothing refused again.
	res, err = importBytes(w.hub, exportUpBytes(t, w.app))
	if err != nil || res.Stored != 0 {
		t.Fatalf("second final bundle: %+v, %v", res, err)
	}
	// And it gets nothing back.
	if _, err := ExportDown(ctx, w.hub, w.appName, &bytes.Buffer{}); !errors.Is(err, store.ErrRetired) {
		t.Fatalf("export for a retired appliance: %v", err)
	}
}

// TestBundle_DrainThenRetire: an office the hub puts in draining learns
// it from the hub's bundle and issues no new passes; its records still
// reach the hub; it is then retired without losing any of them.
func TestBundle_DrainThenRetire(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	if _, err := district.Issue(ctx, w.app, district.IssueRequest{Name: "王五", IDNumber: "P7654321", Actor: "desk"}); err != nil {
		t.Fatalf("issuing before draining: %v", err)
	}
	if _, err := w.hub.DrainAppliance(ctx, w.appName, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.hub.DrainAppliance(ctx, w.appName, "admin"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("draining twice: %v", err)
	}
	if _, err := w.hub.DrainAppliance(ctx, "gate-nobody", "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("draining an unknown appliance: %v", err)
	}
	list, err := w.hub.ApplianceStatuses(ctx)
	if err != nil || len(list) != 1 || list[0].State() != "draining" {
		t.Fatalf("hub's view: %+v, %v", list, err)
	}
	audited := func(db *store.DB) (n int) {
		_ = db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditApplianceDraining {
				n++
			}
			return nil
		})
		return n
	}
	if audited(w.hub) != 1 {
		t.Fatal("draining not audited at the hub")
	}

	if _, err := importBytes(w.app, exportDownBytes(t, w.hub, w.appName)); err != nil {
		t.Fatal(err)
	}
	if d, err := w.app.Draining(ctx); err != nil || !d || audited(w.app) != 1 {
		t.Fatalf("appliance draining %v, %v, audited %d", d, err, audited(w.app))
	}
	if _, err := district.Issue(ctx, w.app, district.IssueRequest{Name: "赵六", IDNumber: "P7654322", Actor: "desk"}); !errors.Is(err, store.ErrDraining) {
		t.Fatalf("issuing while draining: %v", err)
	}
	logBundleScans(t, w.app, 6)
	res, err := importBytes(w.hub, exportUpBytes(t, w.app))
	if err != nil || res.Stored < 6 {
		t.Fatalf("bundle while draining: %+v, %v", res, err)
	}
	if _, err := w.hub.RetireAppliance(ctx, w.appName, "replaced", "admin"); err != nil {
		t.Fatalf("retiring after draining: %v", err)
	}
	if _, err := w.hub.DrainAppliance(ctx, w.appName, "admin"); !errors.Is(err, store.ErrRetired) {
		t.Fatalf("draining a retired appliance: %v", err)
	}
	held, _, err := w.hub.DistrictScans(ctx, w.appName, 0, store.MaxScanLimit)
	if err != nil || len(held) != 6 {
		t.Fatalf("hub holds %d scans, %v; want 6", len(held), err)
	}
}
