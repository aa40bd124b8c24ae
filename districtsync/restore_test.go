package districtsync

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// restoreGate is an appliance of TestHubRestore: its database, its
// checker and its sync loop, running.
type restoreGate struct {
	db  *store.DB
	chk *check.Checker
}

// A hub restored from an older backup while its appliances push scans:
// every appliance goes on enforcing what the hub made before the restore
// and takes up what it makes after within seconds, reads the whole feed
// again and says so, and stores no revocation twice.
func TestHubRestore_AppliancesKeepAndTakeRevocations(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h := newEnrHub(t)
	issue := func(name, id string) *district.Issued {
		t.Helper()
		p, err := district.Issue(ctx, h.db, district.IssueRequest{Name: name, IDNumber: id,
			TestedAt: time.Now().Add(-time.Hour), Doses: 2, Actor: "desk"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	red, lost, later, fine := issue("张三明", "610113199001011230"), issue("李四", "P1234567"),
		issue("王五", "P7654321"), issue("赵六", "P1111111")

	gates, load := startRestoreGates(t, ctx, h, fine)
	defer load.Wait()
	defer cancel()
	waitDenied(t, gates, fine, "") // the lists arrived: the pass checks
	backup := filepath.Join(t.TempDir(), "hub.db")
	if err := h.db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	// After the backup: a person coded red, a pass revoked. Every
	// appliance takes them.
	if _, err := district.SetStatus(ctx, h.db, "610113199001011230", pass.Red, "positive", "hubadmin"); err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: lost.Claims.ID[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	waitDenied(t, gates, red, check.ReasonRevoked)
	waitDenied(t, gates, lost, check.ReasonRevoked)
	held := make([]int, len(gates))
	for i, g := range gates {
		revs, _ := g.db.RevocationsSince(ctx, 0)
		held[i] = len(revs)
	}

	// The hub is restored from the backup and restarted; then a new
	// revocation is made there.
	h.reopen(t, backup)
	if _, err := district.SetStatus(ctx, h.db, "P7654321", pass.Red, "positive", "hubadmin"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitDenied(t, gates, later, check.ReasonRevoked)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the new revocation took %v to reach every appliance", took)
	}
	for i, g := range gates {
		if err := g.chk.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*district.Issued{red, lost} {
			if d, _ := g.chk.Check(ctx, "gate", p.Text); d.Allowed() || d.Reason != check.ReasonRevoked {
				t.Errorf("appliance %d after the restore: revoked pass %s allowed (%s)", i, p.Person.MaskedName, d.Reason)
			}
		}
		// One more revocation held (the new one), none twice.
		revs, _ := g.db.RevocationsSince(ctx, 0)
		seen := map[string]int{}
		for _, r := range revs {
			seen[string(r.Target)+r.Reason]++
		}
		if len(revs) != held[i]+1 {
			t.Errorf("appliance %d holds %d revocations, want %d", i, len(revs), held[i]+1)
		}
		for k, n := range seen {
			if n > 1 {
				t.Errorf("appliance %d holds revocation %x %d times", i, k, n)
			}
		}
		st, _ := g.db.SyncStatus(ctx)
		if st.HistoryChangedAt.IsZero() {
			t.Errorf("appliance %d does not say its hub's history changed", i)
		}
		if n := auditCount(t, g.db, store.AuditFeedReread); n != 1 {
			t.Errorf("appliance %d: %d re-read records, want 1", i, n)
		}
	}
}

// startRestoreGates enrols two gates with h, runs their sync loops and
// has each check pass p every 20 ms until ctx ends: scans to push all
// along.
func startRestoreGates(t *testing.T, ctx context.Context, h *enrHub, p *district.Issued) ([]*restoreGate, *sync.WaitGroup) {
	t.Helper()
	var gates []*restoreGate
	load := &sync.WaitGroup{}
	for _, name := range []string{"gate-1", "gate-2"} {
		db := enrolled(t, h, name, false)
		s, err := NewSyncer(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		go s.Run(ctx)
		chk, err := check.New(ctx, check.Config{DB: db})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(chk.Close)
		gates = append(gates, &restoreGate{db: db, chk: chk})
		// Scans all along, pushed to the hub by the sync loop.
		load.Add(1)
		go func() {
			defer load.Done()
			for ctx.Err() == nil {
				if _, err := chk.Check(ctx, name, p.Text); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return gates, load
}

// waitDenied waits, at most 15 s, until every gate's checker gives p
// reason want (0: allows it).
func waitDenied(t *testing.T, gates []*restoreGate, p *district.Issued, want check.Reason) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i, g := range gates {
		for {
			if err := g.chk.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			d := g.chk.Evaluate(p.Text, time.Now())
			if (want == "" && d.Allowed()) || (want != "" && d.Reason == want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("appliance %d: %s gives %s %s, want %q", i, p.Person.MaskedName, d.Decision, d.Reason, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
