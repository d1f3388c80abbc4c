package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// RunConformance runs the conformance suite as subtests of t. open must
// return a new, empty backend for each subtest; the suite closes it (more
// than once: Close must be idempotent).
func RunConformance(t *testing.T, open func(t *testing.T) state.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b state.Backend)
	}{
		{"Register", testRegister},
		{"RegisterManyStates", testRegisterMany},
		{"ValueState", testValueState},
		{"ReadModifyWrite", testReadModifyWrite},
		{"MapState", testMapState},
		{"ListState", testListState},
		{"Isolation", testIsolation},
		{"WrongKind", testWrongKind},
		{"InvalidArguments", testInvalidArguments},
		{"InputsNotRetained", testInputsNotRetained},
		{"ReturnedSlices", testReturnedSlices},
		{"ScanError", testScanError},
		{"TimerOrder", testTimerOrder},
		{"TimerDedupeAndDelete", testTimerDedupeAndDelete},
		{"TimerExtremes", testTimerExtremes},
		{"TimerQueuesIndependent", testTimerQueuesIndependent},
		{"FireTimersCallback", testFireTimersCallback},
		{"FireTimersError", testFireTimersError},
		{"ManyTimers", testManyTimers},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			tc.fn(t, b)
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// --- helpers ---

func register(t *testing.T, b state.Backend, operator, name string, kind abi.StateKind) state.ID {
	t.Helper()
	id, err := b.Register(operator, name, kind)
	if err != nil {
		t.Fatalf("Register(%q, %q, %v): %v", operator, name, kind, err)
	}
	return id
}

func put(t *testing.T, b state.Backend, id state.ID, kg int, key, sub, value string) {
	t.Helper()
	if err := b.Put(id, kg, []byte(key), []byte(sub), []byte(value)); err != nil {
		t.Fatalf("Put(%d, %d, %q, %q): %v", id, kg, key, sub, err)
	}
}

// wantGet checks Get; want nil means absent.
func wantGet(t *testing.T, b state.Backend, id state.ID, kg int, key, sub string, want *string) {
	t.Helper()
	v, ok, err := b.Get(id, kg, []byte(key), []byte(sub))
	if err != nil {
		t.Fatalf("Get(%d, %d, %q, %q): %v", id, kg, key, sub, err)
	}
	switch {
	case want == nil && ok:
		t.Fatalf("Get(%d, %d, %q, %q) = %q, want absent", id, kg, key, sub, v)
	case want != nil && !ok:
		t.Fatalf("Get(%d, %d, %q, %q) absent, want %q", id, kg, key, sub, *want)
	case want != nil && string(v) != *want:
		t.Fatalf("Get(%d, %d, %q, %q) = %q, want %q", id, kg, key, sub, v, *want)
	}
}

func ptr(s string) *string { return &s }

type entry struct{ sub, value string }

func scan(t *testing.T, b state.Backend, id state.ID, kg int, key string) []entry {
	t.Helper()
	var got []entry
	err := b.Scan(id, kg, []byte(key), func(sub, value []byte) error {
		got = append(got, entry{string(sub), string(value)})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%d, %d, %q): %v", id, kg, key, err)
	}
	return got
}

func wantScan(t *testing.T, b state.Backend, id state.ID, kg int, key string, want []entry) {
	t.Helper()
	if got := scan(t, b, id, kg, key); !slices.Equal(got, want) {
		t.Fatalf("Scan(%d, %d, %q) = %q, want %q", id, kg, key, got, want)
	}
}

func fire(t *testing.T, b state.Backend, owner uint32, d abi.TimeDomain, upTo int64) []state.Timer {
	t.Helper()
	var got []state.Timer
	err := b.FireTimers(owner, d, upTo, func(tm state.Timer) error {
		tm.Key = bytes.Clone(tm.Key)
		got = append(got, tm)
		return nil
	})
	if err != nil {
		t.Fatalf("FireTimers(%d, %v, %d): %v", owner, d, upTo, err)
	}
	return got
}

func timerString(ts []state.Timer) string {
	var buf bytes.Buffer
	for _, tm := range ts {
		fmt.Fprintf(&buf, "(o%d %v ts=%d kg=%d %q) ", tm.Owner, tm.Domain, tm.Timestamp, tm.KeyGroup, tm.Key)
	}
	return buf.String()
}

func wantTimers(t *testing.T, got, want []state.Timer) {
	t.Helper()
	if timerString(got) != timerString(want) {
		t.Fatalf("fired\n  %s\nwant\n  %s", timerString(got), timerString(want))
	}
}

func wantNext(t *testing.T, b state.Backend, owner uint32, d abi.TimeDomain, want int64, wantOK bool) {
	t.Helper()
	ts, ok, err := b.NextTimer(owner, d)
	if err != nil {
		t.Fatalf("NextTimer(%d, %v): %v", owner, d, err)
	}
	if ok != wantOK || (ok && ts != want) {
		t.Fatalf("NextTimer(%d, %v) = %d, %v; want %d, %v", owner, d, ts, ok, want, wantOK)
	}
}

func registerTimer(t *testing.T, b state.Backend, tm state.Timer) {
	t.Helper()
	if err := b.RegisterTimer(tm); err != nil {
		t.Fatalf("RegisterTimer(%s): %v", timerString([]state.Timer{tm}), err)
	}
}

// sortTimers sorts by firing order: timestamp, key group, key.
func sortTimers(ts []state.Timer) {
	slices.SortFunc(ts, func(a, b state.Timer) int {
		switch {
		case a.Timestamp != b.Timestamp:
			if a.Timestamp < b.Timestamp {
				return -1
			}
			return 1
		case a.KeyGroup != b.KeyGroup:
			return a.KeyGroup - b.KeyGroup
		}
		return bytes.Compare(a.Key, b.Key)
	})
}

// keys that are prefixes of one another, binary bytes and the empty key.
var trickyKeys = []string{"", "\x00", "\x00\x00", "a", "a\x00", "ab", "abc", "b", "\xff", "\xff\xff", "\x01\x02\x03"}

// --- registration ---

func testRegister(t *testing.T, b state.Backend) {
	count := register(t, b, "op1", "count", abi.StateValue)
	if again := register(t, b, "op1", "count", abi.StateValue); again != count {
		t.Fatalf("second Register of op1/count = %d, want %d", again, count)
	}
	ids := map[state.ID]string{count: "op1/count"}
	for _, r := range []struct {
		op, name string
		kind     abi.StateKind
	}{
		{"op1", "seen", abi.StateMap},
		{"op1", "events", abi.StateList},
		{"op2", "count", abi.StateValue}, // same name, another operator
		{"op2", "count2", abi.StateValue},
		{"", "", abi.StateValue}, // empty names are names too
		{"op1c", "ount", abi.StateValue},
		{"op", "1count", abi.StateValue},
	} {
		id := register(t, b, r.op, r.name, r.kind)
		if prev, dup := ids[id]; dup {
			t.Fatalf("Register(%q, %q) = %d, already the id of %s", r.op, r.name, id, prev)
		}
		ids[id] = r.op + "/" + r.name
	}
	_, err := b.Register("op1", "count", abi.StateMap)
	if !errors.Is(err, state.ErrKindMismatch) {
		t.Fatalf("Register with another kind: err = %v, want ErrKindMismatch", err)
	}
	if !isInvalid(err) {
		t.Fatalf("kind mismatch error %v does not wrap abi.ErrInvalid", err)
	}
	for _, kind := range []abi.StateKind{0, 4, -1} {
		if _, err := b.Register("op1", "bad", kind); !errors.Is(err, state.ErrWrongKind) {
			t.Fatalf("Register with kind %d: err = %v, want ErrWrongKind", kind, err)
		}
	}
	// The failed registrations changed nothing.
	if again := register(t, b, "op1", "count", abi.StateValue); again != count {
		t.Fatalf("Register after errors = %d, want %d", again, count)
	}
	bad := register(t, b, "op1", "bad", abi.StateList)
	if _, dup := ids[bad]; dup {
		t.Fatalf("Register(op1, bad) reused id %d", bad)
	}
}

func isInvalid(err error) bool {
	var e abi.Errno
	return errors.As(err, &e) && e == abi.ErrInvalid
}

// testRegisterMany uses enough states that ids need more than one byte.
func testRegisterMany(t *testing.T, b state.Backend) {
	const n = 300
	ids := make([]state.ID, n)
	for i := range ids {
		ids[i] = register(t, b, "op", fmt.Sprintf("s%d", i), abi.StateValue)
	}
	for i, id := range ids {
		put(t, b, id, 3, "k", "", fmt.Sprintf("v%d", i))
	}
	for i, id := range ids {
		wantGet(t, b, id, 3, "k", "", ptr(fmt.Sprintf("v%d", i)))
	}
}

// --- value, map and list state ---

func testValueState(t *testing.T, b state.Backend) {
	id := register(t, b, "op", "v", abi.StateValue)
	for _, key := range trickyKeys {
		wantGet(t, b, id, 0, key, "", nil)
	}
	for i, key := range trickyKeys {
		put(t, b, id, 0, key, "", fmt.Sprintf("value-%d", i))
	}
	for i, key := range trickyKeys {
		wantGet(t, b, id, 0, key, "", ptr(fmt.Sprintf("value-%d", i)))
	}
	// Overwrite with the same, a longer, a shorter and an empty value.
	for _, v := range []string{"value-0", "a much longer value than before", "s", "", "\x00\xff"} {
		put(t, b, id, 0, "a", "", v)
		wantGet(t, b, id, 0, "a", "", ptr(v))
		wantScan(t, b, id, 0, "a", []entry{{"", v}})
	}
	// An empty value is present.
	put(t, b, id, 0, "empty", "", "")
	wantGet(t, b, id, 0, "empty", "", ptr(""))
	wantScan(t, b, id, 0, "empty", []entry{{"", ""}})
	// Delete, also of an absent cell.
	for _, key := range []string{"a", "never-put"} {
		if err := b.Delete(id, 0, []byte(key), nil); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
		wantGet(t, b, id, 0, key, "", nil)
		wantScan(t, b, id, 0, key, nil)
	}
	wantGet(t, b, id, 0, "ab", "", ptr("value-5"))
	if err := b.Clear(id, 0, []byte("ab")); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	wantGet(t, b, id, 0, "ab", "", nil)
	wantGet(t, b, id, 0, "abc", "", ptr("value-6"))
	put(t, b, id, 0, "ab", "", "again")
	wantGet(t, b, id, 0, "ab", "", ptr("again"))
	// A large value.
	big := string(bytes.Repeat([]byte("0123456789"), 100_000))
	put(t, b, id, 0, "big", "", big)
	wantGet(t, b, id, 0, "big", "", &big)
}

// testReadModifyWrite runs the sequences operators produce on one cell:
// Get then Put, Get then Delete or Clear then Put, interleaved with other
// cells and states (backends may remember the cell of the last Get).
func testReadModifyWrite(t *testing.T, b state.Backend) {
	v := register(t, b, "op", "v", abi.StateValue)
	w := register(t, b, "op", "w", abi.StateValue)
	m := register(t, b, "op", "m", abi.StateMap)
	steps := []struct {
		name string
		do   func()
	}{
		{"put a", func() { put(t, b, v, 0, "a", "", "1") }},
		{"get a, put a", func() { wantGet(t, b, v, 0, "a", "", ptr("1")); put(t, b, v, 0, "a", "", "2") }},
		{"get a, delete a, put a", func() {
			wantGet(t, b, v, 0, "a", "", ptr("2"))
			if err := b.Delete(v, 0, []byte("a"), nil); err != nil {
				t.Fatal(err)
			}
			put(t, b, v, 0, "a", "", "3")
			wantGet(t, b, v, 0, "a", "", ptr("3"))
		}},
		{"get a, clear a, put a", func() {
			wantGet(t, b, v, 0, "a", "", ptr("3"))
			if err := b.Clear(v, 0, []byte("a")); err != nil {
				t.Fatal(err)
			}
			wantGet(t, b, v, 0, "a", "", nil)
			put(t, b, v, 0, "a", "", "4")
		}},
		{"get a, put a in another state, group and key", func() {
			wantGet(t, b, v, 0, "a", "", ptr("4"))
			put(t, b, w, 0, "a", "", "w")
			put(t, b, v, 1, "a", "", "kg1")
			put(t, b, v, 0, "ab", "", "ab")
			put(t, b, m, 0, "a", "", "map")
			wantGet(t, b, v, 0, "a", "", ptr("4"))
		}},
		{"get a, delete a, put b, put a", func() {
			wantGet(t, b, v, 0, "a", "", ptr("4"))
			if err := b.Delete(v, 0, []byte("a"), nil); err != nil {
				t.Fatal(err)
			}
			put(t, b, v, 0, "b", "", "b")
			put(t, b, v, 0, "a", "", "5")
		}},
		{"long key: get, delete, put", func() {
			long := "a key longer than the short keys some backends keep inline"
			put(t, b, v, 0, long, "", "1")
			wantGet(t, b, v, 0, long, "", ptr("1"))
			if err := b.Delete(v, 0, []byte(long), nil); err != nil {
				t.Fatal(err)
			}
			put(t, b, v, 0, long, "", "2")
			wantGet(t, b, v, 0, long, "", ptr("2"))
		}},
	}
	for _, s := range steps {
		s.do()
	}
	wantGet(t, b, v, 0, "a", "", ptr("5"))
	wantGet(t, b, v, 0, "b", "", ptr("b"))
	wantGet(t, b, w, 0, "a", "", ptr("w"))
	wantGet(t, b, v, 1, "a", "", ptr("kg1"))
	wantGet(t, b, v, 0, "ab", "", ptr("ab"))
	wantGet(t, b, m, 0, "a", "", ptr("map"))
}

func testMapState(t *testing.T, b state.Backend) {
	id := register(t, b, "op", "m", abi.StateMap)
	subs := slices.Clone(trickyKeys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	for _, sub := range subs {
		put(t, b, id, 5, "key", sub, "v:"+sub)
	}
	sorted := slices.Clone(trickyKeys)
	slices.Sort(sorted) // Go orders strings bytewise
	want := make([]entry, 0, len(sorted))
	for _, sub := range sorted {
		want = append(want, entry{sub, "v:" + sub})
		wantGet(t, b, id, 5, "key", sub, ptr("v:"+sub))
	}
	wantScan(t, b, id, 5, "key", want)
	// Overwrite and delete some entries.
	put(t, b, id, 5, "key", "ab", "new, longer value")
	want[slices.Index(sorted, "ab")].value = "new, longer value"
	for _, sub := range []string{"", "a\x00", "\xff\xff", "absent"} {
		if err := b.Delete(id, 5, []byte("key"), []byte(sub)); err != nil {
			t.Fatalf("Delete sub %q: %v", sub, err)
		}
		wantGet(t, b, id, 5, "key", sub, nil)
		want = slices.DeleteFunc(want, func(e entry) bool { return e.sub == sub })
	}
	wantScan(t, b, id, 5, "key", want)
	// Empty value.
	put(t, b, id, 5, "key", "zz", "")
	want = slices.Insert(want, len(want)-1, entry{"zz", ""}) // before "\xff"
	wantScan(t, b, id, 5, "key", want)
	if err := b.Clear(id, 5, []byte("key")); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	wantScan(t, b, id, 5, "key", nil)
	for _, sub := range trickyKeys {
		wantGet(t, b, id, 5, "key", sub, nil)
	}
	put(t, b, id, 5, "key", "b", "after clear")
	wantScan(t, b, id, 5, "key", []entry{{"b", "after clear"}})
	// Clearing or scanning an absent key is fine.
	if err := b.Clear(id, 5, []byte("nothing")); err != nil {
		t.Fatalf("Clear of absent key: %v", err)
	}
	wantScan(t, b, id, 5, "nothing", nil)
	// A larger map in random insertion order scans sorted.
	r := rand.New(rand.NewPCG(3, 4))
	var many []entry
	for i := 0; i < 500; i++ {
		sub := make([]byte, r.IntN(6))
		for j := range sub {
			sub[j] = byte(r.IntN(4)) * 85 // 0x00, 0x55, 0xaa, 0xff
		}
		v := fmt.Sprintf("%d", i)
		put(t, b, id, 6, "big", string(sub), v)
		many = slices.DeleteFunc(many, func(e entry) bool { return e.sub == string(sub) })
		many = append(many, entry{string(sub), v})
	}
	slices.SortFunc(many, func(a, b entry) int { return bytes.Compare([]byte(a.sub), []byte(b.sub)) })
	wantScan(t, b, id, 6, "big", many)
}

func testListState(t *testing.T, b state.Backend) {
	id := register(t, b, "op", "l", abi.StateList)
	wantScan(t, b, id, 2, "k", nil)
	values := []string{"first", "", "\x00\xff", "first", "a much longer value", "x"}
	var want []entry
	for _, v := range values {
		if err := b.Append(id, 2, []byte("k"), []byte(v)); err != nil {
			t.Fatalf("Append(%q): %v", v, err)
		}
		want = append(want, entry{"", v})
		wantScan(t, b, id, 2, "k", want)
	}
	err := b.Scan(id, 2, []byte("k"), func(sub, _ []byte) error {
		if len(sub) != 0 {
			return fmt.Errorf("list entry with sub key %q", sub)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Clear(id, 2, []byte("k")); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	wantScan(t, b, id, 2, "k", nil)
	want = nil
	for i := 0; i < 1000; i++ {
		v := fmt.Sprintf("v%04d", i)
		if err := b.Append(id, 2, []byte("k"), []byte(v)); err != nil {
			t.Fatalf("Append: %v", err)
		}
		want = append(want, entry{"", v})
	}
	wantScan(t, b, id, 2, "k", want)
	wantScan(t, b, id, 2, "k2", nil)
}

// testIsolation writes one distinct value into cells that differ in exactly
// one coordinate and reads each back: nothing may leak between key groups,
// keys (including keys that are prefixes of other keys), sub keys, states
// and operators.
func testIsolation(t *testing.T, b state.Backend) {
	v1 := register(t, b, "op1", "v", abi.StateValue)
	v2 := register(t, b, "op2", "v", abi.StateValue)
	m1 := register(t, b, "op1", "m", abi.StateMap)
	m2 := register(t, b, "op1", "m2", abi.StateMap)
	l1 := register(t, b, "op1", "l", abi.StateList)
	l2 := register(t, b, "op2", "l", abi.StateList)
	type cell struct {
		id       state.ID
		kg       int
		key, sub string
	}
	var cells []cell
	kgs := []int{0, 1, 255, 256, state.MaxKeyGroups - 1}
	for _, kg := range kgs {
		for _, key := range trickyKeys {
			cells = append(cells, cell{v1, kg, key, ""}, cell{v2, kg, key, ""})
			for _, sub := range []string{"", "c", "bc", "\x00"} {
				cells = append(cells, cell{m1, kg, key, sub}, cell{m2, kg, key, sub})
			}
		}
	}
	value := func(c cell) string { return fmt.Sprintf("%d/%d/%q/%q", c.id, c.kg, c.key, c.sub) }
	for _, c := range cells {
		put(t, b, c.id, c.kg, c.key, c.sub, value(c))
	}
	for _, c := range cells {
		wantGet(t, b, c.id, c.kg, c.key, c.sub, ptr(value(c)))
	}
	// Scans see exactly their key's cells: key "a" sub "bc" and key "ab"
	// sub "c" are different cells of different keys.
	for _, kg := range kgs {
		for _, key := range trickyKeys {
			want := []entry{}
			for _, sub := range []string{"", "\x00", "bc", "c"} {
				want = append(want, entry{sub, value(cell{m1, kg, key, sub})})
			}
			wantScan(t, b, m1, kg, key, want)
		}
	}
	// Lists.
	for _, kg := range kgs {
		for _, key := range trickyKeys {
			for _, id := range []state.ID{l1, l2} {
				if err := b.Append(id, kg, []byte(key), []byte(value(cell{id, kg, key, ""}))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, kg := range kgs {
		for _, key := range trickyKeys {
			for _, id := range []state.ID{l1, l2} {
				wantScan(t, b, id, kg, key, []entry{{"", value(cell{id, kg, key, ""})}})
			}
		}
	}
	// Clearing one key touches no other.
	if err := b.Clear(m1, 1, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Clear(l1, 1, []byte("a")); err != nil {
		t.Fatal(err)
	}
	wantScan(t, b, m1, 1, "a", nil)
	wantScan(t, b, l1, 1, "a", nil)
	for _, c := range cells {
		if c.id == m1 && c.kg == 1 && c.key == "a" {
			continue
		}
		wantGet(t, b, c.id, c.kg, c.key, c.sub, ptr(value(c)))
	}
	wantScan(t, b, l1, 1, "ab", []entry{{"", value(cell{l1, 1, "ab", ""})}})
	wantScan(t, b, l2, 1, "a", []entry{{"", value(cell{l2, 1, "a", ""})}})
}

func testWrongKind(t *testing.T, b state.Backend) {
	v := register(t, b, "op", "v", abi.StateValue)
	m := register(t, b, "op", "m", abi.StateMap)
	l := register(t, b, "op", "l", abi.StateList)
	k, s, val := []byte("k"), []byte("s"), []byte("x")
	calls := []struct {
		name string
		call func() error
	}{
		{"Get value state with sub key", func() error { _, _, err := b.Get(v, 0, k, s); return err }},
		{"Put value state with sub key", func() error { return b.Put(v, 0, k, s, val) }},
		{"Delete value state with sub key", func() error { return b.Delete(v, 0, k, s) }},
		{"Append value state", func() error { return b.Append(v, 0, k, val) }},
		{"Append map state", func() error { return b.Append(m, 0, k, val) }},
		{"Get list state", func() error { _, _, err := b.Get(l, 0, k, nil); return err }},
		{"Put list state", func() error { return b.Put(l, 0, k, nil, val) }},
		{"Delete list state", func() error { return b.Delete(l, 0, k, nil) }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, state.ErrWrongKind) || !isInvalid(err) {
			t.Errorf("%s: err = %v, want ErrWrongKind wrapping abi.ErrInvalid", c.name, err)
		}
	}
	// Nothing was written.
	wantGet(t, b, v, 0, "k", "", nil)
	wantScan(t, b, m, 0, "k", nil)
	wantScan(t, b, l, 0, "k", nil)
}

func testInvalidArguments(t *testing.T, b state.Backend) {
	id := register(t, b, "op", "v", abi.StateValue)
	l := register(t, b, "op", "l", abi.StateList)
	unknown := id + l + 100
	k := []byte("k")
	noop := func([]byte, []byte) error { return nil }
	calls := []struct {
		name string
		want error
		call func() error
	}{
		{"Get unknown id", state.ErrUnknownState, func() error { _, _, err := b.Get(unknown, 0, k, nil); return err }},
		{"Put unknown id", state.ErrUnknownState, func() error { return b.Put(unknown, 0, k, nil, k) }},
		{"Delete unknown id", state.ErrUnknownState, func() error { return b.Delete(unknown, 0, k, nil) }},
		{"Append unknown id", state.ErrUnknownState, func() error { return b.Append(unknown, 0, k, k) }},
		{"Scan unknown id", state.ErrUnknownState, func() error { return b.Scan(unknown, 0, k, noop) }},
		{"Clear unknown id", state.ErrUnknownState, func() error { return b.Clear(unknown, 0, k) }},
		{"Get kg -1", state.ErrKeyGroupRange, func() error { _, _, err := b.Get(id, -1, k, nil); return err }},
		{"Put kg max", state.ErrKeyGroupRange, func() error { return b.Put(id, state.MaxKeyGroups, k, nil, k) }},
		{"Delete kg max", state.ErrKeyGroupRange, func() error { return b.Delete(id, state.MaxKeyGroups, k, nil) }},
		{"Append kg -1", state.ErrKeyGroupRange, func() error { return b.Append(l, -1, k, k) }},
		{"Scan kg max", state.ErrKeyGroupRange, func() error { return b.Scan(id, state.MaxKeyGroups, k, noop) }},
		{"Clear kg 1<<16", state.ErrKeyGroupRange, func() error { return b.Clear(id, 1<<16, k) }},
		{"RegisterTimer kg -1", state.ErrKeyGroupRange, func() error { return b.RegisterTimer(state.Timer{KeyGroup: -1}) }},
		{"DeleteTimer kg max", state.ErrKeyGroupRange, func() error { return b.DeleteTimer(state.Timer{KeyGroup: state.MaxKeyGroups}) }},
		{"RegisterTimer domain 2", state.ErrTimeDomain, func() error { return b.RegisterTimer(state.Timer{Domain: 2}) }},
		{"DeleteTimer domain 9", state.ErrTimeDomain, func() error { return b.DeleteTimer(state.Timer{Domain: 9}) }},
		{"FireTimers domain 2", state.ErrTimeDomain, func() error {
			return b.FireTimers(0, 2, 0, func(state.Timer) error { return nil })
		}},
		{"NextTimer domain 2", state.ErrTimeDomain, func() error { _, _, err := b.NextTimer(0, 2); return err }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, c.want) || !isInvalid(err) {
			t.Errorf("%s: err = %v, want %v wrapping abi.ErrInvalid", c.name, err, c.want)
		}
	}
	// The largest key group is valid.
	put(t, b, id, state.MaxKeyGroups-1, "k", "", "last group")
	wantGet(t, b, id, state.MaxKeyGroups-1, "k", "", ptr("last group"))
	wantNext(t, b, 0, abi.EventTime, 0, false)
}

// --- slices ---

// testInputsNotRetained changes every buffer after the call that took it.
func testInputsNotRetained(t *testing.T, b state.Backend) {
	v := register(t, b, "op", "v", abi.StateValue)
	m := register(t, b, "op", "m", abi.StateMap)
	l := register(t, b, "op", "l", abi.StateList)
	key, sub, val := []byte("key"), []byte("sub"), []byte("value")
	scribble := func() {
		for _, buf := range [][]byte{key, sub, val} {
			for i := range buf {
				buf[i] = '#'
			}
		}
	}
	reset := func() { copy(key, "key"); copy(sub, "sub"); copy(val, "value") }
	if err := b.Put(v, 0, key, nil, val); err != nil {
		t.Fatal(err)
	}
	scribble()
	reset()
	if err := b.Put(m, 0, key, sub, val); err != nil {
		t.Fatal(err)
	}
	scribble()
	reset()
	if err := b.Append(l, 0, key, val); err != nil {
		t.Fatal(err)
	}
	scribble()
	reset()
	if err := b.RegisterTimer(state.Timer{Timestamp: 7, KeyGroup: 0, Key: key}); err != nil {
		t.Fatal(err)
	}
	scribble()
	wantGet(t, b, v, 0, "key", "", ptr("value"))
	wantGet(t, b, m, 0, "key", "sub", ptr("value"))
	wantScan(t, b, l, 0, "key", []entry{{"", "value"}})
	wantTimers(t, fire(t, b, 0, abi.EventTime, 10), []state.Timer{{Timestamp: 7, Key: []byte("key")}})
}

// testReturnedSlices checks the lifetime rules: a returned slice is valid
// until the next call and may be passed to the next call.
func testReturnedSlices(t *testing.T, b state.Backend) {
	v := register(t, b, "op", "v", abi.StateValue)
	m := register(t, b, "op", "m", abi.StateMap)
	l := register(t, b, "op", "l", abi.StateList)
	put(t, b, v, 0, "a", "", "alpha-value")
	put(t, b, v, 0, "b", "", "beta")
	got, _, err := b.Get(v, 0, []byte("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A Get result passed to Put of another cell...
	if err := b.Put(v, 0, []byte("b"), nil, got); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, v, 0, "b", "", ptr("alpha-value"))
	// ...and of its own cell, shorter.
	got, _, err = b.Get(v, 0, []byte("a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(v, 0, []byte("a"), nil, got[6:]); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b, v, 0, "a", "", ptr("value"))
	// Scan slices stay valid after the scan, until the next call.
	var want []entry
	for i := 0; i < 50; i++ {
		sub, val := fmt.Sprintf("s%02d", i), fmt.Sprintf("value %d", i)
		put(t, b, m, 1, "k", sub, val)
		want = append(want, entry{sub, val})
		if err := b.Append(l, 1, []byte("k"), []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []state.ID{m, l} {
		var subs, vals [][]byte
		err := b.Scan(id, 1, []byte("k"), func(sub, value []byte) error {
			subs, vals = append(subs, sub), append(vals, value)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != len(want) {
			t.Fatalf("Scan of state %d: %d entries, want %d", id, len(vals), len(want))
		}
		for i := range vals {
			wantSub := want[i].sub
			if id == l {
				wantSub = ""
			}
			if string(subs[i]) != wantSub || string(vals[i]) != want[i].value {
				t.Fatalf("Scan of state %d entry %d after the scan: %q=%q, want %q=%q",
					id, i, subs[i], vals[i], wantSub, want[i].value)
			}
		}
	}
}

func testScanError(t *testing.T, b state.Backend) {
	m := register(t, b, "op", "m", abi.StateMap)
	l := register(t, b, "op", "l", abi.StateList)
	v := register(t, b, "op", "v", abi.StateValue)
	for i := 0; i < 5; i++ {
		put(t, b, m, 0, "k", fmt.Sprint(i), "x")
		if err := b.Append(l, 0, []byte("k"), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	put(t, b, v, 0, "k", "", "x")
	stop := errors.New("stop")
	for _, c := range []struct {
		id    state.ID
		calls int
	}{{m, 2}, {l, 2}, {v, 1}} {
		calls := 0
		err := b.Scan(c.id, 0, []byte("k"), func(_, _ []byte) error {
			calls++
			if calls == c.calls {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != c.calls {
			t.Fatalf("Scan(%d) with failing fn: err %v after %d calls, want %v after %d", c.id, err, calls, stop, c.calls)
		}
	}
}

// --- timers ---

func testTimerOrder(t *testing.T, b state.Backend) {
	var want []state.Timer
	r := rand.New(rand.NewPCG(5, 6))
	for _, ts := range []int64{-3, 0, 10, 10, 10, 11} {
		for _, kg := range []int{0, 1, 300} {
			for _, key := range []string{"", "a", "ab", "b", "\x00"} {
				want = append(want, state.Timer{Timestamp: ts, KeyGroup: kg, Key: []byte(key)})
			}
		}
	}
	regs := slices.Clone(want)
	r.Shuffle(len(regs), func(i, j int) { regs[i], regs[j] = regs[j], regs[i] })
	for _, tm := range regs {
		registerTimer(t, b, tm)
	}
	sortTimers(want)
	want = slices.CompactFunc(want, func(a, b state.Timer) bool { return timerString([]state.Timer{a}) == timerString([]state.Timer{b}) })
	wantNext(t, b, 0, abi.EventTime, -3, true)
	got := fire(t, b, 0, abi.EventTime, 9)
	n := slices.IndexFunc(want, func(tm state.Timer) bool { return tm.Timestamp > 9 })
	wantTimers(t, got, want[:n])
	wantNext(t, b, 0, abi.EventTime, 10, true)
	wantTimers(t, fire(t, b, 0, abi.EventTime, 9), nil)
	got = fire(t, b, 0, abi.EventTime, 10) // ts == upTo fires
	m := slices.IndexFunc(want, func(tm state.Timer) bool { return tm.Timestamp > 10 })
	wantTimers(t, got, want[n:m])
	wantTimers(t, fire(t, b, 0, abi.EventTime, 100), want[m:])
	wantNext(t, b, 0, abi.EventTime, 0, false)
}

func testTimerDedupeAndDelete(t *testing.T, b state.Backend) {
	tm := func(ts int64, kg int, key string) state.Timer {
		return state.Timer{Owner: 2, Domain: abi.ProcessingTime, Timestamp: ts, KeyGroup: kg, Key: []byte(key)}
	}
	for i := 0; i < 3; i++ {
		registerTimer(t, b, tm(5, 1, "k"))
	}
	registerTimer(t, b, tm(5, 1, "k2"))
	registerTimer(t, b, tm(6, 1, "k"))
	registerTimer(t, b, tm(4, 2, "k"))
	wantNext(t, b, 2, abi.ProcessingTime, 4, true)
	// Delete the earliest, a middle one, a missing one and one twice.
	for _, d := range []state.Timer{tm(4, 2, "k"), tm(5, 1, "k2"), tm(5, 1, "missing"), tm(7, 1, "k"), tm(5, 1, "k2")} {
		if err := b.DeleteTimer(d); err != nil {
			t.Fatalf("DeleteTimer: %v", err)
		}
	}
	if err := b.DeleteTimer(state.Timer{Owner: 99, Timestamp: 1}); err != nil {
		t.Fatalf("DeleteTimer of an owner without timers: %v", err)
	}
	wantNext(t, b, 2, abi.ProcessingTime, 5, true)
	wantTimers(t, fire(t, b, 2, abi.ProcessingTime, 10), []state.Timer{tm(5, 1, "k"), tm(6, 1, "k")})
	// A fired timer can be registered again.
	registerTimer(t, b, tm(5, 1, "k"))
	wantTimers(t, fire(t, b, 2, abi.ProcessingTime, 10), []state.Timer{tm(5, 1, "k")})
	wantNext(t, b, 2, abi.ProcessingTime, 0, false)
}

func testTimerExtremes(t *testing.T, b state.Backend) {
	var all []state.Timer
	for _, ts := range []int64{math.MaxInt64, 1, -1, 0, math.MinInt64, math.MinInt64 + 1, math.MaxInt64 - 1} {
		tm := state.Timer{Timestamp: ts, KeyGroup: state.MaxKeyGroups - 1, Key: []byte("k")}
		registerTimer(t, b, tm)
		all = append(all, tm)
	}
	sortTimers(all)
	wantNext(t, b, 0, abi.EventTime, math.MinInt64, true)
	wantTimers(t, fire(t, b, 0, abi.EventTime, math.MinInt64), all[:1])
	wantNext(t, b, 0, abi.EventTime, math.MinInt64+1, true)
	wantTimers(t, fire(t, b, 0, abi.EventTime, -1), all[1:3])
	wantTimers(t, fire(t, b, 0, abi.EventTime, math.MaxInt64-1), all[3:6])
	wantNext(t, b, 0, abi.EventTime, math.MaxInt64, true)
	wantTimers(t, fire(t, b, 0, abi.EventTime, math.MaxInt64), all[6:])
	wantNext(t, b, 0, abi.EventTime, 0, false)
}

func testTimerQueuesIndependent(t *testing.T, b state.Backend) {
	type q struct {
		owner uint32
		d     abi.TimeDomain
	}
	queues := []q{{0, abi.EventTime}, {0, abi.ProcessingTime}, {1, abi.EventTime}, {math.MaxUint32, abi.ProcessingTime}}
	for i, qq := range queues {
		// The same (ts, kg, key) in every queue, plus one per queue.
		registerTimer(t, b, state.Timer{Owner: qq.owner, Domain: qq.d, Timestamp: 10, KeyGroup: 1, Key: []byte("k")})
		registerTimer(t, b, state.Timer{Owner: qq.owner, Domain: qq.d, Timestamp: int64(i), KeyGroup: 1, Key: []byte("k")})
	}
	for i, qq := range queues {
		wantNext(t, b, qq.owner, qq.d, int64(i), true)
	}
	wantNext(t, b, 2, abi.EventTime, 0, false)
	// Deleting in one queue leaves the others.
	if err := b.DeleteTimer(state.Timer{Owner: 1, Domain: abi.EventTime, Timestamp: 10, KeyGroup: 1, Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	for i, qq := range queues {
		want := []state.Timer{{Owner: qq.owner, Domain: qq.d, Timestamp: int64(i), KeyGroup: 1, Key: []byte("k")}}
		if qq.owner != 1 {
			want = append(want, state.Timer{Owner: qq.owner, Domain: qq.d, Timestamp: 10, KeyGroup: 1, Key: []byte("k")})
		}
		wantTimers(t, fire(t, b, qq.owner, qq.d, 100), want)
		for _, other := range queues[i+1:] {
			if _, ok, _ := b.NextTimer(other.owner, other.d); !ok {
				t.Fatalf("firing queue %v emptied queue %v", qq, other)
			}
		}
	}
}

// testFireTimersCallback changes timers from inside the callback.
func testFireTimersCallback(t *testing.T, b state.Backend) {
	v := register(t, b, "op", "v", abi.StateValue)
	tm := func(ts int64, key string) state.Timer {
		return state.Timer{Timestamp: ts, KeyGroup: 3, Key: []byte(key)}
	}
	registerTimer(t, b, tm(1, "chain"))
	registerTimer(t, b, tm(5, "victim"))
	registerTimer(t, b, tm(6, "late"))
	registerTimer(t, b, tm(20, "beyond"))
	var got []state.Timer
	err := b.FireTimers(0, abi.EventTime, 10, func(f state.Timer) error {
		got = append(got, state.Timer{Timestamp: f.Timestamp, KeyGroup: f.KeyGroup, Key: bytes.Clone(f.Key)})
		switch string(f.Key) {
		case "chain":
			// Re-register with the key we were given: fires again in
			// this call while <= upTo, stays once past it.
			if err := b.RegisterTimer(state.Timer{Timestamp: f.Timestamp + 3, KeyGroup: f.KeyGroup, Key: f.Key}); err != nil {
				return err
			}
			if f.Timestamp == 4 {
				// Earlier than the next pending timer: fires next.
				if err := b.RegisterTimer(tm(2, "early")); err != nil {
					return err
				}
				// A pending timer deleted in the callback never fires.
				if err := b.DeleteTimer(tm(5, "victim")); err != nil {
					return err
				}
			}
		}
		// State may be used from the callback too.
		return b.Put(v, f.KeyGroup, f.Key, nil, []byte("fired"))
	})
	if err != nil {
		t.Fatalf("FireTimers: %v", err)
	}
	wantTimers(t, got, []state.Timer{tm(1, "chain"), tm(4, "chain"), tm(2, "early"), tm(6, "late"), tm(7, "chain"), tm(10, "chain")})
	wantNext(t, b, 0, abi.EventTime, 13, true)
	wantGet(t, b, v, 3, "early", "", ptr("fired"))
	wantGet(t, b, v, 3, "victim", "", nil)
	// FireTimers may not be nested.
	registerTimer(t, b, tm(11, "x"))
	err = b.FireTimers(0, abi.EventTime, 11, func(state.Timer) error {
		return b.FireTimers(0, abi.EventTime, 11, func(state.Timer) error { return nil })
	})
	if !errors.Is(err, state.ErrReentrantFire) {
		t.Fatalf("nested FireTimers: err = %v, want ErrReentrantFire", err)
	}
	wantTimers(t, fire(t, b, 0, abi.EventTime, 100), []state.Timer{tm(13, "chain"), tm(20, "beyond")})
}

func testFireTimersError(t *testing.T, b state.Backend) {
	for ts := int64(1); ts <= 5; ts++ {
		registerTimer(t, b, state.Timer{Timestamp: ts, Key: []byte("k")})
	}
	boom := errors.New("boom")
	calls := 0
	err := b.FireTimers(0, abi.EventTime, 10, func(f state.Timer) error {
		calls++
		if f.Timestamp == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 2 {
		t.Fatalf("FireTimers with failing fn: err %v after %d calls, want boom after 2", err, calls)
	}
	// The timers handed to fn are gone, the others remain.
	wantNext(t, b, 0, abi.EventTime, 3, true)
	if got := fire(t, b, 0, abi.EventTime, 10); len(got) != 3 {
		t.Fatalf("after the error %d timers fired, want 3", len(got))
	}
}

// testManyTimers interleaves registrations, deletions and firings of
// thousands of timers over several key groups.
func testManyTimers(t *testing.T, b state.Backend) {
	r := rand.New(rand.NewPCG(7, 8))
	type tk struct {
		ts  int64
		kg  int
		key string
	}
	live := map[tk]bool{}
	now := int64(0)
	for round := 0; round < 20; round++ {
		for i := 0; i < 300; i++ {
			k := tk{now + int64(r.IntN(400)), r.IntN(8) * 37, fmt.Sprintf("key%d", r.IntN(50))}
			registerTimer(t, b, state.Timer{Timestamp: k.ts, KeyGroup: k.kg, Key: []byte(k.key)})
			live[k] = true
		}
		for k := range live {
			if r.IntN(5) == 0 {
				if err := b.DeleteTimer(state.Timer{Timestamp: k.ts, KeyGroup: k.kg, Key: []byte(k.key)}); err != nil {
					t.Fatal(err)
				}
				delete(live, k)
			}
		}
		now += 100
		var want []state.Timer
		for k := range live {
			if k.ts <= now {
				want = append(want, state.Timer{Timestamp: k.ts, KeyGroup: k.kg, Key: []byte(k.key)})
				delete(live, k)
			}
		}
		sortTimers(want)
		wantTimers(t, fire(t, b, 0, abi.EventTime, now), want)
		var next int64 = math.MaxInt64
		for k := range live {
			next = min(next, k.ts)
		}
		wantNext(t, b, 0, abi.EventTime, next, len(live) > 0)
	}
}

func testClosed(t *testing.T, b state.Backend) {
	id := register(t, b, "op", "v", abi.StateValue)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	noop := func([]byte, []byte) error { return nil }
	k := []byte("k")
	calls := map[string]func() error{
		"Register":      func() error { _, err := b.Register("op", "w", abi.StateValue); return err },
		"Get":           func() error { _, _, err := b.Get(id, 0, k, nil); return err },
		"Put":           func() error { return b.Put(id, 0, k, nil, k) },
		"Delete":        func() error { return b.Delete(id, 0, k, nil) },
		"Append":        func() error { return b.Append(id, 0, k, k) },
		"Scan":          func() error { return b.Scan(id, 0, k, noop) },
		"Clear":         func() error { return b.Clear(id, 0, k) },
		"RegisterTimer": func() error { return b.RegisterTimer(state.Timer{}) },
		"DeleteTimer":   func() error { return b.DeleteTimer(state.Timer{}) },
		"FireTimers":    func() error { return b.FireTimers(0, 0, 0, func(state.Timer) error { return nil }) },
		"NextTimer":     func() error { _, _, err := b.NextTimer(0, 0); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
