package scanner

import (
	"sync"
	"time"

	"passgate/pass"
)

// maxRecent bounds the in-memory repeat set. Past it, expired entries are
// swept; if that is not enough the set starts over and the scan log answers
// for what was dropped, so memory stays bounded under any load.
const maxRecent = 1 << 17

// recentSet remembers when passes were last checked by this process.
type recentSet struct {
	mu sync.Mutex
	m  map[pass.ID]time.Time
}

func (r *recentSet) init() { r.m = make(map[pass.ID]time.Time) }

// seen reports whether id was checked at or after since, and records now.
// Check and record happen under one lock, so of two concurrent checks of
// the same pass exactly one is the first.
func (r *recentSet) seen(id pass.ID, now, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.m[id]
	if !ok && len(r.m) >= maxRecent {
		for k, t := range r.m {
			if t.Before(since) {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxRecent {
			clear(r.m)
		}
	}
	if !ok || now.After(last) {
		r.m[id] = now
	}
	return ok && !last.Before(since)
}
