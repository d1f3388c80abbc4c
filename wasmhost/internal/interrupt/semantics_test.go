package interrupt

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// loopsInWAT counts the loop instructions of a .wat source (folded
// "(loop" and flat "loop"), comments aside: the number of loop checks
// Instrument must insert, counted without the walker.
func loopsInWAT(t *testing.T, name string) int {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name+".wat"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(src), "\n") {
		line, _, _ = strings.Cut(line, ";;")
		n += len(regexp.MustCompile(`(^|[\s(])loop\b`).FindAllString(line, -1))
	}
	return n
}

// TestCheckCounts checks, for every test module, the number of checks
// inserted: one per loop of the source, and one per function that calls
// outside every loop (counted by hand, see the .wat files).
func TestCheckCounts(t *testing.T) {
	for _, tt := range []struct {
		name    string
		entries int
	}{
		{"control", 1}, // bulk: call_indirect outside its loop
		{"globals", 0}, // no calls
		{"nosections", 0},
		{"spin", 4},     // spin, spin_calls, $r, recurse
		{"tailcall", 5}, // every function tail-calls
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, st, err := instrument(testWasm(t, tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if want := loopsInWAT(t, tt.name); st.loops != want {
				t.Errorf("%d loop checks, want %d", st.loops, want)
			}
			if st.entries != tt.entries {
				t.Errorf("%d entry checks, want %d", st.entries, tt.entries)
			}
		})
	}
}

// instance instantiates a hand-written test module on its own runtime,
// with the module "env" it may import (functions from the stub host, or
// globals from testdata/globals_env.wat).
func instance(t *testing.T, e engine, wasm []byte, envGlobals bool) api.Module {
	t.Helper()
	rt := newRuntime(t, e, false)
	if envGlobals {
		if _, err := rt.InstantiateWithConfig(context.Background(), testWasm(t, "globals_env"), wazero.NewModuleConfig().WithName("env")); err != nil {
			t.Fatal(err)
		}
	}
	mod, _ := instantiateGuest(t, rt, wasm)
	return mod
}

// TestSemantics runs the exports of the hand-written modules, original and
// instrumented, on both engines: the results must be equal, and equal to
// values computed in Go where that is simple.
func TestSemantics(t *testing.T) {
	i32 := func(v int32) uint64 { return uint64(uint32(v)) }
	nested := func(n int32) int32 {
		var s int32
		for i := int32(0); i < n; i++ {
			s += i * (i * (i - 1) / 2)
		}
		return s
	}
	collatz := func(n uint64) int32 {
		var steps int32
		for n > 1 {
			if n%2 == 0 {
				n /= 2
			} else {
				n = 3*n + 1
			}
			steps++
		}
		return steps
	}
	indirect := func(n int32) int32 {
		var s int32
		for i := int32(0); i < n; i++ {
			s += [3]int32{2 * i, i * i, i + 1}[i%3]
		}
		return s
	}
	memops := func(n int32) int64 {
		var s int64
		for i := int32(0); i == 0 || i < n; i++ {
			s += int64(int8(i)) + int64(uint16(i)) + int64(uint32(i)) + int64(i)*-3 +
				int64(float32(i)) + int64(float64(i)) + int64(uint8(i)) + int64(int16(i))
		}
		return s + 1 // memory.size
	}
	sumTo := func(n int64) uint64 { return uint64(uint32(n * (n + 1) / 2)) }
	bulk := int32(124 + 4000 + 25 + 10 + math.MinInt32 + 0 + -1 + 0 + 1)
	refs := func(x int32) int32 {
		s := int32(1 + 0 + 100 - 1 + math.MinInt32)
		if x != 0 {
			return s + 1000 + 3
		}
		return s + 2000 + 4
	}

	type run struct {
		export string
		args   []uint64
		want   []uint64 // nil: only compare original and instrumented
	}
	tests := []struct {
		module     string
		envGlobals bool
		runs       []run
	}{
		{"control", false, []run{
			{"nested", []uint64{0}, []uint64{0}},
			{"nested", []uint64{7}, []uint64{i32(nested(7))}},
			{"nested", []uint64{300}, []uint64{i32(nested(300))}},
			{"collatz", []uint64{1}, []uint64{0}},
			{"collatz", []uint64{27}, []uint64{i32(collatz(27))}},
			{"collatz", []uint64{837799}, []uint64{i32(collatz(837799))}},
			{"indirect", []uint64{0}, []uint64{0}},
			{"indirect", []uint64{10}, []uint64{i32(indirect(10))}},
			{"indirect", []uint64{1000}, []uint64{i32(indirect(1000))}},
			{"memops", []uint64{0}, []uint64{uint64(memops(0))}},
			{"memops", []uint64{70000}, []uint64{uint64(memops(70000))}},
			{"bulk", nil, []uint64{i32(bulk)}},
			{"refs", []uint64{0}, []uint64{i32(refs(0))}},
			{"refs", []uint64{5}, []uint64{i32(refs(5))}},
			{"divmod", []uint64{100, 7}, []uint64{14002}},
			{"divmod", []uint64{6, 7}, []uint64{6}},
			{"divmod", []uint64{1 << 20, 3}, []uint64{(1 << 20 / 3 * 1000) + (1<<20)%3}},
			{"simd", []uint64{1}, nil},
			{"simd", []uint64{100}, nil},
		}},
		{"globals", true, []run{
			{"imm", nil, []uint64{1234}},
			{"mut", nil, []uint64{5}},
			{"a", nil, []uint64{41}},
			{"b", nil, []uint64{uint64(math.MaxUint64 - 4)}}, // -5
			{"c", nil, []uint64{uint64(math.Float32bits(1.5))}},
			{"d", nil, []uint64{1234}},
			{"f", nil, []uint64{math.Float64bits(-2.25)}},
			{"count", []uint64{3}, []uint64{3}},
		}},
		{"tailcall", false, []run{
			{"sum", []uint64{0}, []uint64{0}},
			{"sum", []uint64{100000}, []uint64{sumTo(100000)}},
		}},
	}
	for _, e := range []engine{compiler, interpreter} {
		for _, tt := range tests {
			orig := testWasm(t, tt.module)
			inst := mustInstrument(t, orig)
			for _, r := range tt.runs {
				t.Run(e.String()+"/"+tt.module+"/"+r.export, func(t *testing.T) {
					// A fresh instance per run: exports change memory,
					// tables and globals.
					want := call(t, instance(t, e, orig, tt.envGlobals), r.export, r.args...)
					got := call(t, instance(t, e, inst, tt.envGlobals), r.export, r.args...)
					if !slicesEqual(got, want) {
						t.Errorf("%s%v: instrumented %v, original %v", r.export, r.args, got, want)
					}
					if r.want != nil && !slicesEqual(got, r.want) {
						t.Errorf("%s%v = %v, want %v", r.export, r.args, got, r.want)
					}
				})
			}
		}
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGlobalsKeepTheirIndices checks the globals of globals.wat after
// instrumentation from the outside too: the exported global, the imported
// mutable global that count() increments, and the flag, which must be a
// separate global.
func TestGlobalsKeepTheirIndices(t *testing.T) {
	mod := instance(t, compiler, mustInstrument(t, testWasm(t, "globals")), true)
	flag, err := Flag(mod)
	if err != nil {
		t.Fatal(err)
	}
	if got := mod.ExportedGlobal("exported_a").Get(); got != 41 {
		t.Errorf("exported_a = %d, want 41", got)
	}
	if got := call(t, mod, "count", 4); got[0] != 4 {
		t.Errorf("count(4) = %d, want 4", got[0])
	}
	if got := call(t, mod, "mut"); got[0] != 9 {
		t.Errorf("mut after count(4) = %d, want 9", got[0])
	}
	if flag.Get() != 0 {
		t.Errorf("flag = %d after count, want 0", flag.Get())
	}
}

// TestNoSections: the module had no global, export or import section; its
// start function loops.
func TestNoSections(t *testing.T) {
	for _, e := range []engine{compiler, interpreter} {
		t.Run(e.String(), func(t *testing.T) {
			mod := instance(t, e, mustInstrument(t, testWasm(t, "nosections")), false)
			if _, err := Flag(mod); err != nil {
				t.Fatal(err)
			}
			if v, ok := mod.Memory().ReadUint32Le(0); !ok || v != 10 {
				t.Errorf("the start function stored %d, want 10", v)
			}
		})
	}
}

func TestFlagOfUninstrumentedModule(t *testing.T) {
	mod := instance(t, compiler, testWasm(t, "nosections"), false)
	if _, err := Flag(mod); err == nil {
		t.Fatal("Flag of an uninstrumented module: no error")
	}
}
