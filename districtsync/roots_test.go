package districtsync

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// hubRoot is the hub's district root key record.
func hubRoot(t *testing.T, db *store.DB) *store.Key {
	t.Helper()
	roots, err := db.FindKeys(t.Context(), store.KeyFilter{Role: store.RoleRoot, HasPrivate: true})
	if err != nil || len(roots) == 0 {
		t.Fatalf("hub root: %v", err)
	}
	return roots[0]
}

// mustAllow checks text at db with a fresh checker (as after a restart)
// and fails unless it is allowed.
func mustAllow(t *testing.T, db *store.DB, text string) {
	t.Helper()
	chk, err := check.New(context.Background(), check.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	d, err := chk.Check(t.Context(), "gate-1", text)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed() {
		t.Fatalf("pass refused: %s %s", d.Decision, d.Reason)
	}
}

func issueAtHub(t *testing.T, db *store.DB) string {
	t.Helper()
	p, err := district.Issue(t.Context(), db, district.IssueRequest{Name: "张三明", IDNumber: "610113199001011230",
		TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	return p.Text
}

// A hub whose file holds a revocation of its own root (left by an older
// version that took it from an appliance's push) does not send it: the
// gate keeps verifying the district's passes.
func TestPull_RootRevocationNeverSent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	gate := enrolled(t, h, "gate-1", false)
	text := issueAtHub(t, h.db)
	root := hubRoot(t, h.db)

	raw, err := sql.Open("sqlite", filepath.Join(h.dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO revocations (kind, target, reason, at_ms, origin) VALUES (3, ?, 'pushed', 1, 'gate-1')`, root.KID[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE keys SET revoked_ms = 1 WHERE kid = ?`, root.KID[:]); err != nil {
		t.Fatal(err)
	}
	res, err := PullOnce(ctx, gate, clientOf(t, gate))
	if err != nil {
		t.Fatal(err)
	}
	if res.Revocations != 0 || res.KeysRevoked != 0 {
		t.Fatalf("pull %+v", res)
	}
	mustAllow(t, gate, text)
}

// forgeDown re-signs the hub's next bundle for name with the hub's own
// root after change altered its payload: what a hub running an older
// version (or a copied root) could send.
func forgeDown(t *testing.T, hubDB *store.DB, name string, change func(*DownPayload)) []byte {
	t.Helper()
	b, err := ReadBundle(bytes.NewReader(exportDownBytes(t, hubDB, name)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := districtRoot(t.Context(), hubDB)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewBundleSigner(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(signer.Public()); err != nil {
		t.Fatal(err)
	}
	p, err := b.Down()
	if err != nil {
		t.Fatal(err)
	}
	change(p)
	var buf bytes.Buffer
	if err := EncodeBundle(&buf, b.Header, p, signer); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A down bundle carrying a revocation of the district root, in the trust
// list and as a key revocation, changes nothing at the appliance: passes
// still verify, now and after a restart, and the refusal is audited.
func TestBundle_RootRevocationRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newBundleWorld(t)
	text := issueAtHub(t, w.hub)
	root := hubRoot(t, w.hub)
	forged := forgeDown(t, w.hub, w.appName, func(p *DownPayload) {
		for i := range p.Feed.Trust.Keys {
			if bytes.Equal(p.Feed.Trust.Keys[i].KID, root.KID[:]) {
				p.Feed.Trust.Keys[i].Revoked = time.Now().UnixMilli()
			}
		}
		keys, err := TrustKeysFromWire(p.Feed.Trust.Keys)
		if err != nil {
			t.Fatal(err)
		}
		p.Feed.Trust.Hash = TrustHash(keys)
		p.Feed.Revocations = append(p.Feed.Revocations, RevocationRecord{Seq: 1 << 40, Kind: int(store.RevokeIssuer),
			Target: bytes.Clone(root.KID[:]), Reason: "compromised", At: time.Now().UnixMilli()})
	})
	res, err := ImportBundle(ctx, w.app, bytes.NewReader(forged))
	if err != nil {
		t.Fatal(err)
	}
	if res.Feed.RootRevocationsRefused != 2 || res.Feed.KeysRevoked != 0 {
		t.Fatalf("import %+v", res.Feed)
	}
	mustAllow(t, w.app, text)
	refused := 0
	_ = w.app.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditRootRevocationRefused && r.Subject == pass.KeyID(root.KID).String() {
			refused++
		}
		return nil
	})
	if refused != 2 {
		t.Fatalf("%d refusals audited, want 2", refused)
	}
	// The next honest bundle still imports: the appliance did not get
	// stuck on a root it no longer trusts.
	if _, err := ImportBundle(ctx, w.app, bytes.NewReader(exportDownBytes(t, w.hub, w.appName))); err != nil {
		t.Fatalf("next bundle: %v", err)
	}
	mustAllow(t, w.app, text)
}

// A root the hub's admin imported from another district reaches the
// hub's gates with the trust list: they then accept that district's
// passes.
func TestPull_ImportedRootSpreads(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	gate := enrolled(t, h, "gate-1", false)
	other := newBundleHub(t, "Neighbour")
	text := issueAtHub(t, other)
	anchor, err := other.ExportTrustAnchor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pass.ParseAnchor(anchor)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.db.ImportTrustAnchor(ctx, anchor, pass.FormatFingerprint(a.Roots[0].Fingerprint()), "hubadmin"); err != nil {
		t.Fatal(err)
	}
	res, err := PullOnce(ctx, gate, clientOf(t, gate))
	if err != nil {
		t.Fatal(err)
	}
	if res.KeysAdded != 1 {
		t.Fatalf("pull %+v", res)
	}
	mustAllow(t, gate, text)
}

// The attack as it was done: a check-only gate's token pushes, by hand,
// a key revocation of the district root. Whatever the hub makes of the
// push, the other gates keep verifying the district's passes.
func TestPush_RootRevocationDoesNotReachGates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	attacker := enrolled(t, h, "gate-a", false)
	victim := enrolled(t, h, "gate-b", false)
	text := issueAtHub(t, h.db)
	root := hubRoot(t, h.db)
	eps, err := attacker.SyncEpochs(ctx)
	if err != nil || len(eps) == 0 {
		t.Fatalf("epochs: %v", err)
	}
	now := time.Now().UnixMilli()
	body := fmt.Appendf(nil, `{"kind":3,"target":"%x","before_ms":null,"reason":"hand-made","at_ms":%d}`, root.KID[:], now)
	req := &PushRequest{Now: now, Events: &EventBatch{Epoch: eps[len(eps)-1].ID, From: eps[len(eps)-1].EventsFrom,
		Records: []EventRecord{{Seq: eps[len(eps)-1].EventsFrom, Kind: "revocation", At: now, Body: body}}}}
	var resp PushResponse
	err = clientOf(t, attacker).Call(ctx, PathPush, req, &resp) // refused or not: the gates must not care
	revs, _ := h.db.RevocationsSince(ctx, 0)
	t.Logf("push: %v; revocations held at the hub: %d", err, len(revs))
	res, err := PullOnce(ctx, victim, clientOf(t, victim))
	if err != nil {
		t.Fatal(err)
	}
	if res.KeysRevoked != 0 || res.Revocations != 0 {
		t.Fatalf("pull %+v", res)
	}
	mustAllow(t, victim, text)
	mustAllow(t, h.db, text)
}
