package web

import (
	"testing"

	"passgate/store"
)

// TestAllowed_UnknownAccessDenied: an access level the route table does not
// know closes its route to every role, the admin's included.
func TestAllowed_UnknownAccessDenied(t *testing.T) {
	t.Parallel()
	for _, a := range []Access{Monitor + 1, Monitor + 7, -1} {
		for _, role := range append(store.UserRoles(), "") {
			if allowed(a, role) {
				t.Errorf("allowed(%v, %q) = true, want false", a, role)
			}
		}
	}
}

// TestAllowed_KnownLevels keeps the known levels as they are: Public,
// Device and Monitor are not barred by role, the ranked ones follow it.
func TestAllowed_KnownLevels(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a    Access
		role store.UserRole
		want bool
	}{
		{Public, "", true},
		{Device, "", true},
		{Monitor, "", true},
		{Staff, "", false},
		{Staff, store.UserStaff, true},
		{Issuer, store.UserStaff, false},
		{Issuer, store.UserIssuer, true},
		{Admin, store.UserIssuer, false},
		{Admin, store.UserAdmin, true},
	}
	for _, c := range cases {
		if got := allowed(c.a, c.role); got != c.want {
			t.Errorf("allowed(%v, %q) = %v, want %v", c.a, c.role, got, c.want)
		}
	}
}
