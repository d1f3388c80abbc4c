package interrupt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzInstrument: for any input, Instrument must not panic, must fail only
// with ErrUnsupported, ErrMalformed or ErrLimit, and, whenever wazero
// compiles the input, must not say ErrMalformed (the host rejects such
// modules outright) and, when it succeeds, must return bytes that wazero
// compiles too.
// The seed corpus is every module of testdata plus a few hand-made ones.
//
//	go test -run '^$' -fuzz FuzzInstrument -fuzztime 60s ./wasmhost/internal/interrupt
func FuzzInstrument(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.wasm")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(wmod())
	f.Add(funcModule(code(0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)))
	f.Add(funcModule(code(0x00, 0xfd, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1a, 0x0b)))

	ctx := context.Background()
	// The compiler, as Weir runs: it must also accept the code inserted.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features))
	f.Cleanup(func() { rt.Close(ctx) })

	f.Fuzz(func(t *testing.T, in []byte) {
		out, ierr := Instrument(in)
		switch {
		case ierr == nil, errors.Is(ierr, ErrMalformed):
		case errors.Is(ierr, ErrUnsupported), errors.Is(ierr, ErrLimit):
			return // nothing to compare with wazero
		default:
			t.Fatalf("error %v wraps none of ErrUnsupported, ErrMalformed, ErrLimit", ierr)
		}
		if !wazeroSafe(in) {
			return
		}
		orig, err := rt.CompileModule(ctx, in)
		if err != nil {
			return // invalid input: Instrument may say anything wazero rejects
		}
		orig.Close(ctx)
		if errors.Is(ierr, ErrMalformed) {
			t.Fatalf("wazero compiles the input, Instrument says %v", ierr)
		}
		if ierr != nil {
			return
		}
		inst, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero compiles the input but not the output: %v", err)
		}
		inst.Close(ctx)
	})
}

// wazeroSafe reports whether in is safe to hand wazero in a fuzz worker:
// wazero allocates from the counts it reads before it reads what they
// count, so a 20-byte input can make it allocate gigabytes and the fuzz
// worker be killed. That exercises wazero, not Instrument, so inputs with
// a section running past their end, a number larger than themselves
// anywhere in a section but code and custom ones, or a code section with
// such a count of bodies or locals are skipped.
func wazeroSafe(in []byte) bool {
	limit := uint32(len(in))
	for i := 8; i < len(in); {
		id := in[i]
		size, next, ok := readU32(in, i+1)
		if !ok || uint64(size) > uint64(len(in)-next) {
			return false
		}
		end := next + int(size)
		switch id {
		case secCustom:
		case secCode:
			if !codeSafe(in[:end], next, limit) {
				return false
			}
		default:
			for j := next; j < end; j++ {
				if v, _, ok := readU32(in[:end], j); ok && v > limit {
					return false
				}
			}
		}
		i = end
	}
	return true
}

// codeSafe checks the counts of the code section b[i:]: bodies, local
// declarations and locals.
func codeSafe(b []byte, i int, limit uint32) bool {
	n, i, ok := readU32(b, i)
	if !ok || n > limit {
		return false
	}
	for ; n > 0; n-- {
		size, next, ok := readU32(b, i)
		if !ok || uint64(size) > uint64(len(b)-next) {
			return false
		}
		end := next + int(size)
		decls, j, ok := readU32(b[:end], next)
		if !ok || decls > limit {
			return false
		}
		for ; decls > 0; decls-- {
			var count uint32
			if count, j, ok = readU32(b[:end], j); !ok || count > limit {
				return false
			}
			j++ // type
		}
		i = end
	}
	return true
}
