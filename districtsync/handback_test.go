package districtsync

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// A hub restored from an older backup while its gates check and push:
// the revocations it made after the backup (a person coded red, a pass
// revoked, an office retired and its key revoked) come back to it from
// the gates, once each and with their own time; every gate goes on
// denying them, a gate enrolled after the restore denies them too, and
// the hub's desk does not issue the red-coded person a pass from its
// out-of-date register.
func TestHubRestore_TakesBackLostRevocations(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h := newEnrHub(t)
	issue := func(db *store.DB, name, id string) *district.Issued {
		t.Helper()
		p, err := district.Issue(ctx, db, district.IssueRequest{Name: name, IDNumber: id,
			TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	office := enrolled(t, h, "office-1", true)
	if _, err := PullOnce(ctx, office, clientOf(t, office)); err != nil {
		t.Fatal(err)
	}
	red, lost, fine := issue(h.db, "张三明", "610113199001011230"), issue(h.db, "李四", "P1234567"), issue(h.db, "赵六", "P1111111")
	byOffice := issue(office, "钱七", "P2222222")
	officeKey, err := office.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}

	gates, load := startRestoreGates(t, ctx, h, fine)
	defer load.Wait()
	defer cancel()
	waitDenied(t, gates, byOffice, "") // the office's key arrived
	backup := filepath.Join(t.TempDir(), "hub.db")
	if err := h.db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	before, err := h.db.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := district.SetStatus(ctx, h.db, "610113199001011230", pass.Red, "positive", "hubadmin"); err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: lost.Claims.ID[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.RetireAppliance(ctx, "office-1", "stolen", "hubadmin"); err != nil {
		t.Fatal(err)
	}
	waitDenied(t, gates, red, check.ReasonRevoked)
	waitDenied(t, gates, lost, check.ReasonRevoked)
	waitDenied(t, gates, byOffice, check.ReasonIssuerRevoked)
	last := int64(0)
	if len(before) > 0 {
		last = before[len(before)-1].Seq
	}
	made, err := h.db.RevocationsSince(ctx, last)
	if err != nil || len(made) != 3 {
		t.Fatalf("revocations made after the backup: %d, %v", len(made), err)
	}

	h.reopen(t, backup)
	// The hub lists them again, each once, with its own time.
	deadline := time.Now().Add(20 * time.Second)
	for {
		held, err := h.db.RevocationsSince(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, m := range made {
			n := 0
			for _, r := range held {
				if r.Kind == m.Kind && bytes.Equal(r.Target, m.Target) && r.Before.Equal(m.Before) {
					n++
					if !r.At.Equal(m.At) || r.Reason != m.Reason {
						t.Errorf("revocation %x taken back as %v %q, made %v %q", m.Target, r.At, r.Reason, m.At, m.Reason)
					}
				}
			}
			if n > 1 {
				t.Fatalf("revocation %x held %d times at the hub", m.Target, n)
			}
			if n == 0 {
				missing++
			}
		}
		if missing == 0 {
			if len(held) != len(before)+len(made) {
				t.Fatalf("hub holds %d revocations, want %d", len(held), len(before)+len(made))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restore the hub still lacks %d of the %d revocations made after its backup", missing, len(made))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := auditCount(t, h.db, store.AuditRevocationsRestored); n == 0 {
		t.Error("no audit record of the revocations taken back")
	}
	if n := auditCount(t, h.db, store.AuditRestoreRefused); n != 0 {
		t.Errorf("%d refusals of what honest gates handed back", n)
	}
	keys, err := h.db.FindKeys(ctx, store.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.KID == officeKey.KID && k.RevokedAt.IsZero() {
			t.Error("the retired office's key is not revoked again at the hub")
		}
	}

	// Every gate still denies them; one enrolled after the restore too.
	for _, p := range []*district.Issued{red, lost} {
		waitDenied(t, gates, p, check.ReasonRevoked)
	}
	waitDenied(t, gates, byOffice, check.ReasonIssuerRevoked)
	late := enrolled(t, h, "gate-late", false)
	if _, err := PullOnce(ctx, late, clientOf(t, late)); err != nil {
		t.Fatal(err)
	}
	chk, err := check.New(ctx, check.Config{DB: late})
	if err != nil {
		t.Fatal(err)
	}
	defer chk.Close()
	for _, c := range []struct {
		p    *district.Issued
		want check.Reason
	}{{red, check.ReasonRevoked}, {lost, check.ReasonRevoked}, {byOffice, check.ReasonIssuerRevoked}, {fine, check.ReasonOK}} {
		if d := chk.Evaluate(c.p.Text, time.Now()); d.Reason != c.want {
			t.Errorf("gate enrolled after the restore: %s gives %s, want %s", c.p.Person.MaskedName, d.Reason, c.want)
		}
	}

	// The hub's register still says green (the status change is not
	// handed back): its desk refuses to issue from it.
	_, err = district.Issue(ctx, h.db, district.IssueRequest{Name: "张三明", IDNumber: "610113199001011230", Doses: -1, Actor: "desk"})
	var elsewhere *district.StatusElsewhereError
	if !errors.As(err, &elsewhere) {
		t.Errorf("hub desk issued to a person whose red code was taken back: %v", err)
	}
}
