package districtsync

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

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
