package web

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"passgate/store"
)

// TestLanding checks where each role goes after login: a destination its
// role may open, else its own page.
func TestLanding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ role, next, want string }{
		{"admin", "", "/admin"},
		{"issuer", "", "/desk"},
		{"staff", "", "/gate"},
		{"", "", "/"},
		{"staff", "/admin/users", "/gate"},
		{"staff", "/desk/people/ab", "/gate"},
		{"issuer", "/admin", "/desk"},
		{"issuer", "/desk/import", "/desk/import"},
		{"staff", "/gate/camera", "/gate/camera"},
		{"admin", "/desk/people/ab?x=1", "/desk/people/ab?x=1"},
		{"staff", "/no/such/page", "/no/such/page"},
		{"", "/admin", "/admin"},
		// The gate panel's login button returns a screen to its entrance.
		{"staff", "/gate?entrance=%E5%8C%97%E9%97%A8", "/gate?entrance=%E5%8C%97%E9%97%A8"},
		{"admin", "/gate/camera?entrance=%E5%8C%97%E9%97%A8", "/gate/camera?entrance=%E5%8C%97%E9%97%A8"},
	} {
		if got := landing(store.UserRole(tc.role), tc.next); got != tc.want {
			t.Errorf("landing(%q, %q) = %q, want %q", tc.role, tc.next, got, tc.want)
		}
	}
}

// FuzzSafeNext checks that no login destination leaves the site: whatever
// comes in, the redirect's Location is a path on this host, or none.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{
		"/desk", "//evil.example", "/\\evil", "https://evil", "/%2F%2Fevil", "/\t/evil", "/x\r\nSet-Cookie: a=b",
		"/login?next=//evil", "javascript:alert(1)", "/.//evil", "/..//evil", "/ /evil", "\u3000//evil",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == defaultNext {
			return
		}
		if len(got) > 2048 || got[0] != '/' || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return unicode.IsControl(r) || r == '\\' }) {
			t.Fatalf("safeNext(%q) = %q has control characters or backslashes", next, got)
		}
		// What a browser would do with the redirect: resolve it against
		// the appliance's address; it must stay there.
		base, _ := url.Parse("https://appliance.example/login")
		u, err := base.Parse(landing("admin", got))
		if err != nil {
			return // a browser cannot follow it either
		}
		if u.Host != "appliance.example" || u.Scheme != "https" {
			t.Fatalf("safeNext(%q) = %q leads to %s", next, got, u)
		}
	})
}
