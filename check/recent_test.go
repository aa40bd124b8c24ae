package check_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"passgate/check"
	"passgate/internal/checktest"
	"passgate/pass"
	"passgate/store"
)

// logSeen logs an allowed scan of each claims' pass at t, as a gate did
// before a restart.
func logSeen(t testing.TB, f *checktest.District, at time.Time, claims []pass.Claims) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(claims))
	sem := make(chan struct{}, 64) // concurrent, so the writer groups them
	for _, c := range claims {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- f.DB.LogScan(f.Ctx, &store.Scan{At: at, Source: "gate-1", Decision: string(check.Allow), Reason: "ok", PassID: c.ID, Subject: c.Subject})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// claimsWithNewIDs returns n copies of f's claims, each a different pass.
func claimsWithNewIDs(t testing.TB, f *checktest.District, n int) []pass.Claims {
	t.Helper()
	out := make([]pass.Claims, n)
	for i := range out {
		out[i] = f.Claims()
		if _, err := rand.Read(out[i].ID[:]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// After a restart the checker answers before the repeat window is read
// from the log, and still flags a repeat: until the load is done a miss is
// confirmed in the log. Once loaded, the set knows the window.
func TestCheck_RepeatSetLoadsInBackground(t *testing.T) {
	f := checktest.New(t)
	seen := claimsWithNewIDs(t, f, 3000)
	logSeen(t, f, f.Now.Add(-2*time.Minute), seen)

	hold := make(chan struct{})
	now := f.Now
	c, err := check.NewHeld(f.Ctx, check.Config{DB: f.DB, Now: func() time.Time { return now }}, hold)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Check(f.Ctx, "gate-1", f.Sign(seen[0]))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.RepeatSetLoaded():
		t.Fatal("repeat set loaded while its load was held")
	default:
	}
	if !d.Repeat || !d.Allowed() {
		t.Fatalf("before the load: repeat=%v allowed=%v, want a repeat that is allowed", d.Repeat, d.Allowed())
	}
	if d, _ := c.Check(f.Ctx, "gate-1", f.Sign(f.Claims())); d.Repeat {
		t.Fatal("before the load: a new pass flagged as repeat")
	}

	close(hold)
	select {
	case <-c.RepeatSetLoaded():
	case <-time.After(30 * time.Second):
		t.Fatal("repeat set never loaded")
	}
	if err := c.RepeatSetErr(); err != nil {
		t.Fatal(err)
	}
	if n := c.RepeatSetSize(); n < len(seen)+1 {
		t.Fatalf("repeat set holds %d passes, want %d or more", n, len(seen)+1)
	}
	now = now.Add(time.Minute)
	for _, i := range []int{1, len(seen) / 2, len(seen) - 1} {
		if d, _ := c.Check(f.Ctx, "gate-1", f.Sign(seen[i])); !d.Repeat {
			t.Fatalf("after the load: pass %d checked 3 minutes ago not flagged", i)
		}
	}
	if d, _ := c.Check(f.Ctx, "gate-1", f.Sign(f.Claims())); d.Repeat {
		t.Fatal("after the load: a new pass flagged as repeat")
	}
}

// A load that fails (here: its context ends first) leaves the checker
// confirming misses in the log for a window, so repeats are still found.
func TestCheck_RepeatSetLoadFails(t *testing.T) {
	f := checktest.New(t)
	seen := claimsWithNewIDs(t, f, 10)
	logSeen(t, f, f.Now.Add(-time.Minute), seen)

	ctx, cancel := context.WithCancel(f.Ctx)
	hold := make(chan struct{})
	c, err := check.NewHeld(ctx, check.Config{DB: f.DB, Now: func() time.Time { return f.Now }}, hold)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	close(hold)
	<-c.RepeatSetLoaded()
	if c.RepeatSetErr() == nil {
		t.Fatal("a load on an ended context reported no error")
	}
	if d, _ := c.Check(f.Ctx, "gate-1", f.Sign(seen[3])); !d.Repeat {
		t.Fatal("after a failed load: a repeat in the log not flagged")
	}
}

// TestRepeatSetRestartMeasure fills the repeat window with millions of
// scans (PASSGATE_REPEAT_N, 4,000,000 by default), then measures a
// restart: opening the store and the checker until the first check is
// answered, and until the window is loaded. It reports, it does not
// assert: timings depend on the machine, so it runs only with
// PASSGATE_REPEAT_BENCH=1.
func TestRepeatSetRestartMeasure(t *testing.T) {
	if os.Getenv("PASSGATE_REPEAT_BENCH") != "1" {
		t.Skip("set PASSGATE_REPEAT_BENCH=1 to measure a restart with millions of scans in the repeat window")
	}
	n := 4_000_000
	if v, err := strconv.Atoi(os.Getenv("PASSGATE_REPEAT_N")); err == nil && v > 0 {
		n = v
	}
	f := checktest.New(t)
	// Distinct passes, a few scans each, as a busy gate logs them.
	start := time.Now()
	const chunk = 100_000
	for done := 0; done < n; done += chunk {
		cl := claimsWithNewIDs(t, f, min(chunk, n-done))
		logSeen(t, f, f.Now.Add(-time.Duration(done%240_000)*time.Millisecond), cl)
	}
	t.Logf("logged %d scans in %v", n, time.Since(start))
	dir := f.DB.Path()
	f.DB.Close()

	text := f.Sign(f.Claims())
	start = time.Now()
	db, err := store.Open(f.Ctx, filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Now = func() time.Time { return f.Now }
	c, err := check.New(f.Ctx, check.Config{DB: db, Now: func() time.Time { return f.Now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(f.Ctx, "gate-1", text); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(start)
	<-c.RepeatSetLoaded()
	loaded := time.Since(start)
	if err := c.RepeatSetErr(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart with %d scans in the window: first check answered after %v; window loaded (%d passes) after %v",
		n, ready, c.RepeatSetSize(), loaded)
	fmt.Fprintf(os.Stderr, "repeat restart: n=%d ready=%v loaded=%v\n", n, ready, loaded)
}

// Close ends a load still under way and returns only once it has
// stopped, so the store can be closed after it (serve's shutdown closes
// the store right after). Checks made after Close still find repeats.
func TestCheck_CloseStopsTheLoad(t *testing.T) {
	f := checktest.New(t)
	seen := claimsWithNewIDs(t, f, 10)
	logSeen(t, f, f.Now.Add(-time.Minute), seen)

	hold := make(chan struct{}) // never closed: only Close can end the load
	c, err := check.NewHeld(f.Ctx, check.Config{DB: f.DB, Now: func() time.Time { return f.Now }}, hold)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end a held load")
	}
	select {
	case <-c.RepeatSetLoaded():
	default:
		t.Fatal("Close returned while the load still ran")
	}
	if d, err := c.Check(f.Ctx, "gate-1", f.Sign(seen[3])); err != nil || !d.Repeat {
		t.Fatalf("after Close: repeat=%v err=%v, want the repeat found in the log", d != nil && d.Repeat, err)
	}
	c.Close() // twice is fine
}
