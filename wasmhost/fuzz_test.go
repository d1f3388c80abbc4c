package wasmhost

import (
	"context"
	"testing"

	"github.com/weirstream/weir/abi"
)

// FuzzHostCalls hands the host functions arbitrary arguments through
// testdata/calls.wat, which calls import `sel` with a0..a6. Whatever the
// values, the host must not panic, must trap exactly the calls with an
// out-of-bounds (ptr, len) pair (with a *BoundsError naming it), and must
// otherwise answer with a result or an errno. The seed corpus is below and
// in testdata/fuzz/FuzzHostCalls.
//
//	go test -run '^$' -fuzz FuzzHostCalls -fuzztime 60s ./wasmhost
func FuzzHostCalls(f *testing.F) {
	const p, end = payloadAddr, callsMemory
	for _, spec := range importSpecs {
		s := uint8(spec.sel)
		f.Add(s, int64(0), int64(p), int64(1), int64(p), int64(1), int64(p), int64(1))
		f.Add(s, int64(1), int64(end-4), int64(4), int64(end), int64(0), int64(0), int64(end))
		f.Add(s, int64(2), int64(end-3), int64(4), int64(p), int64(1), int64(p), int64(1))
		f.Add(s, int64(-1), int64(0xffffffff), int64(2), int64(1), int64(-1), int64(0x80000000), int64(0x80000000))
	}
	f.Add(uint8(99), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))

	r, err := NewRuntime(context.Background(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close(context.Background()) })
	m, err := r.Compile(context.Background(), testWasm(f, "calls"))
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, sel uint8, a0, a1, a2, a3, a4, a5, a6 int64) {
		args := [7]int64{a0, a1, a2, a3, a4, a5, a6}
		spec := importSpec{sel: uint32(sel), name: "unknown selector"}
		for _, s := range importSpecs {
			if s.sel == uint32(sel) {
				spec = s
			}
		}
		checkBounds(t, m, spec, args)
	})
}

// TestFuzzSeedsCoverEveryImport keeps the seed corpus honest: every import
// must be reachable through calls.wat.
func TestFuzzSeedsCoverEveryImport(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range importSpecs {
		seen[s.name] = true
	}
	for _, hf := range hostFuncs {
		if !seen[abi.HostModule+"."+hf.name] {
			t.Errorf("import %s is not in importSpecs (calls.wat)", hf.name)
		}
	}
}
