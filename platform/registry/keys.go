package registry

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/weirstream/weir/checkpoint"
)

// Metadata keys (doc.go, "Records"). Every key starts with the tenant's
// prefix, and prefixes end in '/', so tenant t1 never scans t10's keys and
// name "a" never scans "a.b"'s (names and tenant ids contain no '/').
//
//	modules/<tenant>/v/<name>/<version>          Version record (JSON)
//	modules/<tenant>/n/<name>                    last version number given
//	modules/<tenant>/d/<hex>/<name>/<version>    digest index (empty value)
//
// <version> is zero-padded to maxVersionDigits so that key order is
// version order.
const (
	keyRoot        = "modules/"
	versionsFolder = "v/"
	countersFolder = "n/"
	digestsFolder  = "d/"
)

// maxVersionDigits bounds version numbers (and their key width).
const maxVersionDigits = 10

// maxVersion is the largest version number a name can reach.
const maxVersion = 9_999_999_999

func tenantKeys(tenant string) string { return keyRoot + tenant + "/" }

func versionsPrefix(tenant, name string) string {
	return tenantKeys(tenant) + versionsFolder + name + "/"
}

func versionKey(tenant, name string, version int) string {
	return versionsPrefix(tenant, name) + padVersion(version)
}

func counterKey(tenant, name string) string {
	return tenantKeys(tenant) + countersFolder + name
}

func digestPrefixKey(tenant, hex string) string {
	return tenantKeys(tenant) + digestsFolder + hex + "/"
}

func digestKey(tenant, hex, name string, version int) string {
	return digestPrefixKey(tenant, hex) + name + "/" + padVersion(version)
}

func padVersion(v int) string {
	s := strconv.Itoa(v)
	return strings.Repeat("0", maxVersionDigits-len(s)) + s
}

// splitNameVersion parses the "<name>/<padded version>" tail of a version
// or digest index key.
func splitNameVersion(tail string) (string, int, error) {
	name, ver, ok := strings.Cut(tail, "/")
	n, err := strconv.Atoi(ver)
	if !ok || err != nil || n <= 0 || len(ver) != maxVersionDigits {
		return "", 0, fmt.Errorf("registry: malformed metadata key tail %q", tail)
	}
	return name, n, nil
}

// Object layout: a tenant's modules are objects of the checkpoint storage
// under tenants/<tenant>/modules/, one per digest, shared by the tenant's
// versions with those bytes.
const (
	objectsFolder = "modules"
	objectPrefix  = "sha256-"
	objectSuffix  = ".wasm"
)

// ObjectsPrefix is the storage folder of a tenant's modules:
// "tenants/<tenant>/modules".
func ObjectsPrefix(tenant string) (string, error) {
	if err := checkpoint.ValidateID("tenant", tenant); err != nil {
		return "", err
	}
	return "tenants/" + tenant + "/" + objectsFolder, nil
}

// ObjectName is the storage object holding the bytes with digest
// ("sha256:<hex>") for tenant: "tenants/<tenant>/modules/sha256-<hex>.wasm".
func ObjectName(tenant, digest string) (string, error) {
	hex, err := parseDigest(digest)
	if err != nil {
		return "", err
	}
	p, err := ObjectsPrefix(tenant)
	if err != nil {
		return "", err
	}
	return objectName(p, hex), nil
}

func objectName(prefix, hex string) string {
	return prefix + "/" + objectPrefix + hex + objectSuffix
}
