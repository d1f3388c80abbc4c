package state_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// dump is the content of a backend as the tests see it: cells, lists and
// timers named by operator and state name, not by internal ids. The random
// workload keeps one as its reference model, and decodeStream builds one
// from a canonical stream with its own parser (written from the
// specification in doc.go, sharing no code with format.go).
type dump struct {
	states map[stateName]abi.StateKind
	cells  map[dumpCell]string
	lists  map[dumpCell][]string // sub is always ""
	timers map[dumpTimer]bool
}

type stateName struct{ op, name string }

type dumpCell struct {
	st       stateName
	kg       int
	key, sub string
}

type dumpTimer struct {
	owner  string
	domain abi.TimeDomain
	ts     int64
	kg     int
	key    string
}

func newDump() *dump {
	return &dump{states: map[stateName]abi.StateKind{}, cells: map[dumpCell]string{}, lists: map[dumpCell][]string{}, timers: map[dumpTimer]bool{}}
}

func (d *dump) clone() *dump {
	c := &dump{states: maps.Clone(d.states), cells: maps.Clone(d.cells), lists: make(map[dumpCell][]string, len(d.lists)), timers: maps.Clone(d.timers)}
	for k, v := range d.lists {
		c.lists[k] = slices.Clone(v)
	}
	return c
}

// restrict returns the part of d in key groups [start, end) whose
// operators keep says to keep (all if keep is nil).
func (d *dump) restrict(start, end int, keep func(op string) bool) *dump {
	r := newDump()
	ok := func(op string, kg int) bool { return kg >= start && kg < end && (keep == nil || keep(op)) }
	for s, k := range d.states {
		if keep == nil || keep(s.op) {
			r.states[s] = k
		}
	}
	for c, v := range d.cells {
		if ok(c.st.op, c.kg) {
			r.cells[c] = v
		}
	}
	for c, v := range d.lists {
		if ok(c.st.op, c.kg) {
			r.lists[c] = slices.Clone(v)
		}
	}
	for tm := range d.timers {
		if ok(tm.owner, tm.kg) {
			r.timers[tm] = true
		}
	}
	return r
}

// merge adds o to d (their key groups are disjoint).
func (d *dump) merge(o *dump) {
	maps.Copy(d.states, o.states)
	maps.Copy(d.cells, o.cells)
	maps.Copy(d.lists, o.lists)
	maps.Copy(d.timers, o.timers)
}

// diff describes the first differences between d (got) and want.
func (d *dump) diff(want *dump) string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < 12 {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	for s, k := range want.states {
		if got, ok := d.states[s]; !ok || got != k {
			add("state %v: got kind %v (present %v), want %v", s, got, ok, k)
		}
	}
	for s := range d.states {
		if _, ok := want.states[s]; !ok {
			add("extra state %v", s)
		}
	}
	for c, v := range want.cells {
		if got, ok := d.cells[c]; !ok || got != v {
			add("cell %+v: got %q (present %v), want %q", c, got, ok, v)
		}
	}
	for c, v := range d.cells {
		if _, ok := want.cells[c]; !ok {
			add("extra cell %+v = %q", c, v)
		}
	}
	for c, v := range want.lists {
		if got := d.lists[c]; !slices.Equal(got, v) {
			add("list %+v: got %q, want %q", c, got, v)
		}
	}
	for c, v := range d.lists {
		if _, ok := want.lists[c]; !ok {
			add("extra list %+v = %q", c, v)
		}
	}
	for tm := range want.timers {
		if !d.timers[tm] {
			add("missing timer %+v", tm)
		}
	}
	for tm := range d.timers {
		if !want.timers[tm] {
			add("extra timer %+v", tm)
		}
	}
	return strings.Join(out, "\n")
}

func (d *dump) String() string {
	return fmt.Sprintf("%d states, %d cells, %d lists, %d timers", len(d.states), len(d.cells), len(d.lists), len(d.timers))
}

// decodeStream parses a canonical stream (version 1) independently of
// format.go and returns its content and the key-group range its header
// names.
func decodeStream(data []byte) (*dump, [2]int, error) {
	var kr [2]int
	if len(data) < 8 || string(data[:8]) != "WEIRSNAP" {
		return nil, kr, errors.New("bad magic")
	}
	data = data[8:]
	d := newDump()
	var states []stateName
	var kinds []abi.StateKind
	var owners []string
	var counts [5]uint64 // blocks, cells, lists, timers, bytes
	table := crc32.MakeTable(crc32.Castagnoli)
	for first := true; ; first = false {
		if len(data) < 9 {
			return nil, kr, errors.New("truncated frame")
		}
		typ, n := data[0], int(binary.BigEndian.Uint32(data[1:5]))
		if len(data) < 9+n {
			return nil, kr, errors.New("truncated payload")
		}
		p := data[5 : 5+n]
		if crc32.Checksum(data[:5+n], table) != binary.BigEndian.Uint32(data[5+n:]) {
			return nil, kr, errors.New("bad crc")
		}
		data = data[9+n:]
		r := &rd{b: p}
		if first != (typ == 'H') {
			return nil, kr, fmt.Errorf("block %c at the wrong place", typ)
		}
		switch typ {
		case 'H':
			if v := r.u(2); v != 1 {
				return nil, kr, fmt.Errorf("version %d", v)
			}
			kr = [2]int{int(r.u(4)), int(r.u(4))}
			for i := r.uv(); i > 0; i-- {
				s := stateName{string(r.str()), string(r.str())}
				k := abi.StateKind(r.u(1))
				states, kinds = append(states, s), append(kinds, k)
				d.states[s] = k
			}
			for i := r.uv(); i > 0; i-- {
				owners = append(owners, string(r.str()))
			}
		case 'D':
			kg := int(r.u(2))
			want := [3]uint64{r.u(4), r.u(4), r.u(4)}
			var got [3]uint64
			for len(r.b) > 0 {
				switch rt := r.u(1); rt {
				case 1:
					si := r.uv()
					c := dumpCell{st: states[si], kg: kg, key: string(r.str()), sub: string(r.str())}
					d.cells[c] = string(r.str())
					got[0]++
				case 2:
					si := r.uv()
					c := dumpCell{st: states[si], kg: kg, key: string(r.str())}
					items := r.str()
					for len(items) > 0 {
						n, w := binary.Uvarint(items)
						d.lists[c] = append(d.lists[c], string(items[w:w+int(n)]))
						items = items[w+int(n):]
					}
					got[1]++
				case 3:
					o := owners[r.uv()]
					dom := abi.TimeDomain(r.u(1))
					ts := int64(r.u(8) ^ 1<<63)
					d.timers[dumpTimer{o, dom, ts, kg, string(r.str())}] = true
					got[2]++
				default:
					return nil, kr, fmt.Errorf("record type %d", rt)
				}
			}
			if got != want {
				return nil, kr, fmt.Errorf("block counts %v, records %v", want, got)
			}
			counts[0]++
			counts[1] += got[0]
			counts[2] += got[1]
			counts[3] += got[2]
			counts[4] += uint64(n)
		case 'T':
			for i := range counts {
				if v := r.u(8); v != counts[i] {
					return nil, kr, fmt.Errorf("trailer count %d is %d, want %d", i, v, counts[i])
				}
			}
			return d, kr, nil
		default:
			return nil, kr, fmt.Errorf("block type %c", typ)
		}
	}
}

// rd reads big-endian fields and panics on overrun (decodeStream is only
// given streams the code under test wrote).
type rd struct{ b []byte }

func (r *rd) u(n int) uint64 {
	var v uint64
	for _, c := range r.b[:n] {
		v = v<<8 | uint64(c)
	}
	r.b = r.b[n:]
	return v
}

func (r *rd) uv() uint64 {
	v, w := binary.Uvarint(r.b)
	r.b = r.b[w:]
	return v
}

func (r *rd) str() []byte {
	n := r.uv()
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// snapStates are the states of the workload; operator "opA" owns timers
// as owner 0, "opB" as owner 1.
var snapStates = []state.StateInfo{
	{Operator: "opA", Name: "count", Kind: abi.StateValue},
	{Operator: "opA", Name: "index", Kind: abi.StateMap},
	{Operator: "opA", Name: "buffer", Kind: abi.StateList},
	{Operator: "opB", Name: "v", Kind: abi.StateValue},
	{Operator: "opB", Name: "m", Kind: abi.StateMap},
	{Operator: "opB", Name: "l", Kind: abi.StateList},
}

var snapOwners = []string{"opA", "opB"}

func ownerName(o uint32) string {
	if int(o) < len(snapOwners) {
		return snapOwners[o]
	}
	return ""
}

// ownerMapping maps the workload's operators to their owner numbers.
func ownerMapping(op string) (uint32, bool) {
	i := slices.Index(snapOwners, op)
	return uint32(i), i >= 0
}

var allOwners = state.ImportMapping{Owner: ownerMapping}

var fullRange = abi.KeyGroupRange{Start: 0, End: abi.DefaultMaxParallelism}

// workload applies random operations to a backend and to a dump in step.
type workload struct {
	t    testing.TB
	r    *rand.Rand
	b    state.Backend
	ids  []state.ID
	d    *dump
	keys []string
}

func newWorkload(t testing.TB, seed uint64, b state.Backend, nkeys int) *workload {
	w := &workload{t: t, r: rand.New(rand.NewPCG(seed, 17)), b: b, d: newDump()}
	for _, s := range snapStates {
		id, err := b.Register(s.Operator, s.Name, s.Kind)
		if err != nil {
			t.Fatal(err)
		}
		w.ids = append(w.ids, id)
		w.d.states[stateName{s.Operator, s.Name}] = s.Kind
	}
	for i := 0; i < nkeys; i++ {
		var k string
		switch i % 5 {
		case 0:
			k = fmt.Sprintf("user-%d-with-a-long-key-name", i) // longer than 15 bytes
		case 1:
			k = string(binary.BigEndian.AppendUint64(nil, uint64(i)))
		default:
			k = fmt.Sprintf("k%d", i)
		}
		w.keys = append(w.keys, k)
	}
	w.keys[0] = ""
	return w
}

func (w *workload) value() string {
	n := w.r.IntN(40)
	if w.r.IntN(50) == 0 {
		n = 0
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(w.r.IntN(256))
	}
	return string(b)
}

// step applies one random operation.
func (w *workload) step() {
	si := w.r.IntN(len(snapStates))
	s := snapStates[si]
	st := stateName{s.Operator, s.Name}
	id := w.ids[si]
	key := w.keys[w.r.IntN(len(w.keys))]
	kg := abi.KeyGroup([]byte(key), abi.DefaultMaxParallelism)
	must := func(err error) {
		w.t.Helper()
		if err != nil {
			w.t.Fatal(err)
		}
	}
	switch op := w.r.IntN(100); {
	case op < 55: // write
		switch s.Kind {
		case abi.StateValue:
			v := w.value()
			must(w.b.Put(id, kg, []byte(key), nil, []byte(v)))
			w.d.cells[dumpCell{st, kg, key, ""}] = v
		case abi.StateMap:
			sub, v := fmt.Sprintf("s%d", w.r.IntN(8)), w.value()
			must(w.b.Put(id, kg, []byte(key), []byte(sub), []byte(v)))
			w.d.cells[dumpCell{st, kg, key, sub}] = v
		case abi.StateList:
			v := w.value()
			must(w.b.Append(id, kg, []byte(key), []byte(v)))
			c := dumpCell{st, kg, key, ""}
			w.d.lists[c] = append(w.d.lists[c], v)
		}
	case op < 62: // delete
		switch s.Kind {
		case abi.StateValue:
			must(w.b.Delete(id, kg, []byte(key), nil))
			delete(w.d.cells, dumpCell{st, kg, key, ""})
		case abi.StateMap:
			sub := fmt.Sprintf("s%d", w.r.IntN(8))
			must(w.b.Delete(id, kg, []byte(key), []byte(sub)))
			delete(w.d.cells, dumpCell{st, kg, key, sub})
		}
	case op < 65: // clear
		must(w.b.Clear(id, kg, []byte(key)))
		delete(w.d.lists, dumpCell{st, kg, key, ""})
		for c := range w.d.cells {
			if c.st == st && c.kg == kg && c.key == key {
				delete(w.d.cells, c)
			}
		}
	case op < 70: // read-modify-write of a counter (the memo path)
		if s.Kind != abi.StateValue {
			return
		}
		v, ok, err := w.b.Get(id, kg, []byte(key), nil)
		must(err)
		nv := append(slices.Clone(v[:min(len(v), 8)]), byte(len(v)))
		if !ok {
			nv = []byte("new")
		}
		must(w.b.Put(id, kg, []byte(key), nil, nv))
		w.d.cells[dumpCell{st, kg, key, ""}] = string(nv)
	case op < 90: // timers
		owner := uint32(w.r.IntN(2))
		tm := state.Timer{Owner: owner, Domain: abi.TimeDomain(w.r.IntN(2)), Timestamp: int64(w.r.IntN(2000)) - 100, KeyGroup: kg, Key: []byte(key)}
		dt := dumpTimer{snapOwners[owner], tm.Domain, tm.Timestamp, kg, key}
		if op < 85 {
			must(w.b.RegisterTimer(tm))
			w.d.timers[dt] = true
		} else {
			must(w.b.DeleteTimer(tm))
			delete(w.d.timers, dt)
		}
	case op < 91: // fire some timers
		owner, dom := uint32(w.r.IntN(2)), abi.TimeDomain(w.r.IntN(2))
		upTo := int64(w.r.IntN(200)) - 100
		must(w.b.FireTimers(owner, dom, upTo, func(tm state.Timer) error {
			dt := dumpTimer{snapOwners[owner], dom, tm.Timestamp, tm.KeyGroup, string(tm.Key)}
			if !w.d.timers[dt] {
				return fmt.Errorf("fired unknown timer %+v", dt)
			}
			delete(w.d.timers, dt)
			return nil
		}))
		for tm := range w.d.timers {
			if tm.owner == snapOwners[owner] && tm.domain == dom && tm.ts <= upTo {
				w.t.Fatalf("timer %+v not fired up to %d", tm, upTo)
			}
		}
	default: // read
		if s.Kind == abi.StateValue {
			_, _, err := w.b.Get(id, kg, []byte(key), nil)
			must(err)
		} else {
			must(w.b.Scan(id, kg, []byte(key), func(_, _ []byte) error { return nil }))
		}
	}
}

func (w *workload) run(n int) {
	for i := 0; i < n; i++ {
		w.step()
	}
}

// export snapshots b and exports kr to bytes.
func export(t testing.TB, b state.Backend, kr abi.KeyGroupRange) []byte {
	t.Helper()
	snap, err := b.(state.Snapshotter).Snapshot(state.FormCanonical, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := snap.Release(); err != nil {
			t.Fatal(err)
		}
	}()
	var buf bytes.Buffer
	if err := snap.Export(&buf, kr, ownerName); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// exportDump exports the whole of b and decodes it.
func exportDump(t testing.TB, b state.Backend) *dump {
	t.Helper()
	d, _, err := decodeStream(export(t, b, fullRange))
	if err != nil {
		t.Fatalf("decode own export: %v", err)
	}
	return d
}

// checkReads compares what b returns for every key of want through the
// Backend interface (Get, Scan, and at last FireTimers, which empties the
// timer queues) with want.
func checkReads(t testing.TB, b state.Backend, want *dump) {
	t.Helper()
	ids := map[stateName]state.ID{}
	for s, k := range want.states {
		id, err := b.Register(s.op, s.name, k)
		if err != nil {
			t.Fatal(err)
		}
		ids[s] = id
	}
	type scanKey struct {
		st  stateName
		kg  int
		key string
	}
	scans := map[scanKey][]string{}
	for c, v := range want.cells {
		got, ok, err := b.Get(ids[c.st], c.kg, []byte(c.key), []byte(c.sub))
		if err != nil || !ok || string(got) != v {
			t.Fatalf("Get %+v = %q, %v, %v; want %q", c, got, ok, err, v)
		}
		k := scanKey{c.st, c.kg, c.key}
		scans[k] = append(scans[k], fmt.Sprintf("%q=%q", c.sub, v))
	}
	for c, vs := range want.lists {
		k := scanKey{c.st, c.kg, c.key}
		for _, v := range vs {
			scans[k] = append(scans[k], fmt.Sprintf("%q=%q", "", v))
		}
	}
	for k, wantScan := range scans {
		var got []string
		err := b.Scan(ids[k.st], k.kg, []byte(k.key), func(sub, v []byte) error {
			got = append(got, fmt.Sprintf("%q=%q", sub, v))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want.states[k.st] == abi.StateMap {
			// Cells were collected in map order; Scan returns them sorted.
			slices.Sort(wantScan)
		}
		if !slices.Equal(got, wantScan) {
			t.Fatalf("Scan %+v = %q, want %q", k, got, wantScan)
		}
	}
	fired := map[dumpTimer]bool{}
	for o, name := range snapOwners {
		for _, dom := range []abi.TimeDomain{abi.EventTime, abi.ProcessingTime} {
			last := int64(-1 << 63)
			err := b.FireTimers(uint32(o), dom, 1<<62, func(tm state.Timer) error {
				if tm.Timestamp < last {
					return fmt.Errorf("timer %d fired after %d", tm.Timestamp, last)
				}
				last = tm.Timestamp
				fired[dumpTimer{name, dom, tm.Timestamp, tm.KeyGroup, string(tm.Key)}] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if !maps.Equal(fired, want.timers) {
		t.Fatalf("fired %d timers, want %d", len(fired), len(want.timers))
	}
}
