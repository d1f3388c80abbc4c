package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/weirstream/weir/wasmhost/internal/interrupt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/weirstream/weir/abi"
)

// Module is a compiled and validated Weir module. It is immutable and safe
// for concurrent use; instantiate it once per operator task.
type Module struct {
	rt       *Runtime
	engine   wazero.Runtime // rt.fast when interruptible, else rt.rt
	compiled wazero.CompiledModule
	// interruptible: the module was instrumented (internal/interrupt) and
	// exports the interrupt flag its loops check.
	interruptible bool
	digest        string
	ops           []abi.OperatorInfo
	hasInit       bool
	minPages      uint32
	modCfg        wazero.ModuleConfig
	closed        atomic.Bool
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// guestExports are the functions ABI.md section 2 requires, with their types.
var guestExports = []struct {
	name            string
	params, results []api.ValueType
}{
	{abi.ExportABIVersion, nil, []api.ValueType{i32}},
	{abi.ExportOperators, nil, []api.ValueType{i64}},
	{abi.ExportBuffer, []api.ValueType{i32}, []api.ValueType{i32}},
	{abi.ExportOpen, []api.ValueType{i32, i32}, []api.ValueType{i32}},
	{abi.ExportProcess, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	{abi.ExportClose, nil, []api.ValueType{i32}},
}

const memoryExport = "memory"

var wasmMagic = []byte("\x00asm")

// Compile validates wasm as a Weir module and compiles it: it must be a
// WebAssembly binary that exports memory and the functions of ABI.md section
// 2 with the right types, import only known host functions, report ABI
// version 1 and a well-formed operator table. To ask the last two, Compile
// runs one short-lived validation instance under Config.DefaultLimits.
//
// A module that is not valid yields a *ModuleError. Compiling the same bytes
// again is cheap (wazero and the on-disk cache reuse the machine code), but
// callers should still compile once per module and share the *Module.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	sum := sha256.Sum256(wasm)
	digest := hex.EncodeToString(sum[:])
	if err := checkHeader(wasm, digest); err != nil {
		return nil, err
	}
	engine, bin, interruptible := r.rt, wasm, false
	if !hasStartSection(wasm) {
		// A start function runs inside instantiation, before the host can
		// reach the interrupt flag: such modules stay on the checked engine.
		inst, err := interrupt.Instrument(wasm)
		switch {
		case err == nil:
			engine, bin, interruptible = r.fast, inst, true
		case errors.Is(err, interrupt.ErrUnsupported):
			// Valid perhaps, but not rewritable: wazero's own checks.
		default:
			// Malformed, or counts that would make wazero allocate
			// gigabytes before validating them: never hand it over.
			return nil, moduleErrorf(ModuleMalformed, digest, err, "%v", err)
		}
	}
	compiled, err := engine.CompileModule(ctx, bin)
	if err != nil {
		if r.closed.Load() {
			return nil, fmt.Errorf("wasmhost: compile: %w", ErrClosed)
		}
		// wazero checks declared memory against MemoryLimitPages while
		// decoding; its message is the only way to tell that case apart.
		if strings.Contains(err.Error(), "over limit of") {
			return nil, moduleErrorf(ModuleMemoryLimit, digest, err, "declares too much memory: %v", err)
		}
		return nil, moduleErrorf(ModuleMalformed, digest, err, "invalid WebAssembly: %v", err)
	}
	m := &Module{
		rt:            r,
		engine:        engine,
		interruptible: interruptible,
		compiled:      compiled,
		digest:        digest,
		// Anonymous, so that any number of instances coexist; no start
		// function, because _start must never run and _initialize runs
		// under our deadline (Instantiate).
		modCfg: wazero.NewModuleConfig().WithName("").WithStartFunctions(),
	}
	if err := m.validate(ctx); err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	return m, nil
}

// checkHeader rejects what is obviously not a WebAssembly 1.0 binary with a
// clearer message than a decoder error.
func checkHeader(wasm []byte, digest string) error {
	switch {
	case len(wasm) == 0:
		return moduleErrorf(ModuleNotWasm, digest, nil, "not a WebAssembly module (empty)")
	case len(wasm) < 8 || !bytes.Equal(wasm[:4], wasmMagic):
		return moduleErrorf(ModuleNotWasm, digest, nil, "not a WebAssembly module (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(wasm[4:8]); v != 1 {
		return moduleErrorf(ModuleNotWasm, digest, nil,
			"unsupported WebAssembly binary version %d (want 1; components are not supported)", v)
	}
	return nil
}

func (m *Module) validate(ctx context.Context) error {
	if err := m.checkImports(); err != nil {
		return err
	}
	if err := m.checkExports(); err != nil {
		return err
	}
	if lim := m.rt.cfg.DefaultLimits.MemoryPages; m.minPages > lim {
		return moduleErrorf(ModuleMemoryLimit, m.digest, nil,
			"declares %d initial memory pages, more than the limit of %d", m.minPages, lim)
	}
	return m.probe(ctx)
}

func (m *Module) checkImports() error {
	for _, mem := range m.compiled.ImportedMemories() {
		mod, name, _ := mem.Import()
		return moduleErrorf(ModuleUnknownImport, m.digest, nil,
			"imports memory %s.%s; a Weir module must define and export its own memory", mod, name)
	}
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		var want api.FunctionDefinition
		var wantParams, wantResults []api.ValueType
		switch mod {
		case abi.HostModule:
			hf, ok := hostFuncByName(name)
			if !ok {
				return moduleErrorf(ModuleUnknownImport, m.digest, nil, "imports unknown host function %s.%s", mod, name)
			}
			wantParams, wantResults = hf.params, hf.results
		case wasi_snapshot_preview1.ModuleName:
			if want = m.rt.wasi[name]; want == nil {
				return moduleErrorf(ModuleUnknownImport, m.digest, nil, "imports unknown WASI function %s.%s", mod, name)
			}
			wantParams, wantResults = want.ParamTypes(), want.ResultTypes()
		default:
			return moduleErrorf(ModuleUnknownImport, m.digest, nil,
				"imports unknown host function %s.%s (only modules %s and %s are provided)",
				mod, name, abi.HostModule, wasi_snapshot_preview1.ModuleName)
		}
		if !slices.Equal(f.ParamTypes(), wantParams) || !slices.Equal(f.ResultTypes(), wantResults) {
			return moduleErrorf(ModuleBadSignature, m.digest, nil, "import %s.%s has signature %s, want %s",
				mod, name, signature(f.ParamTypes(), f.ResultTypes()), signature(wantParams, wantResults))
		}
	}
	return nil
}

func (m *Module) checkExports() error {
	mem, ok := m.compiled.ExportedMemories()[memoryExport]
	if !ok {
		return moduleErrorf(ModuleMissingExport, m.digest, nil, "missing export %s (the linear memory)", memoryExport)
	}
	m.minPages = mem.Min()
	fns := m.compiled.ExportedFunctions()
	for _, e := range guestExports {
		f, ok := fns[e.name]
		if !ok {
			return moduleErrorf(ModuleMissingExport, m.digest, nil, "missing export %s", e.name)
		}
		if !slices.Equal(f.ParamTypes(), e.params) || !slices.Equal(f.ResultTypes(), e.results) {
			return moduleErrorf(ModuleBadSignature, m.digest, nil, "%s has signature %s, want %s",
				e.name, signature(f.ParamTypes(), f.ResultTypes()), signature(e.params, e.results))
		}
	}
	if f, ok := fns[abi.ExportInitialize]; ok {
		if len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0 {
			return moduleErrorf(ModuleBadSignature, m.digest, nil, "%s has signature %s, want ()",
				abi.ExportInitialize, signature(f.ParamTypes(), f.ResultTypes()))
		}
		m.hasInit = true
	}
	return nil
}

// probe runs a validation instance to ask the ABI version and the operator
// table, which only the guest's code knows.
func (m *Module) probe(ctx context.Context) error {
	inst, err := m.Instantiate(ctx, InstanceConfig{Name: "validate:" + m.digest[:12]})
	if err != nil {
		code := ModuleInitFailed
		if errors.Is(err, ErrMemoryLimit) {
			code = ModuleMemoryLimit
		}
		return moduleErrorf(code, m.digest, err, "validation instance: %s", describe(err))
	}
	defer inst.Close(ctx)

	version, err := inst.abiVersion(ctx)
	if err != nil {
		return moduleErrorf(ModuleInitFailed, m.digest, err, "validation instance: %s", describe(err))
	}
	if version != abi.Version {
		return moduleErrorf(ModuleABIVersion, m.digest, nil, "ABI version %d, this host supports %d", version, abi.Version)
	}
	table, err := inst.operatorTable(ctx)
	if err != nil {
		var ce *CallError
		if errors.As(err, &ce) && ce.Kind() != FailureABI {
			return moduleErrorf(ModuleInitFailed, m.digest, err, "validation instance: %s", describe(err))
		}
		return moduleErrorf(ModuleBadOperatorTable, m.digest, err, "bad operator table: %s", describe(err))
	}
	ops, err := abi.DecodeOperatorTable(table)
	if err != nil {
		return moduleErrorf(ModuleBadOperatorTable, m.digest, err, "bad operator table: %v", err)
	}
	if len(ops) == 0 {
		return moduleErrorf(ModuleBadOperatorTable, m.digest, nil, "bad operator table: the module exports no operators")
	}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Name] {
			return moduleErrorf(ModuleBadOperatorTable, m.digest, nil, "bad operator table: operator %q listed twice", op.Name)
		}
		seen[op.Name] = true
	}
	m.ops = ops
	return nil
}

// describe renders a validation instance's error without the instance
// name, which means nothing to the module's author.
func describe(err error) string {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Function() + ": " + ce.Unwrap().Error()
	}
	return strings.TrimPrefix(err.Error(), "wasmhost: ")
}

// Operators returns the operators the module exports (a copy).
func (m *Module) Operators() []abi.OperatorInfo { return slices.Clone(m.ops) }

// Operator returns the operator named name.
func (m *Module) Operator(name string) (abi.OperatorInfo, bool) {
	for _, op := range m.ops {
		if op.Name == name {
			return op, true
		}
	}
	return abi.OperatorInfo{}, false
}

// Digest is the sha256 of the module's bytes, in hex: its content address.
func (m *Module) Digest() string { return m.digest }

// Close releases the compiled code. Instances already created keep working
// until closed; no new ones can be created.
func (m *Module) Close(ctx context.Context) error {
	if m.closed.Swap(true) {
		return nil
	}
	return m.compiled.Close(ctx)
}

// signature renders a function type as "(i32,i32)->i32".
func signature(params, results []api.ValueType) string {
	var b strings.Builder
	b.WriteByte('(')
	for j, p := range params {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(api.ValueTypeName(p))
	}
	b.WriteByte(')')
	switch len(results) {
	case 0:
	case 1:
		b.WriteString("->")
		b.WriteString(api.ValueTypeName(results[0]))
	default:
		b.WriteString("->(")
		for j, r := range results {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(api.ValueTypeName(r))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// hasStartSection reports whether the module binary has a start section
// (id 8). Malformed input reports false; compiling it reports the problem.
func hasStartSection(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	for i := 8; i < len(b); {
		id := b[i]
		size, n := uleb32(b[i+1:])
		if n == 0 {
			return false
		}
		if id == 8 {
			return true
		}
		i += 1 + n + int(size)
	}
	return false
}

// uleb32 decodes an unsigned LEB128 u32; n is 0 on malformed input.
func uleb32(b []byte) (v uint32, n int) {
	var shift uint
	for i, c := range b {
		if i == 5 {
			return 0, 0
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}
