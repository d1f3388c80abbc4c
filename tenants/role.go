package tenants

import "fmt"

// Role is what a key may do. The set is closed: ParseRole rejects anything
// else, and an unknown Role can do nothing.
type Role string

// The roles of docs/API.md.
const (
	// RoleAdmin is platform-wide: tenants, their keys and quotas. Admin keys
	// belong to no tenant.
	RoleAdmin Role = "admin"
	// RoleOwner is everything in its tenant, including the tenant's keys.
	RoleOwner Role = "owner"
	// RoleDeveloper manages the modules and jobs of its tenant.
	RoleDeveloper Role = "developer"
	// RoleViewer reads its tenant's resources.
	RoleViewer Role = "viewer"
)

// ParseRole returns the role named s. The error satisfies
// errors.Is(err, ErrInvalid).
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleOwner, RoleDeveloper, RoleViewer:
		return r, nil
	}
	return "", invalid(fmt.Errorf("role %q is unknown: use admin, owner, developer or viewer", s))
}

// Action is a kind of operation a request performs; Role.Can decides who may
// perform it. The zero Action is no action and nobody may perform it, so a
// forgotten assignment fails closed.
type Action uint8

// The actions. Resources outside this list (the caller's own /v1/me and
// /v1/quotas) need only an authenticated key.
const (
	// ActRead reads the tenant's modules, jobs, savepoints and operations.
	ActRead Action = iota + 1
	// ActWrite changes the tenant's modules and jobs.
	ActWrite
	// ActManageKeys creates, lists and revokes keys of the caller's own tenant.
	ActManageKeys
	// ActAdmin manages tenants and their keys and quotas.
	ActAdmin
)

// String names the action for errors and logs.
func (a Action) String() string {
	switch a {
	case ActRead:
		return "read"
	case ActWrite:
		return "write"
	case ActManageKeys:
		return "manage-keys"
	case ActAdmin:
		return "admin"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Can reports whether a key with role r may perform a. Each role includes the
// ones below it: admin > owner > developer > viewer.
func (r Role) Can(a Action) bool {
	switch r {
	case RoleAdmin:
		return a >= ActRead && a <= ActAdmin
	case RoleOwner:
		return a == ActRead || a == ActWrite || a == ActManageKeys
	case RoleDeveloper:
		return a == ActRead || a == ActWrite
	case RoleViewer:
		return a == ActRead
	}
	return false
}
