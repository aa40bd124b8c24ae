package web

import (
	"sync"
	"time"
)

// loginThrottle counts login attempts per key (an account name or a client
// address) in a fixed window. It lives in memory only: a restart forgets
// the counts, which costs an attacker a reboot of the appliance per window
// and keeps the database free of a write per failed guess.
type loginThrottle struct {
	mu     sync.Mutex
	limit  int           // attempts allowed per window
	window time.Duration // how long a window lasts from its first attempt
	max    int           // entries kept at most, so a flood of names cannot grow memory
	m      map[string]*loginThrottleEntry
}

type loginThrottleEntry struct {
	n     int
	first time.Time
}

func newLoginThrottle(limit int, window time.Duration, max int) *loginThrottle {
	return &loginThrottle{limit: limit, window: window, max: max, m: map[string]*loginThrottleEntry{}}
}

// blocked reports whether key has used up its attempts at now, and when
// it may try again.
func (t *loginThrottle) blocked(key string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e == nil || now.Sub(e.first) >= t.window {
		return false, 0
	}
	if e.n < t.limit {
		return false, 0
	}
	return true, e.first.Add(t.window).Sub(now)
}

// has reports whether key was added within the window before now (the
// table of known logins uses it as a set whose members expire).
func (t *loginThrottle) has(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	return e != nil && now.Sub(e.first) < t.window
}

// add counts one attempt of key at now.
func (t *loginThrottle) add(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e != nil && now.Sub(e.first) >= t.window {
		e = nil // the old window is over: start a new one
	}
	if e == nil {
		if len(t.m) >= t.max {
			t.evict(now)
		}
		e = &loginThrottleEntry{first: now}
		t.m[key] = e
	}
	e.n++
}

// undo takes back one attempt of key, for an attempt that turned out to be
// a success (attempts are counted before the password is checked, so that
// parallel guesses cannot slip past the limit).
func (t *loginThrottle) undo(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[key]; e != nil {
		e.n--
		if e.n <= 0 {
			delete(t.m, key)
		}
	}
}

// reset forgets key's attempts.
func (t *loginThrottle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

// evict drops expired entries and, if the table is still full, the entry
// with the oldest window: under a flood of distinct keys the oldest window
// is the one closest to expiring anyway. Called with mu held.
func (t *loginThrottle) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, e := range t.m {
		if now.Sub(e.first) >= t.window {
			delete(t.m, k)
			continue
		}
		if oldest == "" || e.first.Before(oldestAt) {
			oldest, oldestAt = k, e.first
		}
	}
	if len(t.m) >= t.max && oldest != "" {
		delete(t.m, oldest)
	}
}

// size returns the number of entries (for tests).
func (t *loginThrottle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
