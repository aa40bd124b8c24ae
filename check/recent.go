package check

import (
	"sync"
	"time"

	"passgate/pass"
)

// maxRecent bounds the in-memory repeat set: about 50 MB when full. Past
// it, expired entries are swept; if that is not enough the set starts over
// and the scan log answers for what was dropped.
const maxRecent = 1 << 20

// recentSet remembers when this process last checked each pass. It is
// authoritative, so a miss needs no query, except until lookupUntil: after
// a start, a reset, a longer window or another process's write, checks
// that the set cannot know about may lie up to one window back, and a miss
// must be confirmed in the scan log.
type recentSet struct {
	mu          sync.Mutex
	m           map[pass.ID]int64 // Unix ms of the latest check
	lookupUntil int64             // Unix ms
}

func (r *recentSet) init() { r.m = make(map[pass.ID]int64) }

// check reports whether id was checked at or after since (repeat), and
// whether a miss must be confirmed in the log (confirm); it records now.
// Both happen under one lock, so of two concurrent checks of the same pass
// exactly one is the first.
func (r *recentSet) check(id pass.ID, now time.Time, window time.Duration) (repeat, confirm bool) {
	nowMS, sinceMS := now.UnixMilli(), now.Add(-window).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.m[id]
	if !ok && len(r.m) >= maxRecent {
		for k, t := range r.m {
			if t < sinceMS {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxRecent {
			clear(r.m)
			r.lookupUntil = max(r.lookupUntil, nowMS+window.Milliseconds())
		}
	}
	if !ok || nowMS > last {
		r.m[id] = nowMS
	}
	repeat = ok && last >= sinceMS
	return repeat, !repeat && nowMS < r.lookupUntil
}

// distrust makes misses be confirmed in the log until t.
func (r *recentSet) distrust(until time.Time) {
	r.mu.Lock()
	r.lookupUntil = max(r.lookupUntil, until.UnixMilli())
	r.mu.Unlock()
}

// remember records a check at t, e.g. one found in the log at start.
func (r *recentSet) remember(id pass.ID, t time.Time) {
	ms := t.UnixMilli()
	r.mu.Lock()
	if ms > r.m[id] {
		r.m[id] = ms
	}
	r.mu.Unlock()
}
