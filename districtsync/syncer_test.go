package districtsync

import (
	"context"
	"errors"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	var b backoff
	for i := range 40 {
		d := b.next()
		limit := min(backoffMin<<min(i, 10), backoffMax)
		if d <= 0 || d > limit {
			t.Fatalf("attempt %d: %v outside (0, %v]", i, d, limit)
		}
	}
	b.reset()
	if d := b.next(); d > backoffMin {
		t.Fatalf("after reset: %v", d)
	}
}

func TestSyncer_RunAndStatus(t *testing.T) {
	ctx := t.Context()
	h := newEnrHub(t)
	app := enrolled(t, h, "gate-s", false)
	if _, err := NewSyncer(h.db, nil); !errors.Is(err, store.ErrNotEnrolled) {
		t.Fatalf("syncer on the hub: %v", err)
	}
	s, err := NewSyncer(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Run(rctx) }()
	defer func() { cancel(); <-done }()

	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s; status %+v", what, s.Status())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A revocation at the hub reaches the appliance through the loop.
	pid := pass.ID{7, 7}
	if err := h.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: pid[:], Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitUntil("revocation pulled", func() bool {
		revs, _ := app.RevocationsSince(ctx, 0)
		return len(revs) == 1
	})
	if d := time.Since(start); d > PullEvery+time.Second {
		t.Fatalf("revocation took %v", d)
	}
	st := s.Status()
	if !st.Running || st.LastPull.IsZero() || st.Appliance != "gate-s" || st.Retired {
		t.Fatalf("status %+v", st)
	}
	// Retired: the loop keeps running and says so.
	if _, err := h.db.RetireAppliance(ctx, "gate-s", "", "t"); err != nil {
		t.Fatal(err)
	}
	waitUntil("retired seen", func() bool { return s.Status().Retired })
	cancel()
	<-done
	if s.Status().Running {
		t.Fatal("status says running after Run returned")
	}
}
