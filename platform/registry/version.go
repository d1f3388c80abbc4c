package registry

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is one immutable version of a module: the REST API's
// ModuleVersion, and the record the registry keeps.
type Version struct {
	Name string `json:"name"`
	// Version numbers a name's versions 1, 2, 3, ... in upload order; a
	// number is never given twice, even after its version was deleted.
	Version int `json:"version"`
	// Digest is "sha256:<64 hex>" of the module's bytes: its content
	// address, stable across names, tenants and installations.
	Digest string `json:"digest"`
	// Size is the module's length in bytes.
	Size int64 `json:"size"`
	// ABIVersion is the host ABI version the module implements.
	ABIVersion int `json:"abi_version"`
	// Operators are the operators the module exports, in its own order.
	Operators []Operator `json:"operators"`
	CreatedAt time.Time  `json:"created_at"`
}

// Operator is an operator a module exports.
type Operator struct {
	Name string `json:"name"`
	// Keyed operators need keyed input (a key partitioning edge) and may
	// use keyed state and timers.
	Keyed bool `json:"keyed"`
}

// Ref is the reference that names exactly this version: "name@3".
func (v Version) Ref() string { return v.Name + "@" + strconv.Itoa(v.Version) }

// NameSummary describes a module name: GET /v1/modules.
type NameSummary struct {
	Name   string  `json:"name"`
	Latest Version `json:"latest"`
	// Versions is how many versions the name has now.
	Versions int `json:"versions"`
}

// maxNameLen bounds module names, as ids are bounded (checkpoint.ValidateID).
const maxNameLen = 63

// digestPrefix starts a digest in references and records.
const digestPrefix = "sha256:"

// ValidateName checks a module name: 1 to 63 characters of a-z, 0-9, '-',
// '_' and '.', starting with a letter or digit. Lower case only, like every
// id of the platform; '@' and ':' are excluded, so a reference
// ("name@3", "sha256:...") is never ambiguous. The error, wrapping
// ErrInvalidName, names the name.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("module name is empty: %w", ErrInvalidName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("module name %.20q... is %d characters, more than %d: %w", name, len(name), maxNameLen, ErrInvalidName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_' || c == '.')
		if !ok {
			return fmt.Errorf("module name %q is invalid at byte %d (%q): use a-z, 0-9, '-', '_' and '.', starting with a letter or digit: %w",
				name, i, c, ErrInvalidName)
		}
	}
	return nil
}

// selector is what a reference or a REST version selects within a tenant.
type selector struct {
	name   string // empty: a digest alone
	latest bool
	number int    // > 0: that version
	digest string // 64 hex: the version(s) with these bytes
}

// parseRef parses a module reference: "name", "name@latest", "name@<n>",
// "name@sha256:<hex>" or "sha256:<hex>".
func parseRef(ref string) (selector, error) {
	if strings.HasPrefix(ref, digestPrefix) {
		hex, err := parseDigest(ref)
		if err != nil {
			return selector{}, fmt.Errorf("module reference %q: %w", ref, err)
		}
		return selector{digest: hex}, nil
	}
	name, version, hasVersion := strings.Cut(ref, "@")
	if err := ValidateName(name); err != nil {
		return selector{}, fmt.Errorf("module reference %q (name@version, or sha256:<hex>): %w: %w", ref, ErrBadRef, err)
	}
	if !hasVersion {
		return selector{name: name, latest: true}, nil
	}
	s, err := parseVersion(version)
	if err != nil {
		return selector{}, fmt.Errorf("module reference %q: %w", ref, err)
	}
	s.name = name
	return s, nil
}

// parseVersion parses the version part of a reference or a REST path: a
// number, "latest" or "sha256:<hex>".
func parseVersion(version string) (selector, error) {
	switch {
	case version == "latest":
		return selector{latest: true}, nil
	case strings.HasPrefix(version, digestPrefix):
		hex, err := parseDigest(version)
		if err != nil {
			return selector{}, err
		}
		return selector{digest: hex}, nil
	}
	n, ok := parseNumber(version)
	if !ok {
		return selector{}, fmt.Errorf("version %q is not a number (1, 2, ...), \"latest\" or a digest (sha256:<hex>): %w", version, ErrBadRef)
	}
	return selector{number: n}, nil
}

// parseNumber accepts canonical positive decimals only ("3", not "03" or
// "+3"), so every version has exactly one spelling.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > maxVersionDigits || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// parseDigest returns the hex of "sha256:<64 lowercase hex>".
func parseDigest(d string) (string, error) {
	hex, ok := strings.CutPrefix(d, digestPrefix)
	if !ok || len(hex) != 64 {
		return "", fmt.Errorf("digest %q is not sha256:<64 hex digits>: %w", d, ErrBadRef)
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("digest %q has %q at position %d: use lower-case hex: %w", d, c, len(digestPrefix)+i, ErrBadRef)
		}
	}
	return hex, nil
}

// describe renders a selector for "not found" errors.
func (s selector) describe() string {
	switch {
	case s.name == "":
		return "module with digest " + digestPrefix + s.digest
	case s.latest:
		return "module " + s.name
	case s.number > 0:
		return fmt.Sprintf("module %s version %d", s.name, s.number)
	default:
		return "module " + s.name + " with digest " + digestPrefix + s.digest
	}
}
