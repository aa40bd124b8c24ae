package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"testing"
	"time"

	"passgate/store"
)

// clientFrom returns a client whose connections come from the loopback
// address ip (all of 127.0.0.0/8 is local on Linux), so that one test
// server sees several real client addresses.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// loginFrom posts a login and returns its status.
func loginFrom(t *testing.T, ts *testServer, c *http.Client, name, password string) int {
	t.Helper()
	resp, err := c.PostForm(ts.Srv.URL+"/login", url.Values{"username": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestLogin_StrangerCannotLockOut: an attacker hammering admin from one
// address is throttled there, and the admin still logs in from another;
// the attacker stays throttled, even with the right password.
func TestLogin_StrangerCannotLockOut(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	attacker, admin := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")
	for i := range 30 {
		got := loginFrom(t, ts, attacker, "admin", "guess")
		if want := http.StatusUnprocessableEntity; i >= 5 {
			want = http.StatusTooManyRequests
			if got != want {
				t.Fatalf("attempt %d from A: %d, want %d", i+1, got, want)
			}
		} else if got != want {
			t.Fatalf("attempt %d from A: %d, want %d", i+1, got, want)
		}
	}
	if got := loginFrom(t, ts, admin, "ADMIN", ts.AdminPassword); got != http.StatusSeeOther {
		t.Fatalf("admin from B: %d, want 303 (logged in)", got)
	}
	if got := loginFrom(t, ts, attacker, "admin", ts.AdminPassword); got != http.StatusTooManyRequests {
		t.Fatalf("attacker from A with the right password: %d, want still 429", got)
	}
	// The refusals are in the audit trail, once for the window, not once
	// per guess.
	if n := countThrottled(t, ts, "127.0.0.1"); n != 1 {
		t.Fatalf("%d throttled-login records for A, want 1", n)
	}
	// The admin's own address keeps its own limit.
	for range 5 {
		loginFrom(t, ts, admin, "admin", "typo")
	}
	if got := loginFrom(t, ts, admin, "admin", ts.AdminPassword); got != http.StatusTooManyRequests {
		t.Fatalf("B after five of its own failures: %d, want 429", got)
	}
}

// TestLogin_SpreadAttack: guesses at one account spread over many
// addresses meet the account's limit, which refuses addresses the account
// never logged in from, but not one it did.
func TestLogin_SpreadAttack(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("100 password hashes; skipped with -short")
	}
	ts := newTestServer(t)
	home := clientFrom(t, "127.0.0.2")
	if got := loginFrom(t, ts, home, "admin", ts.AdminPassword); got != http.StatusSeeOther {
		t.Fatalf("first login: %d", got)
	}
	// 20 addresses × 5 failures reach the account's limit of 100.
	for a := range 20 {
		c := clientFrom(t, "127.0.1."+itoa(a+1))
		for i := range 5 {
			if got := loginFrom(t, ts, c, "admin", "guess"); got != http.StatusUnprocessableEntity {
				t.Fatalf("address %d attempt %d: %d", a+1, i+1, got)
			}
		}
	}
	if got := loginFrom(t, ts, clientFrom(t, "127.0.2.1"), "admin", ts.AdminPassword); got != http.StatusTooManyRequests {
		t.Fatalf("a new address during the attack: %d, want 429", got)
	}
	if got := loginFrom(t, ts, clientFrom(t, "127.0.2.1"), "li", "whatever"); got != http.StatusUnprocessableEntity {
		t.Fatalf("another account from a new address: %d, want 422 (not throttled)", got)
	}
	if got := loginFrom(t, ts, clientFrom(t, "127.0.0.2"), "admin", ts.AdminPassword); got != http.StatusSeeOther {
		t.Fatalf("the address admin logged in from before: %d, want 303", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// countThrottled counts the audit records of logins refused by a throttle
// from addr.
func countThrottled(t *testing.T, ts *testServer, addr string) int {
	t.Helper()
	n := 0
	err := ts.DB.FindAudit(t.Context(), store.AuditFilter{}, func(r *store.AuditRecord) error {
		var d map[string]string
		if r.Action == store.AuditLoginFailed && json.Unmarshal(r.Detail, &d) == nil && d["outcome"] == "throttled" && d["addr"] == addr {
			if r.Actor != "admin" || d["limit"] == "" {
				t.Errorf("throttled record %s %s", r.Actor, r.Detail)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
