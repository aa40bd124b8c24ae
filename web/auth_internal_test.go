package web

import (
	"strconv"
	"testing"
	"time"
)

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                               "",
		"/desk":                          "/desk",
		"/desk/people?q=%E5%BC%A0":       "/desk/people?q=%E5%BC%A0",
		"/":                              "",
		"//evil.example":                 "",
		"///evil.example":                "",
		"/\\evil.example":                "",
		"/a\\b":                          "",
		"https://evil.example":           "",
		"https:evil.example":             "",
		"evil.example/x":                 "",
		"/x\r\nLocation: //evil":         "",
		"/x\tz":                          "",
		"/login":                         "",
		"/login?next=%2Fdesk":            "",
		"/loginx":                        "/loginx",
		"/" + string(make([]byte, 3000)): "",
	} {
		if want == "" {
			want = defaultNext
		}
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	th := newLoginThrottle(3, 15*time.Minute, 100)
	for i := range 3 {
		if b, _ := th.blocked("li", t0); b {
			t.Fatalf("blocked after %d attempts", i)
		}
		th.add("li", t0.Add(time.Duration(i)*time.Minute))
	}
	b, wait := th.blocked("li", t0.Add(5*time.Minute))
	if !b || wait != 10*time.Minute {
		t.Fatalf("blocked %v, wait %v; want true, 10m", b, wait)
	}
	if b, _ := th.blocked("wang", t0); b {
		t.Fatal("another key blocked")
	}
	// The window runs from the first attempt.
	if b, _ := th.blocked("li", t0.Add(15*time.Minute)); b {
		t.Fatal("still blocked after the window")
	}
	th.add("li", t0.Add(16*time.Minute))
	if b, _ := th.blocked("li", t0.Add(16*time.Minute)); b {
		t.Fatal("a new window started with the old count")
	}
	th.undo("li")
	if th.size() != 0 {
		t.Fatalf("undo of the only attempt left %d entries", th.size())
	}
	th.add("li", t0)
	th.reset("li")
	if th.size() != 0 {
		t.Fatal("reset kept the entry")
	}
}

func TestLoginThrottle_Bounded(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	th := newLoginThrottle(3, 15*time.Minute, 50)
	for i := range 50 {
		th.add("old"+strconv.Itoa(i), t0)
	}
	// A flood of fresh names keeps the table at its cap; expired entries
	// go first, then the oldest window.
	for i := range 1000 {
		th.add("new"+strconv.Itoa(i), t0.Add(time.Minute+time.Duration(i)*time.Millisecond))
		if th.size() > 50 {
			t.Fatalf("%d entries, cap 50", th.size())
		}
	}
	// A blocked key keeps its count while younger keys arrive after
	// expired entries are dropped.
	th2 := newLoginThrottle(3, 15*time.Minute, 10)
	for range 3 {
		th2.add("target", t0.Add(time.Minute))
	}
	for i := range 9 {
		th2.add("stale"+strconv.Itoa(i), t0)
	}
	th2.add("fresh", t0.Add(20*time.Minute)) // stale ones (and target) expired by now
	if th2.size() != 1 {
		t.Fatalf("expired entries kept: %d", th2.size())
	}
}
