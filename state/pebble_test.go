package state_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// TestPebbleReopen closes a store holding every kind of state and timers
// and checks that reopening the directory keeps ids and data.
func TestPebbleReopen(t *testing.T) {
	for _, c := range []struct {
		name string
		opts state.PebbleOptions
	}{
		{"default", state.PebbleOptions{}},
		{"tiny", tinyPebbleOptions},
		{"wal", state.PebbleOptions{EnableWAL: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := state.OpenPebble(dir, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			type reg struct {
				op, name string
				kind     abi.StateKind
			}
			regs := []reg{{"a", "v", abi.StateValue}, {"a", "m", abi.StateMap}, {"b", "l", abi.StateList}, {"b", "v", abi.StateValue}}
			ids := map[reg]state.ID{}
			for _, r := range regs {
				id, err := p.Register(r.op, r.name, r.kind)
				if err != nil {
					t.Fatal(err)
				}
				ids[r] = id
			}
			v, m, l := ids[regs[0]], ids[regs[1]], ids[regs[2]]
			for i := 0; i < 200; i++ {
				key := []byte(fmt.Sprintf("k%d", i))
				kg := i % 5
				must(t, p.Put(v, kg, key, nil, []byte(fmt.Sprintf("v%d", i))))
				must(t, p.Put(m, kg, key, []byte("s1"), []byte("one")))
				must(t, p.Put(m, kg, key, []byte("s0"), []byte("zero")))
				must(t, p.Append(l, kg, key, []byte("x")))
				must(t, p.Append(l, kg, key, []byte("y")))
				must(t, p.RegisterTimer(state.Timer{Owner: 1, Domain: abi.ProcessingTime, Timestamp: int64(i % 17), KeyGroup: kg, Key: key}))
			}
			must(t, p.Delete(v, 0, []byte("k0"), nil))
			must(t, p.Close())

			p = openPebble(t, dir, c.opts)
			// Registered in another order: the ids are the stored ones.
			for i := len(regs) - 1; i >= 0; i-- {
				id, err := p.Register(regs[i].op, regs[i].name, regs[i].kind)
				if err != nil {
					t.Fatal(err)
				}
				if id != ids[regs[i]] {
					t.Fatalf("after reopen %v has id %d, want %d", regs[i], id, ids[regs[i]])
				}
			}
			if _, err := p.Register("a", "v", abi.StateList); !errors.Is(err, state.ErrKindMismatch) {
				t.Fatalf("kind mismatch after reopen: err = %v", err)
			}
			fresh, err := p.Register("c", "new", abi.StateValue)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if fresh == id {
					t.Fatalf("new state after reopen got the used id %d", id)
				}
			}
			for i := 0; i < 200; i++ {
				key := []byte(fmt.Sprintf("k%d", i))
				kg := i % 5
				got, ok, err := p.Get(v, kg, key, nil)
				must(t, err)
				if want := fmt.Sprintf("v%d", i); i == 0 && ok || i > 0 && string(got) != want {
					t.Fatalf("value of %s after reopen = %q, %v; want %q", key, got, ok, want)
				}
				var entries []string
				must(t, p.Scan(m, kg, key, func(sub, value []byte) error {
					entries = append(entries, string(sub)+"="+string(value))
					return nil
				}))
				must(t, p.Scan(l, kg, key, func(_, value []byte) error {
					entries = append(entries, string(value))
					return nil
				}))
				if got, want := strings.Join(entries, ","), "s0=zero,s1=one,x,y"; got != want {
					t.Fatalf("map and list of %s after reopen = %s, want %s", key, got, want)
				}
			}
			ts, ok, err := p.NextTimer(1, abi.ProcessingTime)
			must(t, err)
			if !ok || ts != 0 {
				t.Fatalf("NextTimer after reopen = %d, %v; want 0, true", ts, ok)
			}
			n := 0
			last := int64(-1)
			must(t, p.FireTimers(1, abi.ProcessingTime, 100, func(tm state.Timer) error {
				if tm.Timestamp < last {
					return fmt.Errorf("timer %d after %d", tm.Timestamp, last)
				}
				last = tm.Timestamp
				n++
				return nil
			}))
			if n != 200 {
				t.Fatalf("%d timers fired after reopen, want 200", n)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPebbleRefusesForeignStore(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	must(t, db.Set([]byte("someone else's key"), []byte("v"), pebble.Sync))
	must(t, db.Close())
	if p, err := state.OpenPebble(dir, state.PebbleOptions{}); err == nil {
		_ = p.Close()
		t.Fatal("OpenPebble of a foreign Pebble store succeeded")
	}
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func TestPebbleOptions(t *testing.T) {
	var zero state.PebbleOptions
	zero.EnsureDefaults()
	if zero.CacheBytes != state.DefaultPebbleCacheBytes || zero.BlockCacheBytes != state.DefaultPebbleBlockCacheBytes ||
		zero.MemTableBytes != state.DefaultPebbleMemTableBytes || zero.BatchBytes != state.DefaultPebbleBatchBytes ||
		zero.TimerCacheSize != state.DefaultPebbleTimerCacheSize || zero.Logger == nil || zero.EnableWAL {
		t.Fatalf("EnsureDefaults of the zero value = %+v", zero)
	}
	set := state.PebbleOptions{CacheBytes: 1, BlockCacheBytes: 2, MemTableBytes: 3, BatchBytes: 4, TimerCacheSize: 5}
	if got := *set.EnsureDefaults(); got.CacheBytes != 1 || got.BlockCacheBytes != 2 || got.MemTableBytes != 3 || got.BatchBytes != 4 || got.TimerCacheSize != 5 {
		t.Fatalf("EnsureDefaults changed set fields: %+v", got)
	}
	for _, c := range []struct {
		name string
		opts state.PebbleOptions
		want string // substring of the error; "" = valid
	}{
		{"zero", state.PebbleOptions{}, ""},
		{"negative cache", state.PebbleOptions{CacheBytes: -1}, "CacheBytes -1"},
		{"negative block cache", state.PebbleOptions{BlockCacheBytes: -1}, "BlockCacheBytes -1"},
		{"huge memtable", state.PebbleOptions{MemTableBytes: 1 << 32}, "MemTableBytes 4294967296"},
		{"negative memtable", state.PebbleOptions{MemTableBytes: -5}, "MemTableBytes -5"},
		{"negative batch", state.PebbleOptions{BatchBytes: -1}, "BatchBytes -1"},
		{"negative timer cache", state.PebbleOptions{TimerCacheSize: -1}, "TimerCacheSize -1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.opts.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Validate: err = %v, want one naming %q", err, c.want)
			}
			if c.want != "" {
				if p, err := state.OpenPebble(t.TempDir(), c.opts); err == nil {
					_ = p.Close()
					t.Fatal("OpenPebble accepted invalid options")
				}
			}
		})
	}
}

// TestPebbleFlush checks that Flush in the middle of a sequence changes no
// answer and that it refuses a closed store.
func TestPebbleFlush(t *testing.T) {
	p := openPebble(t, t.TempDir(), state.PebbleOptions{})
	id, err := p.Register("op", "m", abi.StateMap)
	must(t, err)
	must(t, p.Put(id, 0, []byte("k"), []byte("a"), []byte("v")))
	must(t, p.Flush())
	must(t, p.Put(id, 0, []byte("k"), []byte("a"), []byte("v2")))
	must(t, p.Put(id, 0, []byte("k"), []byte("b"), []byte("w")))
	must(t, p.Flush())
	must(t, p.Delete(id, 0, []byte("k"), []byte("b")))
	got, ok, err := p.Get(id, 0, []byte("k"), []byte("a"))
	if err != nil || !ok || string(got) != "v2" {
		t.Fatalf("Get after Flush = %q, %v, %v; want v2", got, ok, err)
	}
	n := 0
	must(t, p.Scan(id, 0, []byte("k"), func(_, _ []byte) error { n++; return nil }))
	if n != 1 {
		t.Fatalf("Scan after Flush saw %d entries, want 1", n)
	}
	must(t, p.Close())
	if err := p.Flush(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Flush after Close: err = %v, want ErrClosed", err)
	}
}
