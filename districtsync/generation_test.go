package districtsync

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// reopen closes the hub's database and opens it again behind the same
// address, as a restarted hub; from a backup file when backup is not
// empty, as a hub restored from that backup.
func (h *enrHub) reopen(t *testing.T, backup string) {
	t.Helper()
	if err := h.db.Close(); err != nil {
		t.Fatal(err)
	}
	if backup != "" {
		path := filepath.Join(h.dir, store.FileName)
		for _, f := range []string{path + "-wal", path + "-shm"} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := store.Open(t.Context(), h.dir)
	if err != nil {
		t.Fatal(err)
	}
	h.db = db
	h.serve()
}

// auditCount counts the audit records of action in db.
func auditCount(t *testing.T, db *store.DB, action string) int {
	t.Helper()
	n := 0
	if err := db.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		if r.Action == action {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPull_SameGeneration_IncrementOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	app := enrolled(t, h, "gate-1", false)
	c := clientOf(t, app)
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	first, _ := app.FeedState(ctx)
	if len(first.Generation) != store.GenerationSize {
		t.Fatalf("generation after the first pull: %x", first.Generation)
	}
	pid := pass.ID{4, 4, 4}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: pid[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	res, err := PullOnce(ctx, app, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reread || res.HistoryChanged || res.Revocations != 1 {
		t.Fatalf("pull in the same generation: %+v", res)
	}
	st, _ := app.FeedState(ctx)
	if !bytes.Equal(st.Generation, first.Generation) || !st.HistoryChangedAt.IsZero() || st.RevocationsSeq <= first.RevocationsSeq {
		t.Fatalf("state after an increment: %+v", st)
	}
	if n := auditCount(t, app, store.AuditFeedReread); n != 0 {
		t.Fatalf("%d re-read records without a change of generation", n)
	}
}

func TestPull_NewGeneration_RereadsWholeFeed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	app := enrolled(t, h, "gate-1", false)
	c := clientOf(t, app)
	subject := pass.Subject{7, 7}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokeSubject, Target: subject[:], Reason: "red"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "hub.db")
	if err := h.db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	old, _ := h.db.Policy(ctx)
	// After the backup: a revocation and a policy the restored hub loses.
	pid := pass.ID{5, 5, 5}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: pid[:], Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	pol := *old
	pol.MinDoses = 3
	time.Sleep(2 * time.Millisecond)
	if err := h.db.ChangePolicy(ctx, &pol, "hubadmin"); err != nil {
		t.Fatal(err)
	}
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	before, _ := app.FeedState(ctx)

	h.reopen(t, backup)
	res, err := PullOnce(ctx, app, c)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reread || !res.HistoryChanged {
		t.Fatalf("pull after the hub's restore: %+v", res)
	}
	st, _ := app.FeedState(ctx)
	if bytes.Equal(st.Generation, before.Generation) || st.HistoryChangedAt.IsZero() {
		t.Fatalf("state after the restore: %+v", st)
	}
	// Read from the start: the hub's policy as it is now, older than
	// the one the appliance held.
	if p, _ := app.Policy(ctx); p.MinDoses != old.MinDoses || st.PolicyVersion != old.UpdatedAt.UnixMilli() {
		t.Fatalf("policy after the re-read: min doses %d, version %d; hub's %d, %d", p.MinDoses, st.PolicyVersion, old.MinDoses, old.UpdatedAt.UnixMilli())
	}
	// Nothing held is undone, nothing is stored twice.
	revs, _ := app.RevocationsSince(ctx, 0)
	if len(revs) != 2 {
		t.Fatalf("%d revocations at the appliance after the re-read, want 2", len(revs))
	}
	if n := auditCount(t, app, store.AuditFeedReread); n != 1 {
		t.Fatalf("%d re-read records, want 1", n)
	}
	if sync, _ := app.SyncStatus(ctx); !sync.HistoryChangedAt.Equal(st.HistoryChangedAt) {
		t.Fatalf("sync status: history changed at %v, want %v", sync.HistoryChangedAt, st.HistoryChangedAt)
	}
	// The next pull is an increment again.
	if res, err := PullOnce(ctx, app, c); err != nil || res.Reread {
		t.Fatalf("pull after the re-read: %+v, %v", res, err)
	}
}

func TestPull_PositionBeyondHubEnd_Rereads(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newEnrHub(t)
	app := enrolled(t, h, "gate-1", false)
	c := clientOf(t, app)
	if _, err := PullOnce(ctx, app, c); err != nil {
		t.Fatal(err)
	}
	st, _ := app.FeedState(ctx)
	// The appliance holds a revocation numbered past anything this hub
	// handed out, in the hub's own generation: the hub's history went
	// backwards without it knowing.
	far := pass.ID{6, 6, 6}
	if _, err := app.ApplyFeed(ctx, &store.Feed{Generation: st.Generation, RevocationsSeq: 1 << 60,
		Revocations: []*store.Revocation{{Seq: 1 << 60, Kind: store.RevokePass, Target: far[:], Reason: "x", At: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	res, err := PullOnce(ctx, app, c)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reread || !res.HistoryChanged {
		t.Fatalf("pull from beyond the hub's end: %+v", res)
	}
	after, _ := app.FeedState(ctx)
	_, end, _ := h.db.FeedGeneration(ctx)
	if after.RevocationsSeq > end || !bytes.Equal(after.Generation, st.Generation) {
		t.Fatalf("position %d after the re-read, hub's end %d", after.RevocationsSeq, end)
	}
	if revoked, _ := app.RevocationsSince(ctx, 0); len(revoked) != 1 || !bytes.Equal(revoked[0].Target, far[:]) {
		t.Fatalf("the revocation held is undone: %d held", len(revoked))
	}
}

func TestNeedsReread(t *testing.T) {
	t.Parallel()
	g1, g2 := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	for _, tc := range []struct {
		name             string
		st               store.FeedState
		resp             PullResponse
		restart, changed bool
	}{
		{"older hub", store.FeedState{Generation: g1, RevocationsSeq: 9}, PullResponse{}, false, false},
		{"same generation", store.FeedState{Generation: g1, RevocationsSeq: 9}, PullResponse{Generation: g1, RevocationsEnd: 9}, false, false},
		{"first generation", store.FeedState{RevocationsSeq: 9}, PullResponse{Generation: g1, RevocationsEnd: 9}, true, false},
		{"new generation", store.FeedState{Generation: g1, RevocationsSeq: 9}, PullResponse{Generation: g2, RevocationsEnd: 99}, true, true},
		{"beyond the end", store.FeedState{Generation: g1, RevocationsSeq: 10}, PullResponse{Generation: g1, RevocationsEnd: 9}, true, true},
		{"first, beyond the end", store.FeedState{RevocationsSeq: 10}, PullResponse{Generation: g1, RevocationsEnd: 9}, true, true},
	} {
		restart, changed := needsReread(&tc.st, &tc.resp)
		if restart != tc.restart || changed != tc.changed {
			t.Errorf("%s: restart %v changed %v, want %v %v", tc.name, restart, changed, tc.restart, tc.changed)
		}
	}
}
