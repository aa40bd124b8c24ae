package store

import "slices"

// userRoles is every user role from least to most trusted: each role may
// do whatever the ones before it may. It is the one statement of that
// order; route access and the account form read it through RoleRank and
// UserRoles.
var userRoles = [...]UserRole{UserStaff, UserIssuer, UserAdmin}

// UserRoles returns the user roles from least to most trusted.
func UserRoles() []UserRole { return slices.Clone(userRoles[:]) }

// RoleRank is role's place in UserRoles counted from 1, so that a higher
// rank may do what a lower one may; 0 for a string that is no role.
func RoleRank(role UserRole) int {
	return slices.Index(userRoles[:], role) + 1
}

// ValidRole reports whether role is a user role.
func ValidRole(role UserRole) bool { return RoleRank(role) > 0 }
