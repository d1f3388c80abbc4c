package state_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/state"
)

// region is a part of a stream: the magic, or a frame's header, payload
// or checksum.
type region struct {
	name       string
	start, end int
}

// frameRegions splits a valid stream into its regions.
func frameRegions(t testing.TB, data []byte) []region {
	t.Helper()
	rs := []region{{"magic", 0, 8}}
	for off := 8; off < len(data); {
		typ, n := data[off], int(binary.BigEndian.Uint32(data[off+1:]))
		name := fmt.Sprintf("block %c at %d", typ, off)
		rs = append(rs,
			region{name + " head", off, off + 5},
			region{name + " payload", off + 5, off + 5 + n},
			region{name + " crc", off + 5 + n, off + 9 + n})
		off += 9 + n
	}
	return rs
}

// testStream is a stream of a random workload over many key groups (many
// data blocks).
func testStream(t testing.TB) []byte {
	t.Helper()
	b := state.NewMemory()
	w := newWorkload(t, 21, b, 200)
	w.run(1500)
	return export(t, b, fullRange)
}

func wantCorrupt(t *testing.T, err error, pos int, what string) {
	t.Helper()
	var ce *state.CorruptError
	if !errors.Is(err, state.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("%s: err = %v, want a CorruptError", what, err)
	}
	if ce.Offset < 0 || ce.Offset > int64(pos) {
		t.Fatalf("%s: error at offset %d, after the damage at %d: %v", what, ce.Offset, pos, err)
	}
}

// TestImportCorruption damages a stream in every region (flipped bytes)
// and truncates it at many offsets: every import must fail with a
// CorruptError at or before the damage, and the Pebble backend, which
// stages its import, must be left without any of the data.
func TestImportCorruption(t *testing.T) {
	data := testStream(t)
	regions := frameRegions(t, data)
	if len(regions) < 3*5+1 {
		t.Fatalf("only %d regions: want several data blocks", len(regions))
	}
	t.Logf("stream of %d bytes, %d blocks", len(data), (len(regions)-1)/3)
	peb := openPebble(t, t.TempDir(), state.PebbleOptions{})
	// Pebble imports cost more (staging files): under -race and -short
	// they get every third region.
	sample := func(i int) bool { return !(testing.Short() || raceEnabled) || i%3 == 0 }
	for i, r := range regions {
		for _, pos := range []int{r.start, (r.start + r.end) / 2, r.end - 1} {
			for _, mask := range []byte{0x01, 0x80, 0xFF} {
				bad := bytes.Clone(data)
				bad[pos] ^= mask
				what := fmt.Sprintf("%s: byte %d ^ %#x", r.name, pos, mask)
				wantCorrupt(t, state.Import(state.NewMemory(), bytes.NewReader(bad), fullRange, allOwners), pos, what)
				if mask == 0xFF && pos == r.start && sample(i) {
					wantCorrupt(t, state.Import(peb, bytes.NewReader(bad), fullRange, allOwners), pos, "pebble "+what)
				}
			}
		}
	}
	// Every offset of the first blocks, then a sample (each truncated
	// import parses the whole rest, so all offsets would be quadratic).
	step := 11
	if testing.Short() || raceEnabled {
		step = 37
	}
	for cut := 0; cut < len(data); cut += map[bool]int{true: 1, false: step}[cut < 1000] {
		wantCorrupt(t, state.Import(state.NewMemory(), bytes.NewReader(data[:cut]), fullRange, allOwners), cut, fmt.Sprintf("truncated at %d", cut))
	}
	for i, r := range regions {
		if !sample(i) {
			continue
		}
		for _, cut := range []int{r.start, r.start + 1, r.end - 1} {
			wantCorrupt(t, state.Import(peb, bytes.NewReader(data[:cut]), fullRange, allOwners), cut, fmt.Sprintf("pebble: truncated at %d", cut))
		}
	}
	// Nothing of the failed imports reached the store.
	d := exportDump(t, peb)
	if len(d.cells)+len(d.lists)+len(d.timers) != 0 {
		t.Fatalf("failed imports left data in Pebble: %v", d)
	}
	// The intact stream still imports.
	importStream(t, peb, data, fullRange, allOwners)
	if d := exportDump(t, peb); len(d.cells) == 0 {
		t.Fatal("intact stream imported nothing")
	}
}

// TestImportStructure feeds streams with valid checksums but wrong
// content, built by rewriting a valid stream's frames.
func TestImportStructure(t *testing.T) {
	data := testStream(t)
	regions := frameRegions(t, data)
	header, firstData, trailer := regions[1:4], regions[4:7], regions[len(regions)-3:]
	frame := func(rs []region) []byte { return data[rs[0].start:rs[2].end] }
	payload := func(rs []region) []byte { return bytes.Clone(data[rs[1].start:rs[1].end]) }
	cases := []struct {
		name    string
		stream  []byte
		version bool // ErrStreamVersion rather than ErrCorrupt
	}{
		{"version 2", splice(data, header, func(p []byte) []byte { p[1] = 2; return p }), true},
		{"no header", cat(data[:8], frame(firstData)), false},
		{"two headers", cat(data[:8], frame(header), frame(header), data[header[2].end:]), false},
		{"trailer without the data", cat(data[:header[2].end], frame(trailer)), false},
		{"block count", splice(data, trailer, func(p []byte) []byte { p[7]++; return p }), false},
		{"record count", splice(data, firstData, func(p []byte) []byte { p[5]++; return p }), false},
		{"key group out of order", cat(data[:firstData[0].start], frame(regions[7:10]), frame(firstData), data[regions[9].end:]), false},
		{"key group outside header range", splice(data, header, func(p []byte) []byte { p[9] = 1; return p }), false},
		{"trailing header bytes", splice(data, header, func(p []byte) []byte { return append(p, 0) }), false},
		{"unknown record", splice(data, firstData, func(p []byte) []byte { p[14] = 9; return p }), false},
		{"short trailer", splice(data, trailer, func(p []byte) []byte { return p[:39] }), false},
		{"empty", nil, false},
		{"not a stream", []byte("hello, world, this is not a snapshot"), false},
	}
	if len(payload(firstData)) < 20 {
		t.Fatal("first data block too small")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := state.Import(state.NewMemory(), bytes.NewReader(c.stream), fullRange, allOwners)
			if c.version {
				if !errors.Is(err, state.ErrStreamVersion) || errors.Is(err, state.ErrCorrupt) {
					t.Fatalf("err = %v, want ErrStreamVersion", err)
				}
				return
			}
			if !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

// splice replaces the payload of the frame rs in data by f(payload) and
// recomputes the frame's length and checksum.
func splice(data []byte, rs []region, f func([]byte) []byte) []byte {
	p := f(bytes.Clone(data[rs[1].start:rs[1].end]))
	fr := []byte{data[rs[0].start], 0, 0, 0, 0}
	binary.BigEndian.PutUint32(fr[1:], uint32(len(p)))
	fr = append(fr, p...)
	fr = binary.BigEndian.AppendUint32(fr, crc32.Checksum(fr, crc32.MakeTable(crc32.Castagnoli)))
	return cat(data[:rs[0].start], fr, data[rs[2].end:])
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestImportGenericBackend imports through the Backend interface (a
// backend Import has no fast path for).
func TestImportGenericBackend(t *testing.T) {
	src := state.NewMemory()
	w := newWorkload(t, 8, src, 200)
	w.run(3000)
	data := export(t, src, fullRange)
	dst := wrapped{state.NewMemory()}
	importStream(t, dst, data, fullRange, allOwners)
	if diff := exportDump(t, dst.Backend.(*state.Memory)).diff(w.d); diff != "" {
		t.Fatal(diff)
	}
	if err := state.Import(dst, bytes.NewReader(data), fullRange, state.ImportMapping{}); !errors.Is(err, abi.ErrInvalid) {
		t.Fatalf("nil Owner: %v", err)
	}
}

type wrapped struct{ state.Backend }

// fixCRCs recomputes the length-consistent frames' checksums of a fuzzed
// stream, so that the fuzzer reaches the payload parsers.
func fixCRCs(data []byte) []byte {
	data = bytes.Clone(data)
	table := crc32.MakeTable(crc32.Castagnoli)
	for off := 8; off+9 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[off+1:]))
		if n > len(data)-off-9 {
			break
		}
		binary.BigEndian.PutUint32(data[off+5+n:], crc32.Checksum(data[off:off+5+n], table))
		off += 9 + n
	}
	return data
}

// FuzzImport: no input makes Import panic or fail with anything but a
// corruption or version error, and what it accepts exports again.
func FuzzImport(f *testing.F) {
	m := state.NewMemory()
	w := newWorkload(f, 1, m, 20)
	w.run(200)
	f.Add(export(f, m, fullRange), false)
	f.Add(export(f, m, abi.KeyGroupRange{Start: 10, End: 60}), true)
	small := state.NewMemory()
	id, _ := small.Register("opA", "buffer", abi.StateList)
	_ = small.Append(id, 1, []byte("k"), []byte("v"))
	_ = small.RegisterTimer(state.Timer{Owner: 1, Timestamp: -5, KeyGroup: 2, Key: []byte("t")})
	f.Add(export(f, small, fullRange), true)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = fixCRCs(data)
		}
		b := state.NewMemory()
		err := state.Import(b, bytes.NewReader(data), abi.KeyGroupRange{Start: 0, End: 64}, allOwners)
		if err != nil {
			if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrStreamVersion) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if _, _, err := decodeStream(export(t, b, fullRange)); err != nil {
			t.Fatalf("re-export of an accepted stream: %v", err)
		}
	})
}
