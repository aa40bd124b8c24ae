package citylink_test

import (
	"context"
	"crypto/rand"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"passgate/internal/natstest"
	"passgate/store"
)

// TestCityScale_ThirteenDistricts runs the real link of 13 district
// hubs (one SQLite store each) against one three-node cluster on this
// machine: a revocation made at one hub reaches every other hub's
// revocations table, p99 within 10 s; then a burst measures the
// publish and consume rates and the stream's bytes per revocation. Set
// PASSGATE_CITY_SCALE=1 to run it (it takes the machine for a minute).
func TestCityScale_ThirteenDistricts(t *testing.T) {
	if os.Getenv("PASSGATE_CITY_SCALE") == "" {
		t.Skip("set PASSGATE_CITY_SCALE=1 to measure the city on this machine")
	}
	const districts, rounds = 13, 26
	var hubs []*hub
	var ids []string
	for range districts {
		db, dir, id := newStore(t)
		t.Cleanup(func() { db.Close() })
		hubs = append(hubs, &hub{id: id, dir: dir, db: db})
		ids = append(ids, id)
	}
	c := natstest.Start(t, ids...)
	for _, h := range hubs {
		h.start(t, c)
	}
	t.Cleanup(func() {
		for _, h := range hubs {
			h.halt()
		}
	})

	var lat []time.Duration
	var mu sync.Mutex
	for r := range rounds {
		from := hubs[r%districts]
		made := time.Now()
		target := revokePass(t, from.db)
		var wg sync.WaitGroup
		for _, h := range hubs {
			if h == from {
				continue
			}
			wg.Go(func() {
				for countTarget(t, h.db, target) == 0 {
					if time.Since(made) > 30*time.Second {
						t.Errorf("%s never got %x", h.id, target)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				mu.Lock()
				lat = append(lat, time.Since(made))
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	t.Logf("FIGURE %d districts, %d revocations, %d deliveries: p50 %v p99 %v max %v",
		districts, rounds, len(lat), p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if p(0.99) > 10*time.Second {
		t.Errorf("p99 %v over 10 s", p(0.99))
	}

	// A burst at one hub: how fast the stream takes it, and how fast
	// another hub stores it.
	const burst = 2000
	ctx := context.Background()
	from, to := hubs[0], hubs[1]
	before, err := to.db.CityLinkState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from.halt() // the burst is made first, so the rates are the link's own
	start := time.Now()
	for range burst {
		id := make([]byte, 12)
		rand.Read(id)
		if err := from.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokePass, Target: id, Reason: "burst"}); err != nil {
			t.Fatal(err)
		}
	}
	made := time.Since(start)
	start = time.Now()
	from.start(t, c)
	waitState := func(h *hub, ok func(*store.CityLinkState) bool) time.Duration {
		for {
			st, err := h.db.CityLinkState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok(st) {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Minute {
				t.Fatalf("%s: %+v", h.id, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	published := waitState(from, func(s *store.CityLinkState) bool { return s.Pending == 0 })
	stored := waitState(to, func(s *store.CityLinkState) bool { return s.Taken >= before.Taken+burst })
	all := waitState(hubs[districts-1], func(s *store.CityLinkState) bool { return s.Taken >= before.Taken+burst })
	info, err := c.Stream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE burst of %d revocations (made in %v, link stopped) then link started: published (acknowledged, R3) after %v = %.0f/s; stored at another hub after %v = %.0f/s; at the 13th after %v",
		burst, made.Round(time.Millisecond), published.Round(time.Millisecond), burst/published.Seconds(),
		stored.Round(time.Millisecond), burst/stored.Seconds(), all.Round(time.Millisecond))
	t.Logf("FIGURE stream: %d messages, %d bytes, %.0f bytes per pass revocation (per replica; x3 on the cluster)",
		info.State.Msgs, info.State.Bytes, float64(info.State.Bytes)/float64(info.State.Msgs))

	// Status changes: each voids a person's earlier passes by a subject
	// revocation with its cut-off.
	const changes = 200
	for range changes {
		subject := make([]byte, 16)
		rand.Read(subject)
		if err := from.db.CreateRevocation(ctx, &store.Revocation{Kind: store.RevokeSubject, Target: subject, Reason: "status red"}); err != nil {
			t.Fatal(err)
		}
	}
	waitState(from, func(s *store.CityLinkState) bool { return s.Pending == 0 })
	after, err := c.Stream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE stream: %.0f bytes per status change (subject revocation with cut-off, per replica)",
		float64(after.State.Bytes-info.State.Bytes)/float64(after.State.Msgs-info.State.Msgs))
}
