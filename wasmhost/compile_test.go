package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/abi"
)

func TestCompileRejects(t *testing.T) {
	r := newTestRuntime(t, Config{DefaultLimits: Limits{CallTimeout: 200 * time.Millisecond}})
	echo := testWasm(t, "echo")
	text, err := os.ReadFile("testdata/gen.sh")
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for j := range random {
		random[j] = byte(rng.Uint32())
	}
	component := append([]byte("\x00asm\x0d\x00\x01\x00"), echo[8:]...)

	tests := []struct {
		name string
		wasm []byte
		code ModuleErrorCode
		msg  string // substring of the message
	}{
		{"empty", nil, ModuleNotWasm, "not a WebAssembly module (empty)"},
		{"random bytes", random, ModuleNotWasm, "not a WebAssembly module (bad magic)"},
		{"text file", text, ModuleNotWasm, "not a WebAssembly module (bad magic)"},
		{"magic only", []byte("\x00asm"), ModuleNotWasm, "bad magic"},
		{"component", component, ModuleNotWasm, "unsupported WebAssembly binary version 65549"},
		{"truncated", echo[:len(echo)/2], ModuleMalformed, "runs past the end of the module"},
		{"header only", echo[:8], ModuleMissingExport, "missing export memory"},
		{"missing_process", testWasm(t, "missing_process"), ModuleMissingExport, "missing export weir_process"},
		{"missing_memory", testWasm(t, "missing_memory"), ModuleMissingExport, "missing export memory"},
		{"bad_sig_process", testWasm(t, "bad_sig_process"), ModuleBadSignature,
			"weir_process has signature (i32)->i32, want (i32,i32,i32)->i32"},
		{"bad_sig_init", testWasm(t, "bad_sig_init"), ModuleBadSignature, "_initialize has signature ()->i32, want ()"},
		{"abi_v2", testWasm(t, "abi_v2"), ModuleABIVersion, "ABI version 2, this host supports 1"},
		{"unknown_import", testWasm(t, "unknown_import"), ModuleUnknownImport, "imports unknown host function weir.foo"},
		{"unknown_module", testWasm(t, "unknown_module"), ModuleUnknownImport, "imports unknown host function env.abort"},
		{"unknown_wasi", testWasm(t, "unknown_wasi"), ModuleUnknownImport,
			"imports unknown WASI function wasi_snapshot_preview1.sock_listen"},
		{"bad_import_sig", testWasm(t, "bad_import_sig"), ModuleBadSignature,
			"import weir.emit has signature (i32)->i32, want (i32,i32)->i32"},
		{"import_memory", testWasm(t, "import_memory"), ModuleUnknownImport, "imports memory env.memory"},
		{"ops_oob", testWasm(t, "ops_oob"), ModuleBadOperatorTable,
			"weir_operators: returned table [65520, 65520+256) is outside the 65536-byte guest memory"},
		{"ops_malformed", testWasm(t, "ops_malformed"), ModuleBadOperatorTable, "bad operator table: abi: operator table"},
		{"ops_empty", testWasm(t, "ops_empty"), ModuleBadOperatorTable, "exports no operators"},
		{"ops_duplicate", testWasm(t, "ops_duplicate"), ModuleBadOperatorTable, `operator "stub" listed twice`},
		{"huge_memory", testWasm(t, "huge_memory"), ModuleMemoryLimit, "declares too much memory: section memory: min 65536 pages (4 Gi) over limit of 65535 pages"},
		{"big_memory", testWasm(t, "big_memory"), ModuleMemoryLimit, "declares 2000 initial memory pages, more than the limit of 1024"},
		{"start_loop", testWasm(t, "start_loop"), ModuleInitFailed, "validation instance: instantiate: deadline exceeded after 200ms"},
		{"init_trap", testWasm(t, "init_trap"), ModuleInitFailed, "validation instance: _initialize: wasm trap: unreachable"},
		{"init_exit", testWasm(t, "init_exit"), ModuleInitFailed, "validation instance: _initialize: guest exited with code 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := r.Compile(context.Background(), tc.wasm)
			if err == nil {
				m.Close(context.Background())
				t.Fatal("Compile succeeded, want an error")
			}
			var me *ModuleError
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T) is not a *ModuleError", err, err)
			}
			if me.Code() != tc.code {
				t.Errorf("code = %v, want %v (%v)", me.Code(), tc.code, err)
			}
			if !strings.Contains(me.Message(), tc.msg) {
				t.Errorf("message %q does not contain %q", me.Message(), tc.msg)
			}
			sum := sha256.Sum256(tc.wasm)
			if me.Digest() != hex.EncodeToString(sum[:]) {
				t.Errorf("digest = %s, want sha256 of the input", me.Digest())
			}
			if !strings.HasPrefix(err.Error(), "wasmhost: module sha256:"+me.Digest()[:12]+": ") {
				t.Errorf("error %q lacks the module prefix", err)
			}
		})
	}

	// The runtime is unharmed by all of that.
	m := compile(t, r, "echo")
	i := open(t, m, "echo", InstanceConfig{})
	if out, err := i.Process(context.Background(), 0, records(3)); err != nil || len(out) == 0 {
		t.Fatalf("echo after rejections: %v", err)
	}
}

func TestCompileRejectsTruncatedPrefixes(t *testing.T) {
	r := newTestRuntime(t, Config{})
	echo := testWasm(t, "echo")
	for n := range len(echo) {
		m, err := r.Compile(context.Background(), echo[:n])
		if err == nil {
			m.Close(context.Background())
			t.Fatalf("Compile(echo[:%d]) succeeded", n)
		}
		var me *ModuleError
		if !errors.As(err, &me) {
			t.Fatalf("Compile(echo[:%d]): %v is not a *ModuleError", n, err)
		}
	}
}

func TestCompileValid(t *testing.T) {
	r := newTestRuntime(t, Config{})
	tests := []struct {
		name string
		ops  []abi.OperatorInfo
	}{
		{"echo", []abi.OperatorInfo{{Name: "echo"}}},
		{"calls", []abi.OperatorInfo{{Name: "calls", Flags: abi.FlagKeyed}, {Name: "plain"}}},
		{"hostile", []abi.OperatorInfo{{Name: "hostile"}}},
		{"bench", []abi.OperatorInfo{{Name: "bench", Flags: abi.FlagKeyed}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wasm := testWasm(t, tc.name)
			m := compile(t, r, tc.name)
			defer m.Close(context.Background())
			if got := m.Operators(); !slices.Equal(got, tc.ops) {
				t.Errorf("Operators() = %v, want %v", got, tc.ops)
			}
			sum := sha256.Sum256(wasm)
			if m.Digest() != hex.EncodeToString(sum[:]) {
				t.Errorf("Digest() = %s", m.Digest())
			}
			op, ok := m.Operator(tc.ops[0].Name)
			if !ok || op != tc.ops[0] {
				t.Errorf("Operator(%q) = %v, %v", tc.ops[0].Name, op, ok)
			}
			if _, ok := m.Operator("nope"); ok {
				t.Error(`Operator("nope") found`)
			}
		})
	}
}

func TestClosedModule(t *testing.T) {
	r := newTestRuntime(t, Config{})
	m := compile(t, r, "echo")
	i := open(t, m, "echo", InstanceConfig{})
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Instantiate(context.Background(), InstanceConfig{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Instantiate of a closed module: %v", err)
	}
	// Instances created before keep working.
	if _, err := i.Process(context.Background(), 0, records(2)); err != nil {
		t.Errorf("instance of a closed module: %v", err)
	}
}

func TestCompileGoGuest(t *testing.T) {
	m := goGuestModule(t)
	want := []abi.OperatorInfo{{Name: "echo"}, {Name: "count", Flags: abi.FlagKeyed}, {Name: "panic"},
		{Name: "crash"}, {Name: "oom"}, {Name: "loop"}, {Name: "logger"}}
	if got := m.Operators(); !slices.Equal(got, want) {
		t.Errorf("Operators() = %v, want %v", got, want)
	}
}

func TestCompilationCacheDir(t *testing.T) {
	dir := t.TempDir()
	wasm := testWasm(t, "hostile")
	for round := range 2 {
		r := newTestRuntime(t, Config{CacheDir: dir})
		m := compile(t, r, "hostile")
		i := open(t, m, "hostile", InstanceConfig{})
		if _, err := i.Process(context.Background(), 0, records(1)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var files int
	err := walkFiles(dir, func() { files++ })
	if err != nil || files == 0 {
		t.Fatalf("cache dir %s has %d files (%v) after compiling %d bytes", dir, files, err, len(wasm))
	}
}

func walkFiles(dir string, fn func()) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := walkFiles(dir+"/"+e.Name(), fn); err != nil {
				return err
			}
			continue
		}
		fn()
	}
	return nil
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"zero is fine", Config{}, ""},
		{"ceiling too high", Config{MemoryLimitPages: 65536}, "config.MemoryLimitPages 65536 is more than 65535"},
		{"default limit over ceiling", Config{MemoryLimitPages: 10}, "DefaultLimits.MemoryPages 1024 exceeds config.MemoryLimitPages 10"},
		{"negative timeout", Config{DefaultLimits: Limits{CallTimeout: -1}}, "limits.CallTimeout -1ns is negative"},
		{"negative output", Config{DefaultLimits: Limits{MaxOutputBytes: -1}}, "limits.MaxOutputBytes -1 is negative"},
		{"negative log rate", Config{DefaultLimits: Limits{MaxLogBytesPerSecond: -5}}, "limits.MaxLogBytesPerSecond -5 is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRuntime(context.Background(), tc.cfg)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				r.Close(context.Background())
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				r.Close(context.Background())
				t.Fatalf("NewRuntime error = %v, want %q", err, tc.err)
			}
		})
	}
	var c Config
	c.EnsureDefaults()
	want := Limits{MemoryPages: 1024, CallTimeout: 5 * time.Second, MaxOutputBytes: 64 << 20, MaxLogBytesPerSecond: 64 << 10}
	if c.DefaultLimits != want || c.MemoryLimitPages != 65535 {
		t.Errorf("defaults = %+v", c)
	}
}
