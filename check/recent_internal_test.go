package check

import (
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"passgate/pass"
)

func randomIDs(t testing.TB, n int) []pass.ID {
	ids := make([]pass.ID, n)
	for i := range ids {
		if _, err := rand.Read(ids[i][:]); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestRecentSetBytesPerPass measures what the repeat set costs per
// distinct pass, from the heap, at several fills up to its bound.
func TestRecentSetBytesPerPass(t *testing.T) {
	ids := randomIDs(t, maxRecent)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, n := range []int{100_000, 700_000, maxRecent} {
		before := heapInUse()
		var r recentSet
		r.init()
		for i, id := range ids[:n] {
			r.check(id, now.Add(time.Duration(i%300_000)*time.Millisecond), 5*time.Minute)
		}
		per := float64(heapInUse()-before) / float64(n)
		t.Logf("%d passes: %.1f bytes per pass", n, per)
		if per > 32 {
			t.Errorf("%d passes: %.1f bytes per pass, want at most 32", n, per)
		}
		if r.size() != n {
			t.Fatalf("set holds %d passes, want %d", r.size(), n)
		}
		runtime.KeepAlive(&r)
	}
}

// The table behaves as the map it replaced: every pass it holds is found
// with its latest time, through growth, sweeps and a moved base.
func TestRecentSetBehaviour(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	const window = 5 * time.Minute
	ids := randomIDs(t, 5000)
	var r recentSet
	r.init()
	for _, id := range ids {
		if rep, confirm := r.check(id, now, window); rep || confirm {
			t.Fatalf("first check: repeat=%v confirm=%v", rep, confirm)
		}
	}
	for _, id := range ids {
		if rep, _ := r.check(id, now.Add(window), window); !rep {
			t.Fatal("second check within the window not a repeat")
		}
	}
	if rep, _ := r.check(ids[0], now.Add(2*window+time.Millisecond), window); rep {
		t.Fatal("repeat after the window")
	}
	// An older time found in the log does not replace a newer check.
	r.remember(ids[1], now.Add(-time.Hour))
	if rep, _ := r.check(ids[1], now.Add(2*window), window); !rep {
		t.Fatal("remember of an older time replaced the latest check")
	}
	// The zero ID (no pass) is never held: the log must answer.
	if rep, confirm := r.check(pass.ID{}, now, window); rep || !confirm {
		t.Fatalf("zero id: repeat=%v confirm=%v", rep, confirm)
	}
	// A clock that jumps months moves the base; the set stays consistent.
	later := now.Add(90 * 24 * time.Hour)
	if rep, _ := r.check(ids[2], later, window); rep {
		t.Fatal("repeat after the clock moved 90 days")
	}
	if rep, _ := r.check(ids[2], later.Add(time.Second), window); !rep {
		t.Fatal("no repeat after the base moved")
	}
	if r.size() != 1 {
		t.Fatalf("%d passes survive a 90-day jump, want 1", r.size())
	}
	// While loading, misses are confirmed; hits are not.
	r.setLoading(true)
	if _, confirm := r.check(ids[3], later.Add(2*time.Second), window); !confirm {
		t.Fatal("miss while loading not confirmed")
	}
	if rep, confirm := r.check(ids[3], later.Add(3*time.Second), window); !rep || confirm {
		t.Fatalf("hit while loading: repeat=%v confirm=%v", rep, confirm)
	}
}

// At its bound the set sweeps expired passes; if all are recent it
// starts over and has misses confirmed for a window.
func TestRecentSetBound(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	const window = 5 * time.Minute
	ids := randomIDs(t, maxRecent+2)
	var r recentSet
	r.init()
	for i, id := range ids[:maxRecent] {
		at := now
		if i%2 == 0 {
			at = now.Add(-time.Hour) // expired by the time the set is full
		}
		r.check(id, at, window)
	}
	if _, confirm := r.check(ids[maxRecent], now, window); confirm {
		t.Fatal("a sweep that freed room made misses be confirmed")
	}
	if n := r.size(); n != maxRecent/2+1 {
		t.Fatalf("after the sweep %d passes, want %d", n, maxRecent/2+1)
	}
	if rep, _ := r.check(ids[1], now.Add(time.Second), window); !rep {
		t.Fatal("a recent pass was swept")
	}
	for _, id := range randomIDs(t, maxRecent/2) {
		r.check(id, now.Add(time.Second), window)
	}
	if _, confirm := r.check(ids[maxRecent+1], now.Add(2*time.Second), window); !confirm {
		t.Fatal("a set started over does not have misses confirmed")
	}
}

// BenchmarkRecentSetCheck is one check of the repeat set holding 1 M passes.
func BenchmarkRecentSetCheck(b *testing.B) {
	ids := randomIDs(b, maxRecent-1)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var r recentSet
	r.init()
	for _, id := range ids {
		r.check(id, now, 5*time.Minute)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.check(ids[i%len(ids)], now.Add(time.Minute), 5*time.Minute)
		i++
	}
}
