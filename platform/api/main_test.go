package api_test

import (
	"context"
	"fmt"
	"github.com/weirstream/weir/wasmhost/wasmtest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weirstream/weir/platform"
)

// fx is the fixture of the test binary, set up once by TestMain and
// read-only afterwards: the example modules (building them takes seconds
// and compiling them in the registry more, so they are built and uploaded
// as few times as possible) and one platform with its HTTP server, shared
// by every test that does not need a platform of its own. Tests on the
// shared platform work in tenants of their own, so they cannot see each
// other's resources (which is itself what the isolation tests check).
var fx struct {
	modules map[string][]byte // see builds
	srv     *server
}

// builds are the modules the tests upload: name -> (package, build tags).
var builds = map[string]wasmtest.Source{
	"counter":         {Pkg: "testdata/counter"},
	"counter-v2":      {Pkg: "testdata/counter", Tags: "v2"},
	"counter-mapkind": {Pkg: "testdata/counter", Tags: "mapkind"},
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weir-api-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if fx.modules, err = wasmtest.Modules(builds); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := startServer(context.Background(), platform.Options{
		DataDir: filepath.Join(dir, "data"),
		// Enough for every test's jobs at once: slot exhaustion of the
		// process is not what these tests are about (quotas are).
		Slots: 64,
		// An upgrade counts as started after this long without a failure;
		// the incompatible module fails at restore, well within it.
		UpgradeGrace: 300 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fx.srv = srv
	defer srv.close()
	code := m.Run()
	if testing.Verbose() {
		// Every one of these was checked against the catalogue when answered.
		fmt.Printf("problem types answered on the shared server: %v\n", srv.seen)
	}
	return code
}

// repoRoot is the module root: the tests run in platform/api.
func repoRoot() (string, error) { return wasmtest.RepoRoot() }
