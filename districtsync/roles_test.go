package districtsync

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// roleWorld is a hub with two offices, a gate, and an appliance that only
// pulls (to see what the feed carries), over real HTTPS.
type roleWorld struct {
	h                  *pushHub
	officeA, officeB   *store.DB
	gate, watcher      *store.DB
	cA, cB, cGate, cW  *Client
	hubPass            *district.Issued // issued at the hub's own desk
	personB            pass.Subject     // registered at office B
	personHub          pass.Subject     // registered at the hub's desk
	rootKID, hubKID    pass.KeyID
	kidA, kidB         pass.KeyID
	watcherRevsBefore  int
	watcherKeysRevoked int
}

func newRoleWorld(t *testing.T) *roleWorld {
	t.Helper()
	ctx := t.Context()
	w := &roleWorld{h: newPushHub(t)}
	w.officeA, w.cA = w.h.enrol(t, "office-a", true)
	w.officeB, w.cB = w.h.enrol(t, "office-b", true)
	w.gate, w.cGate = w.h.enrol(t, "gate-1", false)
	w.watcher, w.cW = w.h.enrol(t, "watcher", false)
	var err error
	w.hubPass, err = district.Issue(ctx, w.h.db, district.IssueRequest{Name: "王小红", IDNumber: "610113199203041235",
		TestedAt: time.Now().Add(-time.Hour), Doses: 3, Actor: "hub-desk"})
	if err != nil {
		t.Fatal(err)
	}
	w.personHub = w.hubPass.Claims.Subject
	b, err := district.Issue(ctx, w.officeB, district.IssueRequest{Name: "李四", IDNumber: "610113198805061239",
		TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk-b"})
	if err != nil {
		t.Fatal(err)
	}
	w.personB = b.Claims.Subject
	drain(t, w.officeB, w.cB)
	if p, err := w.h.db.FindPerson(ctx, w.personB); err != nil || p.Color != pass.Green {
		t.Fatalf("office B's person at the hub: %+v, %v", p, err)
	}
	roots, err := w.h.db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
	if err != nil || len(roots) != 1 {
		t.Fatalf("roots: %d, %v", len(roots), err)
	}
	w.rootKID = roots[0].KID
	for _, k := range []struct {
		db  *store.DB
		kid *pass.KeyID
	}{{w.h.db, &w.hubKID}, {w.officeA, &w.kidA}, {w.officeB, &w.kidB}} {
		sk, err := k.db.SigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		*k.kid = sk.KID
	}
	if _, err := PullOnce(ctx, w.watcher, w.cW); err != nil {
		t.Fatal(err)
	}
	w.watcherRevsBefore, w.watcherKeysRevoked = watcherState(t, w.watcher)
	return w
}

func watcherState(t *testing.T, db *store.DB) (revs, keysRevoked int) {
	t.Helper()
	list, err := db.RevocationsSince(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := db.TrustKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !k.RevokedAt.IsZero() {
			keysRevoked++
		}
	}
	return len(list), keysRevoked
}

// hubSnapshot is everything at the hub a pushed record could change.
func hubSnapshot(t *testing.T, db *store.DB, watched ...pass.Subject) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	revs, err := db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		fmt.Fprintf(&b, "rev %d %d %x %v\n", r.Seq, r.Kind, r.Target, r.Before.UnixMilli())
	}
	keys, err := db.TrustKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "key %x %v\n", k.KID[:], k.RevokedAt.UnixMilli())
	}
	list, err := db.Appliances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		fmt.Fprintf(&b, "appliance %s %s retired=%v\n", a.Name, a.Role, a.Retired())
	}
	pol, err := db.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "policy %+v\n", *pol)
	n, err := db.CountPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "people %d\n", n)
	for _, s := range watched {
		if p, err := db.FindPerson(ctx, s); err == nil {
			fmt.Fprintf(&b, "person %x %v %v\n", p.Subject[:], p.Color, p.UpdatedAt.UnixMilli())
		}
	}
	for _, name := range []string{"office-a", "office-b", "gate-1"} {
		ev, _, err := db.DistrictEvents(ctx, name, 0, store.MaxScanLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ev {
			if e.Kind != "audit" {
				fmt.Fprintf(&b, "event %s %d %s\n", name, e.Seq, e.Kind)
			}
		}
	}
	return b.String()
}

// forge pushes one hand-made record with c's token in a fresh epoch,
// as a tampered appliance would, and returns the hub's answer.
func forge(t *testing.T, c *Client, kind string, body any) *PushResponse {
	t.Helper()
	epoch := make([]byte, store.EpochSize)
	if _, err := rand.Read(epoch); err != nil {
		t.Fatal(err)
	}
	req := PushRequest{Now: time.Now().UnixMilli()}
	if kind == "scan" {
		req.Scans = &ScanBatch{Epoch: epoch, From: 1, Records: []ScanRecord{{Seq: 1, At: time.Now().UnixMilli(),
			Source: "forged", Decision: "allow", Reason: "ok"}}}
	} else {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		req.Events = &EventBatch{Epoch: epoch, From: 1, Records: []EventRecord{{Seq: 1, Kind: kind, At: time.Now().UnixMilli(), Body: raw}}}
	}
	var resp PushResponse
	if err := c.Call(t.Context(), PathPush, &req, &resp); err != nil {
		t.Fatalf("forged %s: %v", kind, err)
	}
	m := resp.Events
	if kind == "scan" {
		m = resp.Scans
	}
	if m == nil || m.Mark != 1 || !bytes.Equal(m.Epoch, epoch) {
		t.Fatalf("forged %s: the mark %+v did not move past it (the outbox would jam)", kind, m)
	}
	return &resp
}

func hexOf(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func statusBody(s pass.Subject, from, to pass.Color) map[string]any {
	b := map[string]any{"subject": hexOf(s[:]), "to_color": int(to), "reason": "forged", "actor": "x",
		"at_ms": time.Now().UnixMilli(), "masked_name": "某*", "id_tail": "0000", "id_type": "mainland", "doses": 0}
	if from != 0 {
		b["from_color"] = int(from)
	}
	return b
}

func revocationBody(kind store.RevocationKind, target []byte) map[string]any {
	b := map[string]any{"kind": kind, "target": hexOf(target), "reason": "forged", "at_ms": time.Now().UnixMilli()}
	if kind == store.RevokeSubject {
		b["before_ms"] = time.Now().Add(time.Hour).UnixMilli()
	}
	return b
}

func passBody(id pass.ID, s pass.Subject, kid pass.KeyID) map[string]any {
	now := time.Now()
	return map[string]any{"id": hexOf(id[:]), "subject": hexOf(s[:]), "kid": hexOf(kid[:]), "kind": 1, "color": 1,
		"issued_ms": now.UnixMilli(), "expires_ms": now.Add(time.Hour).UnixMilli(), "actor": "x"}
}

// A tampered gate or office pushes every kind of record by hand with its
// own token: what is outside its role is refused (the hub's state and
// every other appliance's stay as they were, one audit record names the
// appliance, kind and sequence number, and the mark moves past it), and
// what is inside its role still works.
// forgedPush is a record an appliance pushes, forged or not, and
// whether the hub must refuse it.
type forgedPush struct {
	name    string
	c       *Client
	who     string
	kind    string
	body    any
	refused bool
}

// forgedPushes lists, in order, what the gate and the offices push:
// records outside their role, refused, and their own, accepted.
// newPerson is office A's person to be, gatePerson one the gate tries to
// register.
func forgedPushes(w *roleWorld, newPerson, gatePerson pass.Subject) []forgedPush {
	var ownPass pass.ID // a pass office A issued (its pass event accepted)
	ownPass[0] = 0xA1
	bPass := pass.ID{0xB7, 0x01} // a pass office B issued
	return []forgedPush{
		// The gate: scans and its own audit records only.
		{"gate scan", w.cGate, "gate-1", "scan", nil, false},
		{"gate audit", w.cGate, "gate-1", "audit", map[string]any{"seq": 1, "action": "login", "actor": "x"}, false},
		{"gate pass", w.cGate, "gate-1", "pass", passBody(pass.ID{0xB1}, w.personB, w.kidA), true},
		{"gate registers a person", w.cGate, "gate-1", "status", statusBody(gatePerson, 0, pass.Red), true},
		{"gate status of office B's person", w.cGate, "gate-1", "status", statusBody(w.personB, pass.Green, pass.Red), true},
		{"gate subject revocation", w.cGate, "gate-1", "revocation", revocationBody(store.RevokeSubject, w.personB[:]), true},
		{"gate pass revocation", w.cGate, "gate-1", "revocation", revocationBody(store.RevokePass, w.hubPass.Claims.ID[:]), true},
		{"gate revokes the district root", w.cGate, "gate-1", "revocation", revocationBody(store.RevokeIssuer, w.rootKID[:]), true},
		{"gate revokes the hub's issuer key", w.cGate, "gate-1", "revocation", revocationBody(store.RevokeIssuer, w.hubKID[:]), true},
		{"gate revokes an office's issuer key", w.cGate, "gate-1", "revocation", revocationBody(store.RevokeIssuer, w.kidB[:]), true},
		// An office: also passes it signed and people it registered.
		{"office scan", w.cA, "office-a", "scan", nil, false},
		{"office audit", w.cA, "office-a", "audit", map[string]any{"seq": 1, "action": "login", "actor": "x"}, false},
		{"office pass of another key", w.cA, "office-a", "pass", passBody(pass.ID{0xB2}, w.personB, w.hubKID), true},
		{"office status of office B's person", w.cA, "office-a", "status", statusBody(w.personB, pass.Green, pass.Red), true},
		{"office re-registers office B's person", w.cA, "office-a", "status", statusBody(w.personB, 0, pass.Red), true},
		{"office status of the hub's person", w.cA, "office-a", "status", statusBody(w.personHub, pass.Green, pass.Red), true},
		{"office subject revocation of office B's person", w.cA, "office-a", "revocation", revocationBody(store.RevokeSubject, w.personB[:]), true},
		{"office revokes a pass it did not issue", w.cA, "office-a", "revocation", revocationBody(store.RevokePass, w.hubPass.Claims.ID[:]), true},
		{"office revokes the district root", w.cA, "office-a", "revocation", revocationBody(store.RevokeIssuer, w.rootKID[:]), true},
		{"office revokes the hub's issuer key", w.cA, "office-a", "revocation", revocationBody(store.RevokeIssuer, w.hubKID[:]), true},
		{"office revokes another office's key", w.cA, "office-a", "revocation", revocationBody(store.RevokeIssuer, w.kidB[:]), true},
		{"office revokes its own key", w.cA, "office-a", "revocation", revocationBody(store.RevokeIssuer, w.kidA[:]), true},
		{"office malformed status", w.cA, "office-a", "status", map[string]any{"subject": "zz"}, true},
		// A pass ID is public (it is in the QR code any checker reads):
		// an office claiming another's pass as its own, to revoke it as
		// a "lost card" next, is refused at the claim and at the revocation.
		{"office B pass it signed", w.cB, "office-b", "pass", passBody(bPass, w.personB, w.kidB), false},
		{"office claims office B's pass", w.cA, "office-a", "pass", passBody(bPass, w.personB, w.kidA), true},
		{"office revokes office B's claimed pass", w.cA, "office-a", "revocation", revocationBody(store.RevokePass, bPass[:]), true},
		{"office claims the hub's pass", w.cA, "office-a", "pass", passBody(w.hubPass.Claims.ID, w.personHub, w.kidA), true},
		{"office revokes the hub's claimed pass", w.cA, "office-a", "revocation", revocationBody(store.RevokePass, w.hubPass.Claims.ID[:]), true},
		// Allowed, in order: registering, then changing its own person,
		// a pass it signed, and a lost card of that pass.
		{"office registers a person", w.cA, "office-a", "status", statusBody(newPerson, 0, pass.Green), false},
		{"office status of its own person", w.cA, "office-a", "status", statusBody(newPerson, pass.Green, pass.Red), false},
		{"office subject revocation of its own person", w.cA, "office-a", "revocation", revocationBody(store.RevokeSubject, newPerson[:]), false},
		{"office pass it signed", w.cA, "office-a", "pass", passBody(ownPass, newPerson, w.kidA), false},
		{"office revokes a pass it issued", w.cA, "office-a", "revocation", revocationBody(store.RevokePass, ownPass[:]), false},
	}
}

func TestRoles_ForgedPushes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newRoleWorld(t)
	newPerson := pass.Subject{0xA2, 0x01}
	gatePerson := pass.Subject{0xA3, 0x01}
	cases := forgedPushes(w, newPerson, gatePerson)
	watched := []pass.Subject{w.personB, w.personHub, newPerson, gatePerson}
	for _, c := range cases {
		before := hubSnapshot(t, w.h.db, watched...)
		refusedBefore, err := w.h.db.Refusals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		forge(t, c.c, c.kind, c.body)
		after := hubSnapshot(t, w.h.db, watched...)
		refusals, err := w.h.db.Refusals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		newRefusals := refusals[len(refusedBefore):]
		if c.refused {
			if before != after {
				t.Errorf("%s: refused, yet the hub changed:\n%s\nbecame\n%s", c.name, before, after)
			}
			if len(newRefusals) != 1 || newRefusals[0].Appliance != c.who || newRefusals[0].Kind != c.kind ||
				newRefusals[0].Seq != 1 || newRefusals[0].Why == "" {
				t.Errorf("%s: audited refusals %+v, want one naming %s, %s, seq 1 and why", c.name, newRefusals, c.who, c.kind)
			}
			continue
		}
		if len(newRefusals) != 0 {
			t.Errorf("%s: refused (%s), want accepted", c.name, newRefusals[0].Why)
		}
		if c.kind != "scan" && c.kind != "audit" && before == after {
			t.Errorf("%s: accepted, yet the hub did not change", c.name)
		}
	}
	// What the allowed records did.
	if p, err := w.h.db.FindPerson(ctx, newPerson); err != nil || p.Color != pass.Red {
		t.Errorf("office A's own person at the hub: %+v, %v; want red", p, err)
	}
	if _, err := w.h.db.FindPerson(ctx, gatePerson); err == nil {
		t.Error("the gate registered a person at the hub")
	}
	if p, _ := w.h.db.FindPerson(ctx, w.personB); p.Color != pass.Green {
		t.Errorf("office B's person turned %v at the hub", p.Color)
	}
	checkWatcherFeed(t, ctx, w)
}

// checkWatcherFeed pulls the hub's feed into another appliance after the
// forged pushes.
func checkWatcherFeed(t *testing.T, ctx context.Context, w *roleWorld) {
	t.Helper()
	// Another appliance pulling the feed gets only the allowed
	// revocations (office A's person, office A's pass), no key
	// revocation, and passes of the district still check.
	if _, err := PullOnce(ctx, w.watcher, w.cW); err != nil {
		t.Fatal(err)
	}
	revs, keysRevoked := watcherState(t, w.watcher)
	if revs != w.watcherRevsBefore+2 || keysRevoked != w.watcherKeysRevoked {
		t.Fatalf("watcher: %d revocations (%d before), %d keys revoked (%d before); want 2 more revocations and no key",
			revs, w.watcherRevsBefore, keysRevoked, w.watcherKeysRevoked)
	}
	list, _ := w.watcher.RevocationsSince(ctx, 0)
	for _, r := range list {
		if bytes.Equal(r.Target, w.personB[:]) || bytes.Equal(r.Target, w.hubPass.Claims.ID[:]) || r.Kind == store.RevokeIssuer {
			t.Fatalf("a refused revocation reached the watcher: %+v", r)
		}
	}
	chk, err := check.New(ctx, check.Config{DB: w.watcher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	if d := chk.Evaluate(w.hubPass.Text, time.Now()); !d.Allowed() {
		t.Fatalf("the hub's pass at the watcher after the forged pushes: %s", d.Reason)
	}
}

// An up bundle is the same path as a push: a tampered gate's bundle
// carrying a revocation of the district root is imported, the
// revocation refused and audited, and the gate's other records kept.
func TestRoles_BundleRefusesRootRevocation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hubDB := newBundleHub(t, "Test district")
	gate := enrolByFilesAs(t, hubDB, "gate-b", store.ApplianceGate)
	roots, err := hubDB.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
	if err != nil || len(roots) != 1 {
		t.Fatalf("roots: %v", err)
	}
	// Written straight into the gate's own list, as whoever holds its
	// disk could: the outbox carries it up.
	// The store refuses to revoke a root itself, so the row goes in by
	// SQL, past it; the outbox trigger still carries it up.
	raw, err := sql.Open("sqlite", gate.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `INSERT INTO revocations (kind, target, reason, at_ms) VALUES (?, ?, 'forged', ?)`,
		int(store.RevokeIssuer), roots[0].KID[:], time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	logBundleScans(t, gate, 3)
	revsBefore, _ := hubDB.RevocationsSince(ctx, 0)
	res, err := importBytes(hubDB, exportUpBytes(t, gate))
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused != 1 {
		t.Fatalf("import: %+v, want one record refused", res)
	}
	if revs, _ := hubDB.RevocationsSince(ctx, 0); len(revs) != len(revsBefore) {
		t.Fatalf("the bundle added %d revocations at the hub", len(revs)-len(revsBefore))
	}
	keys, _ := hubDB.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
	if !keys[0].RevokedAt.IsZero() {
		t.Fatal("the district root is revoked at the hub")
	}
	refusals, _ := hubDB.Refusals(ctx)
	if len(refusals) != 1 || refusals[0].Appliance != "gate-b" || refusals[0].Kind != "revocation" {
		t.Fatalf("refusals: %+v", refusals)
	}
	if scans, _, _ := hubDB.DistrictScans(ctx, "gate-b", 0, 100); len(scans) != 3 {
		t.Fatalf("%d of the gate's 3 scans stored", len(scans))
	}
}

// The hub's admin makes an office a gate: its issuer key is revoked
// district-wide, its records are judged as a gate's from then on, and at
// its next pull it learns it and drops the pseudonym key. A gate is not
// made an office in place.
func TestRoles_OfficeMadeGate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newRoleWorld(t)
	if _, err := w.h.db.SetApplianceRole(ctx, "gate-1", store.ApplianceOffice, "admin"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a gate made an office in place: %v, want ErrInvalid", err)
	}
	a, err := w.h.db.SetApplianceRole(ctx, "office-a", store.ApplianceGate, "admin")
	if err != nil || a.Role != store.ApplianceGate {
		t.Fatalf("set role: %+v, %v", a, err)
	}
	keys, _ := w.h.db.FindKeys(ctx, store.KeyFilter{})
	for _, k := range keys {
		if k.KID == w.kidA && k.RevokedAt.IsZero() {
			t.Fatal("the former office's issuer key is not revoked")
		}
	}
	before := hubSnapshot(t, w.h.db)
	forge(t, w.cA, "pass", passBody(pass.ID{0xC1}, w.personB, w.kidA))
	if after := hubSnapshot(t, w.h.db); after != before {
		t.Fatalf("a pass event from the former office was accepted:\n%s", after)
	}
	res, err := PullOnce(ctx, w.officeA, w.cA)
	if err != nil {
		t.Fatal(err)
	}
	if !res.KeyDropped {
		t.Fatalf("pull after the change: %+v, want the key dropped", res)
	}
	if _, err := district.Issue(ctx, w.officeA, district.IssueRequest{Name: "张三明", IDNumber: redIDs[0], Actor: "x"}); !errors.Is(err, store.ErrGate) {
		t.Fatalf("issuing at the former office: %v, want ErrGate", err)
	}
}

// An office's clock (or a tampered office) may date a record far ahead:
// a subject revocation whose cut-off is a year away would void every pass
// the person gets for a year, at every appliance, and a status change
// dated a year ahead would make the hub ignore every later change of the
// person. The hub holds such times to its own clock.
func TestRoles_FutureDatedRecordsHeldToHubClock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newRoleWorld(t)
	ahead := time.Now().Add(365 * 24 * time.Hour).UnixMilli()

	rev := revocationBody(store.RevokeSubject, w.personB[:])
	rev["before_ms"], rev["at_ms"] = ahead, ahead
	forge(t, w.cB, "revocation", rev)
	revs, err := w.h.db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range revs {
		if bytes.Equal(r.Target, w.personB[:]) {
			found = true
			if r.Before.After(time.Now()) || r.At.After(time.Now()) {
				t.Errorf("subject revocation kept a cut-off %v / time %v ahead of the hub's clock", r.Before, r.At)
			}
		}
	}
	if !found {
		t.Fatal("office B's revocation of its own person was not taken")
	}

	red := statusBody(w.personB, pass.Green, pass.Red)
	red["at_ms"] = ahead
	forge(t, w.cB, "status", red)
	forge(t, w.cB, "status", statusBody(w.personB, pass.Red, pass.Green))
	p, err := w.h.db.FindPerson(ctx, w.personB)
	if err != nil {
		t.Fatal(err)
	}
	if p.Color != pass.Green || p.UpdatedAt.After(time.Now()) {
		t.Errorf("after a status dated a year ahead and a later one: %v updated %v; want green, not ahead", p.Color, p.UpdatedAt)
	}
}

// A status change at an office whose clock is behind the hub's (within
// the tolerance, as the hub sees on the push) gives a cut-off as early
// as that clock: with an issuing appliance's clock as far ahead, a pass
// issued before the change would outlive it. The hub moves the cut-off
// of a pushed subject revocation to its own clock by the offset the push
// showed.
func TestRoles_CutoffFromBehindClock(t *testing.T) {
	ctx := t.Context()
	w := newRoleWorld(t)
	const behind = 4 * time.Minute
	officeNow := time.Now().Add(-behind)
	rev := revocationBody(store.RevokeSubject, w.personB[:])
	rev["before_ms"], rev["at_ms"] = officeNow.UnixMilli(), officeNow.UnixMilli()
	raw, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	epoch := make([]byte, store.EpochSize)
	if _, err := rand.Read(epoch); err != nil {
		t.Fatal(err)
	}
	req := PushRequest{Now: officeNow.UnixMilli(), Events: &EventBatch{Epoch: epoch, From: 1,
		Records: []EventRecord{{Seq: 1, Kind: "revocation", At: officeNow.UnixMilli(), Body: raw}}}}
	var resp PushResponse
	if err := w.cB.Call(ctx, PathPush, &req, &resp); err != nil {
		t.Fatal(err)
	}
	revs, err := w.h.db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if bytes.Equal(r.Target, w.personB[:]) {
			if lag := time.Since(r.Before); lag > time.Minute || r.Before.After(time.Now()) {
				t.Fatalf("cut-off %v behind the hub's clock (the office was %v behind); want the hub's time", lag, behind)
			}
			return
		}
	}
	t.Fatal("office B's revocation of its own person was not taken")
}
