package tenants

import (
	"errors"
	"testing"
)

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Role
		ok   bool
	}{
		{"admin", RoleAdmin, true},
		{"owner", RoleOwner, true},
		{"developer", RoleDeveloper, true},
		{"viewer", RoleViewer, true},
		{"", "", false},
		{"Admin", "", false},
		{"root", "", false},
		{"viewer ", "", false},
	} {
		got, err := ParseRole(tc.in)
		if tc.ok {
			if err != nil || got != tc.want {
				t.Errorf("ParseRole(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRole(%q) error = %v, want ErrInvalid", tc.in, err)
		}
	}
}

func TestRoleCan(t *testing.T) {
	// Columns: read, write, manage-keys, admin.
	for _, tc := range []struct {
		role Role
		want [4]bool
	}{
		{RoleAdmin, [4]bool{true, true, true, true}},
		{RoleOwner, [4]bool{true, true, true, false}},
		{RoleDeveloper, [4]bool{true, true, false, false}},
		{RoleViewer, [4]bool{true, false, false, false}},
		{Role("root"), [4]bool{}},
		{Role(""), [4]bool{}},
	} {
		for i, a := range []Action{ActRead, ActWrite, ActManageKeys, ActAdmin} {
			if got := tc.role.Can(a); got != tc.want[i] {
				t.Errorf("%q.Can(%s) = %v, want %v", tc.role, a, got, tc.want[i])
			}
			if got := (Principal{Role: tc.role}).Can(a); got != tc.want[i] {
				t.Errorf("Principal{%q}.Can(%s) = %v, want %v", tc.role, a, got, tc.want[i])
			}
		}
		// The zero action and unknown actions fail closed, even for admin.
		for _, a := range []Action{0, ActAdmin + 1} {
			if tc.role.Can(a) {
				t.Errorf("%q.Can(%s) = true", tc.role, a)
			}
		}
	}
}
