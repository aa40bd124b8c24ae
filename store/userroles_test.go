package store_test

import (
	"slices"
	"testing"

	"passgate/store"
)

// The role order: staff below issuer below admin, anything else no role
// at all, and the list handed out cannot change the order.
func TestRoleRank(t *testing.T) {
	if !(store.RoleRank(store.UserStaff) > 0 && store.RoleRank(store.UserStaff) < store.RoleRank(store.UserIssuer) &&
		store.RoleRank(store.UserIssuer) < store.RoleRank(store.UserAdmin)) {
		t.Fatal("roles out of order")
	}
	for _, r := range []store.UserRole{"", "Admin", "root", "admin ", "sync"} {
		if store.RoleRank(r) != 0 || store.ValidRole(r) {
			t.Errorf("%q ranked as a role", r)
		}
	}
	roles := store.UserRoles()
	roles[0] = store.UserAdmin
	if !slices.Equal(store.UserRoles(), []store.UserRole{store.UserStaff, store.UserIssuer, store.UserAdmin}) {
		t.Fatalf("UserRoles = %v", store.UserRoles())
	}
}
