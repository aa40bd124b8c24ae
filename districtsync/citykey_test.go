package districtsync

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// The city pseudonym key reaches the hub's offices, at enrolment or at
// the next pull for one enrolled before the hub took it, and never a
// gate: no file of a gate's data directory holds its bytes. An import at
// an office or a gate is refused and audited.
func TestCityKey_OfficesOnly(t *testing.T) {
	ctx := t.Context()
	h := newPushHub(t)
	key := make([]byte, pass.CityKeyLen)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	file, _ := pass.MarshalCityKey(key)
	check := pass.FormatCityKeyCheck(pass.CityKeyCheck(key))

	earlyDir, gateDir, lateDir := t.TempDir(), t.TempDir(), t.TempDir()
	early, cE := h.enrolIn(t, "office-early", true, earlyDir)
	gate, cG := h.enrolIn(t, "gate-1", false, gateDir)
	if _, err := h.db.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	late, _ := h.enrolIn(t, "office-late", true, lateDir)
	for _, c := range []struct {
		db *store.DB
		cl *Client
	}{{early, cE}, {gate, cG}} {
		if _, err := PullOnce(ctx, c.db, c.cl); err != nil {
			t.Fatal(err)
		}
	}
	for name, db := range map[string]*store.DB{"early office": early, "late office": late} {
		d, err := db.District(ctx)
		if err != nil || !bytes.Equal(d.CityPseudonymKey, key) {
			t.Errorf("%s holds no city key (%v)", name, err)
		}
	}
	if d, err := gate.District(ctx); err != nil || d.CityPseudonymKey != nil {
		t.Fatalf("the gate holds a city key (%v)", err)
	}
	// A gate that asks as if it held another key is still sent nothing.
	if k, err := cityKeyFor(ctx, h.db, store.ApplianceGate, []byte("12345678")); err != nil || k != nil {
		t.Fatalf("a gate was sent %x (%v)", k, err)
	}
	if _, err := gate.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); !errors.Is(err, store.ErrGate) {
		t.Fatalf("import at a gate: %v", err)
	}
	if d, err := gate.District(ctx); err != nil || d.CityPseudonymKey != nil {
		t.Fatalf("the gate holds a city key after a refused import (%v)", err)
	}
	gate.Close()
	if err := filepath.WalkDir(gateDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, key) {
			t.Errorf("%s holds the city key", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// An office imports no key of its own; its refusal is audited.
	if _, err := early.ImportCityPseudonymKey(ctx, file, check, "cli:admin"); !errors.Is(err, store.ErrNotHub) {
		t.Fatalf("import at an office: %v", err)
	}
	refused := false
	if err := early.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		refused = refused || r.Action == store.AuditCityKeyRefused
		return nil
	}); err != nil || !refused {
		t.Fatalf("refusal not audited (%v)", err)
	}
}

// A link an office makes when a person of its own moves to the city
// subject reaches the hub, so a status change made at the hub and the
// hub's city traces follow it; a link naming a person the office did not
// register, or sent by a gate, is refused and audited, and the record
// that carried it is kept.
func TestCityKey_LinksReachTheHub(t *testing.T) {
	ctx := t.Context()
	h := newPushHub(t)
	key := make([]byte, pass.CityKeyLen)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	file, _ := pass.MarshalCityKey(key)
	office, cO := h.enrolIn(t, "office-1", true, t.TempDir())
	gate, cG := h.enrolIn(t, "gate-1", false, t.TempDir())
	const id, victimID = "11010519491231002X", "E98765432"
	if _, err := district.Issue(ctx, office, district.IssueRequest{Name: "张三明", IDNumber: id, TestedAt: time.Now().Add(-time.Hour), Actor: "desk"}); err != nil {
		t.Fatal(err)
	}
	victim, err := district.Issue(ctx, h.db, district.IssueRequest{Name: "李四", IDNumber: victimID, TestedAt: time.Now().Add(-time.Hour), Actor: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, office, cO)
	if _, err := h.db.ImportCityPseudonymKey(ctx, file, pass.FormatCityKeyCheck(pass.CityKeyCheck(key)), "cli:admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := PullOnce(ctx, office, cO); err != nil {
		t.Fatal(err)
	}
	if _, _, err := district.Register(ctx, office, district.RegisterRequest{Name: "张三明", IDType: store.IDMainland, IDNumber: id, Actor: "desk"}); err != nil {
		t.Fatal(err)
	}
	subs, err := district.SubjectsOf(ctx, office, id)
	if err != nil || len(subs) != 2 {
		t.Fatal(subs, err)
	}
	// Forged links: the office's to the hub's person, the gate's.
	forge := func(db *store.DB) {
		t.Helper()
		if err := db.Audit(ctx, &store.AuditRecord{Actor: "desk", Action: store.AuditSubjectLinked, Subject: hex.EncodeToString(subs[0][:]),
			Detail: store.AuditDetail(map[string]any{"district_subject": hex.EncodeToString(victim.Claims.Subject[:])})}); err != nil {
			t.Fatal(err)
		}
	}
	forge(office)
	forge(gate)
	drain(t, office, cO)
	drain(t, gate, cG)

	linked, err := h.db.LinkedSubjects(ctx, subs[0])
	if err != nil || len(linked) != 1 || linked[0] != subs[1] {
		t.Fatalf("hub links of the city subject: %x (%v), want only %x", linked, err, subs[1])
	}
	refused := 0
	if err := h.db.FindAudit(ctx, store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == store.AuditRecordRefused && bytes.Contains(r.Detail, []byte("subject link")) {
			refused++
		}
		return nil
	}); err != nil || refused != 2 {
		t.Fatalf("%d link refusals audited (%v), want 2", refused, err)
	}
	// The hub's admin turns the person red by the city subject: the
	// district subject's passes are voided too, the victim's are not.
	if _, err := h.db.SetStatus(ctx, subs[0], pass.Red, "positive test", "admin"); err != nil {
		t.Fatal(err)
	}
	revoked := map[pass.Subject]bool{}
	revs, err := h.db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if r.Kind == store.RevokeSubject {
			var s pass.Subject
			copy(s[:], r.Target)
			revoked[s] = true
		}
	}
	if !revoked[subs[0]] || !revoked[subs[1]] || revoked[victim.Claims.Subject] {
		t.Fatalf("revoked %v", revoked)
	}
}
