package interrupt

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/weirstream/weir/abi"
)

// Real Go guests, built from the examples as users build theirs.
const (
	benchDir     = "../../../examples/bench"
	wordcountDir = "../../../examples/wordcount"
)

// TestGoGuests instruments the example modules and runs them on a runtime
// without CloseOnContextDone: they must instantiate (WASI, host module
// "weir"), initialise, answer weir_abi_version and weir_operators, and
// export the flag.
func TestGoGuests(t *testing.T) {
	for _, g := range []struct {
		dir string
		ops []string
	}{
		{benchDir, []string{"map", "keyedcount"}},
		{wordcountDir, []string{"split", "count"}},
	} {
		t.Run(g.dir, func(t *testing.T) {
			orig := buildGo(t, g.dir)
			inst, st, err := instrument(orig)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes -> %d bytes: %d loop checks, %d entry checks", len(orig), len(inst), st.loops, st.entries)
			mod, _ := instantiateGuest(t, newRuntime(t, compiler, false), inst)
			if v := call(t, mod, abi.ExportABIVersion); uint32(v[0]) != 1 {
				t.Errorf("weir_abi_version = %d, want 1", v[0])
			}
			ops := operators(t, mod)
			for _, want := range g.ops {
				if !bytes.Contains(ops, []byte(want)) {
					t.Errorf("operator table %q lacks %q", ops, want)
				}
			}
			flag, err := Flag(mod)
			if err != nil {
				t.Fatal(err)
			}
			if flag.Get() != 0 {
				t.Errorf("flag = %d, want 0", flag.Get())
			}
		})
	}
}

// TestGoGuestProcess runs the bench module's map operator (upper-cases
// values) on a batch, original and instrumented: the outputs must be
// equal and right.
func TestGoGuestProcess(t *testing.T) {
	orig := buildGo(t, benchDir)
	batch := sampleBatch(100, 7)
	var want abi.Encoder
	d := abi.NewDecoder(batch)
	for d.More() {
		var e abi.Event
		if err := d.Next(&e); err != nil {
			t.Fatal(err)
		}
		want.Record(abi.TagMain, e.Key, bytes.ToUpper(e.Value), e.Timestamp)
	}
	for _, wasm := range [][]byte{orig, mustInstrument(t, orig)} {
		g := openMap(t, newRuntime(t, compiler, false), wasm)
		if err := g.process(batch); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g.host.emitted, want.B) {
			t.Errorf("emitted %d bytes, want %d (%q...)", len(g.host.emitted), len(want.B), g.host.emitted[:min(len(g.host.emitted), 64)])
		}
	}
}

// operators returns the raw operator table of a guest.
func operators(t testing.TB, mod api.Module) []byte {
	t.Helper()
	v := call(t, mod, abi.ExportOperators)[0]
	b, ok := mod.Memory().Read(uint32(v>>32), uint32(v))
	if !ok {
		t.Fatalf("operator table at %#x out of bounds", v)
	}
	return b
}

// sampleBatch is the benchmarks' input (as benchops.SampleBatch, which is
// internal to examples/): records records with keys "key-0" to
// "key-<keys-1>" in turn, 100-byte lower-case values, timestamps 0, 1, ...
func sampleBatch(records, keys int) []byte {
	var e abi.Encoder
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	var key []byte
	for i := range records {
		key = strconv.AppendInt(append(key[:0], "key-"...), int64(i%keys), 10)
		e.Record(abi.TagMain, key, value, int64(i))
	}
	return e.B
}

// mapGuest is an instance of the bench module with its "map" operator
// open, driven through the ABI as the host drives it.
type mapGuest struct {
	mod       api.Module
	host      *stubHost
	buffer    api.Function
	processFn api.Function
	stack     []uint64
}

// openMap instantiates wasm (the bench module, instrumented or not) and
// opens its "map" operator.
func openMap(t testing.TB, rt wazero.Runtime, wasm []byte) *mapGuest {
	t.Helper()
	mod, host := instantiateGuest(t, rt, wasm)
	g := &mapGuest{mod: mod, host: host, stack: make([]uint64, 3),
		buffer: mod.ExportedFunction(abi.ExportBuffer), processFn: mod.ExportedFunction(abi.ExportProcess)}
	info := abi.AppendOpenInfo(nil, &abi.OpenInfo{Operator: "map", Parallelism: 1, MaxParallelism: abi.DefaultMaxParallelism, Inputs: 1})
	ptr, err := g.write(context.Background(), info)
	if err != nil {
		t.Fatal(err)
	}
	if st := call(t, mod, abi.ExportOpen, uint64(ptr), uint64(len(info))); st[0] != 0 {
		t.Fatalf("weir_open: status %d", st[0])
	}
	return g
}

// write copies b into a buffer from weir_buffer.
func (g *mapGuest) write(ctx context.Context, b []byte) (uint32, error) {
	g.stack[0] = uint64(len(b))
	if err := g.buffer.CallWithStack(ctx, g.stack); err != nil {
		return 0, err
	}
	ptr := uint32(g.stack[0])
	if ptr == 0 || !g.mod.Memory().Write(ptr, b) {
		return 0, fmt.Errorf("weir_buffer(%d) = %#x", len(b), ptr)
	}
	return ptr, nil
}

// processCtx hands the guest one batch with weir_process, without
// allocating.
func (g *mapGuest) processCtx(ctx context.Context, batch []byte) error {
	g.host.emitted = g.host.emitted[:0]
	ptr, err := g.write(ctx, batch)
	if err != nil {
		return err
	}
	g.stack[0], g.stack[1], g.stack[2] = 0, uint64(ptr), uint64(len(batch))
	if err := g.processFn.CallWithStack(ctx, g.stack); err != nil {
		return err
	}
	if g.stack[0] != 0 {
		return fmt.Errorf("weir_process: status %d", g.stack[0])
	}
	return nil
}

func (g *mapGuest) process(batch []byte) error { return g.processCtx(context.Background(), batch) }
