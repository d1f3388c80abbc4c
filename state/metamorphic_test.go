package state_test

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// TestMetamorphic runs the same random operation sequences (fixed seeds)
// against a reference model written here, the Memory backend and Pebble in
// three configurations, and compares the result of every operation. The
// Pebble configurations with small caches and batches also close and reopen
// their store now and then, so persistence is checked mid-sequence, and
// every system is now and then replaced by a restore of a snapshot of
// itself (canonical stream or, for two Pebble configurations, native
// files), so snapshots are checked against every later operation.
func TestMetamorphic(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	ops := 2500
	switch {
	case testing.Short():
		seeds, ops = seeds[:2], 800
	case raceEnabled:
		seeds = seeds[:3]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runMetamorphic(t, seed, ops)
		})
	}
}

// mmStates are registered, in this order, by every backend at start and
// after each reopen.
var mmStates = []struct {
	operator, name string
	kind           abi.StateKind
}{
	{"op1", "v", abi.StateValue},
	{"op1", "m", abi.StateMap},
	{"op1", "l", abi.StateList},
	{"op2", "v", abi.StateValue},
	{"op2", "m", abi.StateMap},
	{"op2", "l", abi.StateList},
}

var (
	mmKeys   = []string{"", "a", "ab", "b", "\x00", "a\x00", "\xff"}
	mmKGs    = []int{0, 1, 7, state.MaxKeyGroups - 1}
	mmStamps = []int64{math.MinInt64, -5, -1, 0, 1, 2, 3, 5, 8, 13, 20, math.MaxInt64}
)

type mmOpKind int

const (
	opGet mmOpKind = iota
	opPut
	opDelete
	opAppend
	opScan
	opClear
	opRegister
	opRegisterTimer
	opDeleteTimer
	opFireTimers
	opNextTimer
	opReopen
	opFlush
	opRestore
	numOps
)

// mmWeights are the relative frequencies of the operations (a restore,
// which opens new stores, about once in 250 operations).
var mmWeights = [numOps]int{
	opGet: 40, opPut: 40, opDelete: 12, opAppend: 20, opScan: 20, opClear: 6,
	opRegister: 2, opRegisterTimer: 24, opDeleteTimer: 8, opFireTimers: 8,
	opNextTimer: 8, opReopen: 2, opFlush: 2, opRestore: 1,
}

type mmOp struct {
	kind     mmOpKind
	state    int // index into mmStates
	kg       int
	key, sub string
	value    string
	regKind  abi.StateKind
	owner    uint32
	domain   abi.TimeDomain
	ts       int64
	upTo     int64
}

func (o mmOp) String() string {
	return fmt.Sprintf("op%d state=%d kg=%d key=%q sub=%q value=%q regKind=%d owner=%d domain=%d ts=%d upTo=%d",
		o.kind, o.state, o.kg, o.key, o.sub, o.value, o.regKind, o.owner, o.domain, o.ts, o.upTo)
}

func randomOp(r *rand.Rand) mmOp {
	total := 0
	for _, w := range mmWeights {
		total += w
	}
	n := r.IntN(total)
	var kind mmOpKind
	for kind = 0; kind < numOps; kind++ {
		if n < mmWeights[kind] {
			break
		}
		n -= mmWeights[kind]
	}
	o := mmOp{
		kind:    kind,
		state:   r.IntN(len(mmStates)),
		kg:      mmKGs[r.IntN(len(mmKGs))*r.IntN(2)], // half of the calls in group 0
		key:     mmKeys[r.IntN(len(mmKeys))],
		regKind: abi.StateKind(1 + r.IntN(3)),
		owner:   uint32(r.IntN(2)),
		domain:  abi.TimeDomain(r.IntN(2)),
		ts:      mmStamps[r.IntN(len(mmStamps))],
		upTo:    mmStamps[r.IntN(len(mmStamps))],
	}
	if r.IntN(60) == 0 {
		o.kg = []int{-1, state.MaxKeyGroups}[r.IntN(2)]
	}
	// Value-state calls mostly use the empty sub key, as they must.
	if mmStates[o.state].kind != abi.StateValue || r.IntN(30) == 0 {
		o.sub = mmKeys[r.IntN(len(mmKeys))]
	}
	v := make([]byte, r.IntN(24))
	for i := range v {
		v[i] = byte(r.IntN(256))
	}
	o.value = string(v)
	return o
}

// mmBackend is a system under test: a backend, the ids it gave to
// mmStates, and how to reopen it (nil for Memory). A Pebble backend
// lives in dir with opts; native says it is restored from native files.
type mmBackend struct {
	name   string
	b      state.Backend
	ids    []state.ID
	reopen func() (state.Backend, error)
	t      *testing.T
	dir    string
	opts   state.PebbleOptions
	native bool
}

// mmOwners name the timer owners of the metamorphic test for snapshots:
// owner 0 is operator op1, owner 1 op2.
var mmOwners = []string{"op1", "op2"}

var allKeyGroups = abi.KeyGroupRange{Start: 0, End: state.MaxKeyGroups}

var mmMapping = state.ImportMapping{Owner: func(op string) (uint32, bool) {
	i := slices.Index(mmOwners, op)
	return uint32(i), i >= 0
}}

// restore snapshots the backend and returns a new one restored from the
// snapshot; the old one is closed.
func (mb *mmBackend) restore() (state.Backend, error) {
	form := state.FormCanonical
	if mb.native {
		form = state.FormNative
	}
	snap, err := mb.b.(state.Snapshotter).Snapshot(form, mb.t.TempDir())
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	if err := mb.b.Close(); err != nil { // the snapshot outlives the backend
		return nil, err
	}
	if mb.native {
		mb.dir = mb.t.TempDir()
		for _, f := range snap.NativeFiles() {
			b, err := os.ReadFile(f.Path)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(mb.dir, f.Name), b, 0o644); err != nil {
				return nil, err
			}
		}
		return state.OpenPebble(mb.dir, mb.opts)
	}
	var buf bytes.Buffer
	err = snap.Export(&buf, allKeyGroups, func(o uint32) string { return mmOwners[o] })
	if err != nil {
		return nil, err
	}
	var nb state.Backend = state.NewMemory()
	if mb.dir != "" {
		mb.dir = mb.t.TempDir()
		if nb, err = state.OpenPebble(mb.dir, mb.opts); err != nil {
			return nil, err
		}
	}
	if err := state.Import(nb, &buf, allKeyGroups, mmMapping); err != nil {
		_ = nb.Close()
		return nil, err
	}
	return nb, nil
}

func (mb *mmBackend) registerAll() error {
	mb.ids = mb.ids[:0]
	for _, s := range mmStates {
		id, err := mb.b.Register(s.operator, s.name, s.kind)
		if err != nil {
			return err
		}
		mb.ids = append(mb.ids, id)
	}
	return nil
}

func runMetamorphic(t *testing.T, seed uint64, nops int) {
	configs := []struct {
		name           string
		opts           state.PebbleOptions
		reopen, native bool
	}{
		{"pebble-default", state.PebbleOptions{}, false, true},
		{"pebble-tiny", tinyPebbleOptions, true, false},
		{"pebble-small", state.PebbleOptions{CacheBytes: 2000, BatchBytes: 300, TimerCacheSize: 2, MemTableBytes: 1 << 20, BlockCacheBytes: 1 << 20}, true, true},
	}
	backends := []*mmBackend{{name: "memory", b: state.NewMemory(), t: t}}
	for _, c := range configs {
		mb := &mmBackend{name: c.name, t: t, dir: t.TempDir(), opts: c.opts, native: c.native}
		p, err := state.OpenPebble(mb.dir, mb.opts)
		if err != nil {
			t.Fatal(err)
		}
		mb.b = p
		if c.reopen {
			mb.reopen = func() (state.Backend, error) { return state.OpenPebble(mb.dir, mb.opts) }
		}
		backends = append(backends, mb)
	}
	t.Cleanup(func() {
		for _, mb := range backends {
			_ = mb.b.Close()
		}
	})
	for _, mb := range backends {
		if err := mb.registerAll(); err != nil {
			t.Fatalf("%s: register: %v", mb.name, err)
		}
	}
	model := newMMModel()
	r := rand.New(rand.NewPCG(seed, seed*7919))
	// Counts of informative results: a generator that stopped producing
	// them would make the comparison vacuous.
	var hits, scans, fired, reopens, restores int
	defer func() {
		t.Logf("%d ops: %d Get hits, %d non-empty scans, %d non-empty fires, %d reopens, %d restores", nops, hits, scans, fired, reopens, restores)
		if !t.Failed() && (hits == 0 || scans == 0 || fired == 0 || reopens == 0 || restores == 0) {
			t.Errorf("degenerate sequence: %d Get hits, %d non-empty scans, %d non-empty fires, %d reopens, %d restores", hits, scans, fired, reopens, restores)
		}
	}()
	var prev mmOp
	for i := 0; i < nops; i++ {
		o := randomOp(r)
		if r.IntN(2) == 0 {
			// Half of the ops address the previous op's cell: read,
			// modify, write, delete sequences on one key, as operators do.
			o.state, o.kg, o.key, o.sub = prev.state, prev.kg, prev.key, prev.sub
		}
		prev = o
		want := model.apply(o)
		switch {
		case o.kind == opGet && strings.HasPrefix(want, "="):
			hits++
		case o.kind == opScan && want != "" && !strings.HasPrefix(want, "error"):
			scans++
		case o.kind == opFireTimers && want != "":
			fired++
		case o.kind == opReopen:
			reopens++
		case o.kind == opRestore:
			restores++
		}
		for _, mb := range backends {
			got, err := mb.apply(o)
			if err != nil {
				t.Fatalf("seed %d op %d %v: %s: %v", seed, i, o, mb.name, err)
			}
			if got != want {
				t.Fatalf("seed %d op %d %v:\n  %s: %s\n  model: %s", seed, i, o, mb.name, got, want)
			}
		}
	}
}

// errClass names an error by the sentinel it wraps, so that results of
// different backends compare.
func errClass(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{state.ErrKindMismatch, "kind-mismatch"},
		{state.ErrWrongKind, "wrong-kind"},
		{state.ErrKeyGroupRange, "kg-range"},
		{state.ErrUnknownState, "unknown-state"},
		{state.ErrTimeDomain, "time-domain"},
	} {
		if errors.Is(err, c.err) {
			return "error " + c.name
		}
	}
	return "unexpected error: " + err.Error()
}

// fireEffects is what a FireTimers callback does for a fired timer, the
// same for every system: it may re-register its key later (fires again in
// the same call while <= upTo), delete another timer, and write state.
type fireEffect struct {
	register *state.Timer
	delete   *state.Timer
	putKey   string // value state op1/v, cell (kg, putKey) := ts
}

func effectsOf(tm state.Timer, upTo int64) fireEffect {
	var e fireEffect
	switch string(tm.Key) {
	case "a":
		if tm.Timestamp >= -5 && tm.Timestamp < upTo && tm.Timestamp < 20 {
			e.register = &state.Timer{Owner: tm.Owner, Domain: tm.Domain, Timestamp: tm.Timestamp + 3, KeyGroup: tm.KeyGroup, Key: []byte("a")}
		}
	case "b":
		e.delete = &state.Timer{Owner: tm.Owner, Domain: tm.Domain, Timestamp: 8, KeyGroup: tm.KeyGroup, Key: []byte("ab")}
	case "":
		e.register = &state.Timer{Owner: tm.Owner, Domain: tm.Domain, Timestamp: tm.Timestamp - 1, KeyGroup: 7, Key: []byte("\x00")}
		if tm.Timestamp == math.MinInt64 {
			e.register = nil
		}
	}
	e.putKey = string(tm.Key)
	return e
}

func timerLine(tm state.Timer) string {
	return fmt.Sprintf("(%d %d %d %d %q)", tm.Owner, tm.Domain, tm.Timestamp, tm.KeyGroup, tm.Key)
}

// apply runs o on the backend; a non-nil error means the test harness
// itself failed (reopen).
func (mb *mmBackend) apply(o mmOp) (string, error) {
	b := mb.b
	id := mb.ids[o.state]
	key, sub, value := []byte(o.key), []byte(o.sub), []byte(o.value)
	res := func(err error) string {
		if err != nil {
			return errClass(err)
		}
		return "ok"
	}
	switch o.kind {
	case opGet:
		v, ok, err := b.Get(id, o.kg, key, sub)
		if err != nil {
			return errClass(err), nil
		}
		if !ok {
			return "absent", nil
		}
		return fmt.Sprintf("=%q", v), nil
	case opPut:
		return res(b.Put(id, o.kg, key, sub, value)), nil
	case opDelete:
		return res(b.Delete(id, o.kg, key, sub)), nil
	case opAppend:
		return res(b.Append(id, o.kg, key, value)), nil
	case opScan:
		var sb strings.Builder
		err := b.Scan(id, o.kg, key, func(sub, value []byte) error {
			fmt.Fprintf(&sb, "%q=%q ", sub, value)
			return nil
		})
		if err != nil {
			return errClass(err), nil
		}
		return sb.String(), nil
	case opClear:
		return res(b.Clear(id, o.kg, key)), nil
	case opRegister:
		s := mmStates[o.state]
		got, err := b.Register(s.operator, s.name, o.regKind)
		if err != nil {
			return errClass(err), nil
		}
		return fmt.Sprintf("same=%v", got == id), nil
	case opRegisterTimer:
		return res(b.RegisterTimer(state.Timer{Owner: o.owner, Domain: o.domain, Timestamp: o.ts, KeyGroup: o.kg, Key: key})), nil
	case opDeleteTimer:
		return res(b.DeleteTimer(state.Timer{Owner: o.owner, Domain: o.domain, Timestamp: o.ts, KeyGroup: o.kg, Key: key})), nil
	case opFireTimers:
		var sb strings.Builder
		err := b.FireTimers(o.owner, o.domain, o.upTo, func(tm state.Timer) error {
			sb.WriteString(timerLine(tm))
			e := effectsOf(tm, o.upTo)
			if e.register != nil {
				if err := b.RegisterTimer(*e.register); err != nil {
					return err
				}
			}
			if e.delete != nil {
				if err := b.DeleteTimer(*e.delete); err != nil {
					return err
				}
			}
			return b.Put(mb.ids[0], tm.KeyGroup, []byte(e.putKey), nil, []byte(fmt.Sprint(tm.Timestamp)))
		})
		if err != nil {
			return errClass(err), nil
		}
		return sb.String(), nil
	case opNextTimer:
		ts, ok, err := b.NextTimer(o.owner, o.domain)
		if err != nil {
			return errClass(err), nil
		}
		return fmt.Sprintf("%d %v", ts, ok), nil
	case opReopen:
		if mb.reopen == nil {
			return "ok", nil
		}
		before := slices.Clone(mb.ids)
		if err := b.Close(); err != nil {
			return "", fmt.Errorf("close: %w", err)
		}
		nb, err := mb.reopen()
		if err != nil {
			return "", fmt.Errorf("reopen: %w", err)
		}
		mb.b = nb
		if err := mb.registerAll(); err != nil {
			return "", fmt.Errorf("register after reopen: %w", err)
		}
		if !slices.Equal(before, mb.ids) {
			return "", fmt.Errorf("ids changed across reopen: %v, then %v", before, mb.ids)
		}
		return "ok", nil
	case opRestore:
		before := slices.Clone(mb.ids)
		nb, err := mb.restore()
		if err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		mb.b = nb
		if err := mb.registerAll(); err != nil {
			return "", fmt.Errorf("register after restore: %w", err)
		}
		if !slices.Equal(before, mb.ids) {
			return "", fmt.Errorf("ids changed across restore: %v, then %v", before, mb.ids)
		}
		return "ok", nil
	case opFlush:
		if p, ok := b.(*state.Pebble); ok {
			if err := p.Flush(); err != nil {
				return "", fmt.Errorf("flush: %w", err)
			}
		}
		return "ok", nil
	}
	return "", fmt.Errorf("unknown op %d", o.kind)
}

// mmModel is the reference: plain maps, linear scans, no cleverness.
type mmModel struct {
	cells  map[mmCell]string
	lists  map[mmCell][]string // sub is always ""
	timers map[mmTimer]bool
}

type mmCell struct {
	state    int
	kg       int
	key, sub string
}

type mmTimer struct {
	owner  uint32
	domain abi.TimeDomain
	ts     int64
	kg     int
	key    string
}

func newMMModel() *mmModel {
	return &mmModel{cells: map[mmCell]string{}, lists: map[mmCell][]string{}, timers: map[mmTimer]bool{}}
}

func (m *mmModel) apply(o mmOp) string {
	kind := mmStates[o.state].kind
	kgOK := o.kg >= 0 && o.kg < state.MaxKeyGroups
	cellOp := func() (mmCell, string) {
		switch {
		case !kgOK:
			return mmCell{}, "error kg-range"
		case kind == abi.StateList, kind == abi.StateValue && o.sub != "":
			return mmCell{}, "error wrong-kind"
		}
		return mmCell{o.state, o.kg, o.key, o.sub}, ""
	}
	switch o.kind {
	case opGet:
		c, errs := cellOp()
		if errs != "" {
			return errs
		}
		v, ok := m.cells[c]
		if !ok {
			return "absent"
		}
		return fmt.Sprintf("=%q", v)
	case opPut:
		c, errs := cellOp()
		if errs != "" {
			return errs
		}
		m.cells[c] = o.value
		return "ok"
	case opDelete:
		c, errs := cellOp()
		if errs != "" {
			return errs
		}
		delete(m.cells, c)
		return "ok"
	case opAppend:
		if !kgOK {
			return "error kg-range"
		}
		if kind != abi.StateList {
			return "error wrong-kind"
		}
		c := mmCell{o.state, o.kg, o.key, ""}
		m.lists[c] = append(m.lists[c], o.value)
		return "ok"
	case opScan:
		if !kgOK {
			return "error kg-range"
		}
		var sb strings.Builder
		if kind == abi.StateList {
			for _, v := range m.lists[mmCell{o.state, o.kg, o.key, ""}] {
				fmt.Fprintf(&sb, "%q=%q ", "", v)
			}
			return sb.String()
		}
		var subs []string
		for c := range m.cells {
			if c.state == o.state && c.kg == o.kg && c.key == o.key {
				subs = append(subs, c.sub)
			}
		}
		slices.Sort(subs)
		for _, s := range subs {
			fmt.Fprintf(&sb, "%q=%q ", s, m.cells[mmCell{o.state, o.kg, o.key, s}])
		}
		return sb.String()
	case opClear:
		if !kgOK {
			return "error kg-range"
		}
		delete(m.lists, mmCell{o.state, o.kg, o.key, ""})
		for c := range m.cells {
			if c.state == o.state && c.kg == o.kg && c.key == o.key {
				delete(m.cells, c)
			}
		}
		return "ok"
	case opRegister:
		if o.regKind != kind {
			return "error kind-mismatch"
		}
		return "same=true"
	case opRegisterTimer, opDeleteTimer:
		if !kgOK {
			return "error kg-range"
		}
		tk := mmTimer{o.owner, o.domain, o.ts, o.kg, o.key}
		if o.kind == opRegisterTimer {
			m.timers[tk] = true
		} else {
			delete(m.timers, tk)
		}
		return "ok"
	case opFireTimers:
		var sb strings.Builder
		for {
			next, ok := m.next(o.owner, o.domain)
			if !ok || next.ts > o.upTo {
				break
			}
			delete(m.timers, next)
			tm := state.Timer{Owner: next.owner, Domain: next.domain, Timestamp: next.ts, KeyGroup: next.kg, Key: []byte(next.key)}
			sb.WriteString(timerLine(tm))
			e := effectsOf(tm, o.upTo)
			if r := e.register; r != nil {
				m.timers[mmTimer{r.Owner, r.Domain, r.Timestamp, r.KeyGroup, string(r.Key)}] = true
			}
			if d := e.delete; d != nil {
				delete(m.timers, mmTimer{d.Owner, d.Domain, d.Timestamp, d.KeyGroup, string(d.Key)})
			}
			m.cells[mmCell{0, next.kg, e.putKey, ""}] = fmt.Sprint(next.ts)
		}
		return sb.String()
	case opNextTimer:
		next, ok := m.next(o.owner, o.domain)
		if !ok {
			return "0 false"
		}
		return fmt.Sprintf("%d true", next.ts)
	case opReopen, opFlush, opRestore:
		return "ok"
	}
	panic(fmt.Sprintf("unknown op %d", o.kind))
}

// next is the first timer of (owner, domain) in firing order.
func (m *mmModel) next(owner uint32, d abi.TimeDomain) (mmTimer, bool) {
	var best mmTimer
	found := false
	for tk := range m.timers {
		if tk.owner != owner || tk.domain != d {
			continue
		}
		if !found || cmp.Or(cmp.Compare(tk.ts, best.ts), cmp.Compare(tk.kg, best.kg), bytes.Compare([]byte(tk.key), []byte(best.key))) < 0 {
			best, found = tk, true
		}
	}
	return best, found
}
