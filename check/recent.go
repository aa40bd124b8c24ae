package check

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"

	"passgate/pass"
)

// maxRecent bounds the in-memory repeat set: at most 32 MB when full
// (16-byte slots, more than half of them in use). Past it, expired entries
// are swept; if that is not enough the set starts over and the scan log
// answers for what was dropped.
const maxRecent = 1 << 20

// recentMinSlots is the size of an empty set's table (16 KB).
const recentMinSlots = 1024

// recentSlot is one pass and when it was last checked. The time is in
// milliseconds after the table's base: 32 bits reach 49 days, far beyond
// the longest repeat window, so a slot is 16 bytes and holds no pointer
// (the garbage collector never scans the table).
type recentSlot struct {
	id pass.ID // the zero ID marks an empty slot; a verified pass never has it
	t  uint32
}

// recentSet remembers when this process last checked each pass, in an
// open-addressing table with linear probing. It is authoritative, so a
// miss needs no query, except while the window is being loaded from the
// log at start (loading) and until lookupUntil: after a reset, a longer
// window or another process's write, checks that the set cannot know
// about may lie up to one window back, and a miss must be confirmed in
// the scan log.
type recentSet struct {
	mu          sync.Mutex
	slots       []recentSlot
	n           int    // slots in use
	base        int64  // Unix ms that slot times count from
	seed        uint64 // per-process hash seed: pass IDs are chosen by issuers
	loading     bool
	lookupUntil int64 // Unix ms
}

func (r *recentSet) init() {
	r.slots = make([]recentSlot, recentMinSlots)
	r.n = 0
	r.seed = rand.Uint64()
	r.base = math.MinInt64 // set by the first time stored
}

// index is where the probe for id starts.
func (r *recentSet) index(id pass.ID) int {
	h := binary.LittleEndian.Uint64(id[:8]) ^ r.seed
	h = (h ^ h>>31) * 0x9e3779b97f4a7c15
	h ^= uint64(binary.LittleEndian.Uint32(id[8:])) * 0xbf58476d1ce4e5b9
	h ^= h >> 29
	i, _ := bits.Mul64(h, uint64(len(r.slots)))
	return int(i)
}

// find returns the slot holding id, or the empty slot where it belongs.
func (r *recentSet) find(id pass.ID) *recentSlot {
	for i := r.index(id); ; {
		s := &r.slots[i]
		if s.id == id || s.id.IsZero() {
			return s
		}
		if i++; i == len(r.slots) {
			i = 0
		}
	}
}

// at is the Unix ms a slot in use records.
func (r *recentSet) at(s *recentSlot) int64 { return r.base + int64(s.t) }

// fit makes ms representable, moving the base if it is not; entries the
// new base cannot represent are weeks away from ms and dropped.
func (r *recentSet) fit(ms int64) {
	if r.base != math.MinInt64 && ms >= r.base && ms-r.base <= math.MaxUint32 {
		return
	}
	base := ms - 1<<31
	r.rebuild(len(r.slots), base, func(at int64) bool { return at >= base && at-base <= math.MaxUint32 })
}

// rebuild moves the entries keep accepts into a table of size slots
// counting time from base.
func (r *recentSet) rebuild(size int, base int64, keep func(at int64) bool) {
	old, oldBase := r.slots, r.base
	r.slots, r.n, r.base = make([]recentSlot, size), 0, base
	for i := range old {
		s := &old[i]
		if s.id.IsZero() {
			continue
		}
		at := oldBase + int64(s.t)
		if keep(at) {
			*r.find(s.id) = recentSlot{id: s.id, t: uint32(at - base)}
			r.n++
		}
	}
}

// insert stores id at ms in the empty slot s that find returned, growing
// the table by half when it is four fifths full (so it stays more than
// half full: at most 30 bytes per pass; linear probing stays short).
func (r *recentSet) insert(s *recentSlot, id pass.ID, ms int64) {
	*s = recentSlot{id: id, t: uint32(ms - r.base)}
	if r.n++; r.n > len(r.slots)*4/5 {
		r.rebuild(len(r.slots)*3/2, r.base, func(int64) bool { return true })
	}
}

// check reports whether id was checked at or after since (repeat), and
// whether a miss must be confirmed in the log (confirm); it records now.
// Both happen under one lock, so of two concurrent checks of the same pass
// exactly one is the first.
func (r *recentSet) check(id pass.ID, now time.Time, window time.Duration) (repeat, confirm bool) {
	if id.IsZero() {
		return false, true
	}
	nowMS, sinceMS := now.UnixMilli(), now.Add(-window).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fit(nowMS)
	s := r.find(id)
	ok := !s.id.IsZero()
	var last int64
	if ok {
		last = r.at(s)
	} else if r.n >= maxRecent {
		r.rebuild(len(r.slots), r.base, func(at int64) bool { return at >= sinceMS })
		if r.n >= maxRecent {
			r.rebuild(recentMinSlots, r.base, func(int64) bool { return false })
			r.lookupUntil = max(r.lookupUntil, nowMS+window.Milliseconds())
		}
		s = r.find(id)
	}
	switch {
	case !ok:
		r.insert(s, id, nowMS)
	case nowMS > last:
		s.t = uint32(nowMS - r.base)
	}
	repeat = ok && last >= sinceMS
	return repeat, !repeat && (r.loading || nowMS < r.lookupUntil)
}

// distrust makes misses be confirmed in the log until t.
func (r *recentSet) distrust(until time.Time) {
	r.mu.Lock()
	r.lookupUntil = max(r.lookupUntil, until.UnixMilli())
	r.mu.Unlock()
}

// setLoading makes misses be confirmed in the log while the window is
// being loaded (on), or no longer for that reason (off).
func (r *recentSet) setLoading(on bool) {
	r.mu.Lock()
	r.loading = on
	r.mu.Unlock()
}

// remember records a check at t, e.g. one found in the log at start. A
// full set takes no more: the loader then reports the window incomplete.
func (r *recentSet) remember(id pass.ID, t time.Time) {
	if id.IsZero() {
		return
	}
	ms := t.UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.base == math.MinInt64 {
		r.fit(ms)
	} else if ms < r.base || ms-r.base > math.MaxUint32 {
		return // weeks away from the checks the set holds: outside any window
	}
	s := r.find(id)
	switch {
	case s.id.IsZero():
		if r.n < maxRecent {
			r.insert(s, id, ms)
		}
	case ms > r.at(s):
		s.t = uint32(ms - r.base)
	}
}

// size is how many passes the set holds.
func (r *recentSet) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
