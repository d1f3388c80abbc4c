package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/weirstream/weir/abi"
)

// testWasm reads testdata/<name>.wasm (generated from <name>.wat by gen.sh).
func testWasm(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		t.Fatalf("reading test module: %v (regenerate with testdata/gen.sh)", err)
	}
	return b
}

func newTestRuntime(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	r, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("Runtime.Close: %v", err)
		}
	})
	return r
}

func compile(t testing.TB, r *Runtime, name string) *Module {
	t.Helper()
	m, err := r.Compile(context.Background(), testWasm(t, name))
	if err != nil {
		t.Fatalf("Compile(%s): %v", name, err)
	}
	return m
}

func instantiate(t testing.TB, m *Module, ic InstanceConfig) *Instance {
	t.Helper()
	i, err := m.Instantiate(context.Background(), ic)
	if err != nil {
		t.Fatalf("Instantiate: %v", err)
	}
	t.Cleanup(func() { _ = i.Close(context.Background()) })
	return i
}

// open instantiates m and opens operator op.
func open(t testing.TB, m *Module, op string, ic InstanceConfig) *Instance {
	t.Helper()
	i := instantiate(t, m, ic)
	if err := i.Open(context.Background(), abi.OpenInfo{Operator: op, NodeID: "n1", Parallelism: 1, MaxParallelism: 128, Inputs: 1}); err != nil {
		t.Fatalf("Open(%s): %v", op, err)
	}
	return i
}

// callError asserts that err is a *CallError of kind k and returns it.
func callError(t testing.TB, err error, k FailureKind) *CallError {
	t.Helper()
	var ce *CallError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *CallError", err, err)
	}
	if ce.Kind() != k {
		t.Fatalf("CallError kind = %v, want %v; error: %v", ce.Kind(), k, err)
	}
	return ce
}

// records encodes n records key<i>/value<i> with timestamps i.
func records(n int) []byte {
	var e abi.Encoder
	for i := range n {
		e.Record(abi.TagMain, fmt.Appendf(nil, "key%d", i), fmt.Appendf(nil, "value%d", i), int64(i))
	}
	return e.B
}

// decodeAll decodes a batch into events, copying keys and values.
func decodeAll(t testing.TB, b []byte) []abi.Event {
	t.Helper()
	var evs []abi.Event
	d := abi.NewDecoder(b)
	for d.More() {
		var ev abi.Event
		if err := d.Next(&ev); err != nil {
			t.Fatalf("decoding output: %v", err)
		}
		ev.Key, ev.Value = bytes.Clone(ev.Key), bytes.Clone(ev.Value)
		evs = append(evs, ev)
	}
	return evs
}

// memState is a StateAccess backed by maps, for tests. It is safe for
// concurrent use so that one value can serve several instances.
type memState struct {
	mu    sync.Mutex
	ids   map[string]int32
	kinds []abi.StateKind
	cells map[string][]byte   // id/key/sub -> value (value and map state)
	lists map[string][][]byte // id/key -> values (list state)
	fail  error               // returned by every call when set
}

func newMemState() *memState {
	return &memState{ids: map[string]int32{}, cells: map[string][]byte{}, lists: map[string][][]byte{}}
}

func cellKey(id int32, key, sub []byte) string {
	return fmt.Sprintf("%d/%q/%q", id, key, sub)
}

func (s *memState) check(id int32) error {
	if s.fail != nil {
		return s.fail
	}
	if id < 0 || int(id) >= len(s.kinds) {
		return abi.ErrInvalid
	}
	return nil
}

func (s *memState) Register(name string, kind abi.StateKind) (int32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if id, ok := s.ids[name]; ok {
		if s.kinds[id] != kind {
			return 0, abi.ErrInvalid
		}
		return id, nil
	}
	id := int32(len(s.kinds))
	s.ids[name] = id
	s.kinds = append(s.kinds, kind)
	return id, nil
}

func (s *memState) Get(id int32, key, sub []byte) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(id); err != nil {
		return nil, false, err
	}
	v, ok := s.cells[cellKey(id, key, sub)]
	return v, ok, nil
}

func (s *memState) Put(id int32, key, sub, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(id); err != nil {
		return err
	}
	s.cells[cellKey(id, key, sub)] = bytes.Clone(value)
	return nil
}

func (s *memState) Delete(id int32, key, sub []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(id); err != nil {
		return err
	}
	delete(s.cells, cellKey(id, key, sub))
	return nil
}

func (s *memState) Append(id int32, key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(id); err != nil {
		return err
	}
	k := cellKey(id, key, nil)
	s.lists[k] = append(s.lists[k], bytes.Clone(value))
	return nil
}

func (s *memState) Scan(id int32, key []byte, fn func(sub, value []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(id); err != nil {
		return err
	}
	if s.kinds[id] == abi.StateList {
		for _, v := range s.lists[cellKey(id, key, nil)] {
			if err := fn(nil, v); err != nil {
				return err
			}
		}
		return nil
	}
	prefix := fmt.Sprintf("%d/%q/", id, key)
	var subs []string
	for k := range s.cells {
		if strings.HasPrefix(k, prefix) {
			subs = append(subs, k)
		}
	}
	sort.Strings(subs)
	for _, k := range subs {
		var sub string
		if _, err := fmt.Sscanf(k[len(prefix):], "%q", &sub); err != nil {
			return err
		}
		if err := fn([]byte(sub), s.cells[k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memState) Clear(id int32, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(id); err != nil {
		return err
	}
	prefix := fmt.Sprintf("%d/%q/", id, key)
	for k := range s.cells {
		if strings.HasPrefix(k, prefix) {
			delete(s.cells, k)
		}
	}
	delete(s.lists, cellKey(id, key, nil))
	return nil
}

// timer is a registered timer in fakeTimers.
type timer struct {
	Domain abi.TimeDomain
	Key    string
	TS     int64
}

// fakeTimers is a Timers for tests: a set of timers, a settable watermark
// and processing time.
type fakeTimers struct {
	mu     sync.Mutex
	timers map[timer]bool
	wm     int64
	now    int64
	fail   error
}

func newFakeTimers() *fakeTimers {
	return &fakeTimers{timers: map[timer]bool{}, wm: abi.MinWatermark}
}

func (f *fakeTimers) RegisterTimer(d abi.TimeDomain, key []byte, ts int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.timers[timer{d, string(key), ts}] = true
	return nil
}

func (f *fakeTimers) DeleteTimer(d abi.TimeDomain, key []byte, ts int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.timers, timer{d, string(key), ts})
	return nil
}

func (f *fakeTimers) Watermark() int64      { f.mu.Lock(); defer f.mu.Unlock(); return f.wm }
func (f *fakeTimers) ProcessingTime() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fakeTimers) list() []timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ts []timer
	for t := range f.timers {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b timer) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return int(a.TS - b.TS)
	})
	return ts
}

// logLine is one GuestLog call.
type logLine struct {
	Level abi.LogLevel
	Msg   string
}

// recLogger records guest log lines.
type recLogger struct {
	mu    sync.Mutex
	lines []logLine
}

func (l *recLogger) GuestLog(level abi.LogLevel, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{level, msg})
}

func (l *recLogger) all() []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// The Go guest (testdata/goguest) is built once per test binary, cached on
// disk by the hash of its inputs, so that only a change to the guest or the
// abi package rebuilds it.
var goGuest struct {
	once sync.Once
	wasm []byte
	err  error
}

func goGuestWasm(t testing.TB) []byte {
	t.Helper()
	goGuest.once.Do(func() { goGuest.wasm, goGuest.err = buildGoGuest() })
	if goGuest.err != nil {
		t.Fatalf("building the Go test guest testdata/goguest (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared): %v", goGuest.err)
	}
	return goGuest.wasm
}

func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("the go tool is neither on PATH nor in GOROOT/bin; it is needed to build the Wasm test guest")
}

func buildGoGuest() ([]byte, error) {
	gotool, err := goTool()
	if err != nil {
		return nil, err
	}
	version, err := exec.Command(gotool, "version").Output()
	if err != nil {
		return nil, fmt.Errorf("go version: %w", err)
	}
	h := sha256.New()
	h.Write(version)
	inputs, _ := filepath.Glob("testdata/goguest/*.go")
	abiFiles, _ := filepath.Glob("../abi/*.go")
	inputs = append(append(inputs, abiFiles...), "../go.mod")
	for _, f := range inputs {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]

	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "weir-test", "wasmhost")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "goguest-"+sum+".wasm")
	if b, err := os.ReadFile(out); err == nil {
		return b, nil
	}
	tmp, err := os.CreateTemp(dir, "goguest-*.wasm.tmp")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(gotool, "build", "-buildmode=c-shared", "-o", tmp.Name(), "./testdata/goguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, msg)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}
