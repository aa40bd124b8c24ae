package districtsync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

func rootsAt(t *testing.T, db *store.DB, at time.Time) int {
	t.Helper()
	chk, err := check.New(context.Background(), check.Config{DB: db, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	return chk.Roots()
}

// The hub rotates its root; a gate and an office learn of it by the
// feed. Passes under the old root and the new verify; the office's own
// certificate is the new root's; the old root ends RootGrace later.
func TestRotation_ByFeed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	gate := enrolled(t, h, "gate-1", false)
	office := enrolled(t, h, "desk-1", true)
	before := issueAtHub(t, h.db)
	old := hubRoot(t, h.db)

	rot, err := district.RotateRoot(ctx, h.db, "hubadmin")
	if err != nil {
		t.Fatal(err)
	}
	if rot.Old.KID != old.KID || rot.Certs != 2 {
		t.Fatalf("rotation %+v", rot)
	}
	after := issueAtHub(t, h.db)
	if d, _ := scannerCheck(t, gate, after); d.Reason != check.ReasonUnknownIssuer {
		t.Fatalf("new root's pass before the gate knows it: %s", d.Reason)
	}
	for _, app := range []*store.DB{gate, office} {
		res, err := PullOnce(ctx, app, clientOf(t, app))
		if err != nil {
			t.Fatal(err)
		}
		if res.RootsRotated != 1 || res.RootsRefused != 0 {
			t.Fatalf("pull %+v", res)
		}
	}
	mustAllow(t, gate, before)
	mustAllow(t, gate, after)
	// The office issues under the new root.
	sk, err := office.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pass.ParseCert(sk.Cert, []pass.Root{{District: rot.District, Key: rot.New}})
	if err != nil || c.Key.KID != sk.KID {
		t.Fatalf("office certificate after rotation: %v", err)
	}
	p, err := district.Issue(ctx, office, district.IssueRequest{Name: "王五", IDNumber: "P7654321", TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	mustAllow(t, gate, p.Text)
	// Both roots now; only the new one once the grace is over.
	if n := rootsAt(t, gate, time.Now()); n != 2 {
		t.Fatalf("%d roots at the gate, want 2", n)
	}
	if n := rootsAt(t, gate, time.Now().Add(store.RootGrace+time.Hour)); n != 1 {
		t.Fatalf("%d roots after the grace, want 1", n)
	}
	// Audited at the hub and at the gate.
	for _, db := range []*store.DB{h.db, gate} {
		n := 0
		db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
			if r.Action == store.AuditRootRotated && r.Subject == rot.New.KID.String() {
				n++
			}
			return nil
		})
		if n != 1 {
			t.Fatalf("%d rotation records, want 1", n)
		}
	}
}

func scannerCheck(t *testing.T, db *store.DB, text string) (*check.Decision, error) {
	t.Helper()
	chk, err := check.New(context.Background(), check.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	return chk.Check(t.Context(), "gate-1", text)
}

// By bundle: the hub's bundle after the rotation is signed by the old
// root (which the appliance trusts) and carries the new root with its
// rotation record.
func TestRotation_ByBundle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	old := hubRoot(t, w.hub)
	if _, err := district.RotateRoot(ctx, w.hub, "hubadmin"); err != nil {
		t.Fatal(err)
	}
	after := issueAtHub(t, w.hub)
	b := exportDownBytes(t, w.hub, w.appName)
	rb, err := ReadBundle(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rb.Header.KID, old.KID[:]) {
		t.Fatal("the bundle is not signed by the root the appliance trusts")
	}
	res, err := ImportBundle(ctx, w.app, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if res.Feed.RootsRotated != 1 || res.Feed.CertsUpdated != 2 { // its own key's and the hub's
		t.Fatalf("import %+v", res.Feed)
	}
	mustAllow(t, w.app, after)
}

// forgedRotation writes a rotation record by hand (SPEC section 15)
// naming old as the old root, signed in both places by the new key:
// what someone holding only the new key could make.
func forgedRotation(districtID string, old *pass.PublicKey, seed []byte, at time.Time) ([]byte, *pass.PublicKey) {
	priv := ed25519.NewKeyFromSeed(seed)
	pub, _ := pass.ParsePublicKey(pass.AlgEdDSA, priv.Public().(ed25519.PublicKey))
	body := fmt.Appendf(nil, "passgate-root-rotation 1\ndistrict %s\nold %s %x\nnew EdDSA %x\nat %d\n",
		districtID, old.Alg, old.Raw, pub.Raw, at.Unix())
	sig := ed25519.Sign(priv, body)
	return fmt.Appendf(body, "signature-old %x\nsignature-new %x\n", sig, sig), pub
}

// A new root of the district arriving without a valid rotation record
// chained to a root the appliance trusts for the district is refused,
// audited, and not trusted.
func TestRotation_ForgedRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	gate := enrolled(t, h, "gate-1", false)
	d, _ := h.db.District(ctx)
	root := hubRoot(t, h.db)
	rootPub, _ := pass.ParsePublicKey(root.Alg, root.Public)

	// Another district's root, trusted by the gate through the hub.
	other := newBundleHub(t, "Neighbour")
	anchor, _ := other.ExportTrustAnchor(ctx)
	a, _ := pass.ParseAnchor(anchor)
	if _, _, err := h.db.ImportTrustAnchor(ctx, anchor, pass.FormatFingerprint(a.Roots[0].Fingerprint()), "hubadmin"); err != nil {
		t.Fatal(err)
	}
	if _, err := PullOnce(ctx, gate, clientOf(t, gate)); err != nil {
		t.Fatal(err)
	}
	otherRoot, err := districtRoot(ctx, other)
	if err != nil {
		t.Fatal(err)
	}

	newKey := func(label byte) *pass.PrivateKey {
		k, err := pass.ParsePrivateKey(append([]byte{1}, bytes.Repeat([]byte{label}, 32)...))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	byOther := newKey(2)
	otherSigned, err := pass.SignRotation(d.ID, otherRoot, byOther, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newOnly, newOnlyPub := forgedRotation(d.ID, rootPub, bytes.Repeat([]byte{3}, 32), time.Now())
	stranger := newKey(4)
	strangerRec, _ := pass.SignRotation(d.ID, newKey(5), stranger, time.Now())

	cases := []struct {
		name string
		key  *pass.PublicKey
		rec  []byte
	}{
		{"no record", newKey(6).Public(), nil},
		{"signed by the new key only", newOnlyPub, newOnly},
		{"signed by another district's root", byOther.Public(), otherSigned},
		{"signed by an unknown root", stranger.Public(), strangerRec},
		{"record for another key", newKey(7).Public(), strangerRec},
	}
	text := issueAtHub(t, h.db)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := &store.Key{KID: c.key.KID, Role: store.RoleRoot, Alg: c.key.Alg, Public: c.key.Raw, District: d.ID, Rotation: c.rec}
			res, err := gate.ApplyFeed(ctx, &store.Feed{TrustHash: []byte(c.name), Keys: []*store.Key{k}})
			if err != nil {
				t.Fatal(err)
			}
			if res.RootsRefused != 1 || res.RootsRotated != 0 || res.KeysAdded != 0 {
				t.Fatalf("feed %+v", res)
			}
			roots, _ := gate.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
			for _, r := range roots {
				if r.KID == c.key.KID {
					t.Fatal("forged root stored")
				}
				if r.KID == root.KID && !r.NotAfter.IsZero() {
					t.Fatal("the forged rotation put an end to the real root")
				}
			}
			mustAllow(t, gate, text)
		})
	}
	n := 0
	gate.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditRootRefused {
			n++
		}
		return nil
	})
	if n != len(cases) {
		t.Fatalf("%d refusals audited, want %d", n, len(cases))
	}
}

// Two rotations while a gate was away: one pull takes both, whatever
// the order of the roots in the trust list.
func TestRotation_ChainInOnePull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	gate := enrolled(t, h, "gate-1", false)
	for range 2 {
		if _, err := district.RotateRoot(ctx, h.db, "hubadmin"); err != nil {
			t.Fatal(err)
		}
	}
	text := issueAtHub(t, h.db)
	res, err := PullOnce(ctx, gate, clientOf(t, gate))
	if err != nil {
		t.Fatal(err)
	}
	if res.RootsRotated != 2 || res.RootsRefused != 0 {
		t.Fatalf("pull %+v", res)
	}
	mustAllow(t, gate, text)
	if n := rootsAt(t, gate, time.Now()); n != 3 {
		t.Fatalf("%d roots, want 3", n)
	}
}

// A root is rotated away because it may be compromised: whoever holds the
// old root's private key (a stolen hub backup) must not hand the district
// over a second time, to a root of their own, while the old root is
// still trusted for the grace period.
func TestRotation_SecondHandOverRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	gate := enrolled(t, h, "gate-1", false)
	d, _ := h.db.District(ctx)
	old := hubRoot(t, h.db)
	oldPriv, err := pass.ParsePrivateKey(old.Private)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := district.RotateRoot(ctx, h.db, "hubadmin"); err != nil {
		t.Fatal(err)
	}
	if res, err := PullOnce(ctx, gate, clientOf(t, gate)); err != nil || res.RootsRotated != 1 {
		t.Fatalf("pull %+v, %v", res, err)
	}
	thief, err := pass.ParsePrivateKey(append([]byte{1}, bytes.Repeat([]byte{9}, 32)...))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := pass.SignRotation(d.ID, oldPriv, thief, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pk := thief.Public()
	k := &store.Key{KID: pk.KID, Role: store.RoleRoot, Alg: pk.Alg, Public: pk.Raw, District: d.ID, Rotation: rec}
	// Nor at the hub, which still holds the old root's private half.
	if err := h.db.RotateRoot(ctx, &store.RootRotation{New: k}, "hubadmin"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("the hub took a second hand-over by the replaced root: %v", err)
	}
	res, err := gate.ApplyFeed(ctx, &store.Feed{TrustHash: []byte("forked"), Keys: []*store.Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RootsRefused != 1 || res.RootsRotated != 0 {
		t.Fatalf("a second hand-over by the replaced root: %+v", res)
	}
	roots, _ := gate.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
	for _, r := range roots {
		if r.KID == pk.KID {
			t.Fatal("the thief's root is trusted")
		}
	}
}
