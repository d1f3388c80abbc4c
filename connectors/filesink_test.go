package connectors

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/weirstream/weir/runtime"
)

// txSink is a file sink under test, driven the way the runtime drives a
// TwoPhaseSink.
type txSink struct {
	t    *testing.T
	sink runtime.TwoPhaseSink
}

func newTxSink(t *testing.T, dir string) txSink {
	t.Helper()
	c := registry(t, RegisterOptions{})
	return txSink{t, newSink(t, c, "file", fmt.Sprintf(`{"path": %q}`, dir))().(runtime.TwoPhaseSink)}
}

func (s txSink) open(subtask, p int) txSink {
	s.t.Helper()
	if err := s.sink.Open(context.Background(), taskInfo(subtask, p, nil)); err != nil {
		s.t.Fatal(err)
	}
	return s
}

func (s txSink) restore(subtask, p int, checkpoint int64, states [][]byte) txSink {
	s.t.Helper()
	if err := s.sink.Restore(context.Background(), taskInfo(subtask, p, nil), checkpoint, states); err != nil {
		s.t.Fatal(err)
	}
	return s.open(subtask, p)
}

func (s txSink) write(values ...string) {
	s.t.Helper()
	var recs []rec
	for _, v := range values {
		recs = append(recs, rec{Value: v})
	}
	if err := s.sink.Write(context.Background(), encode(recs...)); err != nil {
		s.t.Fatal(err)
	}
}

func (s txSink) preCommit(checkpoint int64) []byte {
	s.t.Helper()
	st, err := s.sink.PreCommit(context.Background(), checkpoint)
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

func (s txSink) commit(checkpoint int64) {
	s.t.Helper()
	if err := s.sink.Commit(context.Background(), checkpoint); err != nil {
		s.t.Fatal(err)
	}
}

func wantCommitted(t *testing.T, dir string, want ...string) {
	t.Helper()
	got, err := ReadCommitted(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("committed output %q, want %q", got, want)
	}
}

func wantPending(t *testing.T, dir string, n int) {
	t.Helper()
	if got := listDir(t, filepath.Join(dir, PendingDir)); len(got) != n {
		t.Fatalf("pending files %q, want %d", got, n)
	}
}

// TestFileSinkCrashRestore: write, PreCommit 1, Commit 1, write,
// PreCommit 2, write, crash (the sink is dropped without Close). Restored
// from checkpoint 1, the committed output is transaction 1 only and the
// pending data of 2 and of the unfinished transaction is gone; the new
// attempt goes on committing after it.
func TestFileSinkCrashRestore(t *testing.T) {
	dir := t.TempDir()
	s := newTxSink(t, dir).open(0, 1)
	s.write("a", "b")
	st1 := s.preCommit(1)
	wantCommitted(t, dir)
	s.commit(1)
	wantCommitted(t, dir, "a", "b")
	s.write("c")
	s.preCommit(2)
	s.write("d") // unfinished transaction
	if err := s.sink.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantPending(t, dir, 2)
	// Crash: s is dropped.

	r := newTxSink(t, dir).restore(0, 1, 1, [][]byte{st1})
	wantCommitted(t, dir, "a", "b")
	wantPending(t, dir, 0)
	r.write("c2")
	st3 := r.preCommit(3)
	r.commit(3)
	wantCommitted(t, dir, "a", "b", "c2")
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{PendingDir, "part-0-0000000000000000001", "part-0-0000000000000000003"}) {
		t.Fatalf("directory %q", got)
	}
	// Restoring the same checkpoint again (a second failure before the
	// next checkpoint) is idempotent.
	newTxSink(t, dir).restore(0, 1, 3, [][]byte{st3})
	wantCommitted(t, dir, "a", "b", "c2")
}

// TestFileSinkRestoreCommitsCompletedCheckpoint: checkpoint 2 completed
// but the sink crashed before its Commit came; the restore commits it.
// Commit 1 never came either, so checkpoint 2's state holds both.
func TestFileSinkRestoreCommitsCompletedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := newTxSink(t, dir).open(0, 1)
	s.write("a")
	s.preCommit(1)
	s.write("b")
	st2 := s.preCommit(2)
	s.preCommit(3) // empty: no file
	wantPending(t, dir, 2)
	wantCommitted(t, dir)
	newTxSink(t, dir).restore(0, 1, 2, [][]byte{st2})
	wantCommitted(t, dir, "a", "b")
	wantPending(t, dir, 0)
}

// TestFileSinkCommitIdempotent: a repeated Commit, a Commit of a
// checkpoint with nothing pending, and a restore of transactions already
// committed are all fine.
func TestFileSinkCommitIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := newTxSink(t, dir).open(0, 1)
	if st := s.preCommit(1); st != nil {
		t.Fatalf("state of an empty transaction: %q, want nil", st)
	}
	s.commit(1)
	s.write("a")
	st := s.preCommit(2)
	s.commit(2)
	s.commit(2)
	s.commit(7)
	newTxSink(t, dir).restore(0, 1, 2, [][]byte{st})
	wantCommitted(t, dir, "a")
	// Commit before the pending one's checkpoint commits nothing.
	s.write("b")
	s.preCommit(5)
	s.commit(4)
	wantCommitted(t, dir, "a")
	s.commit(5)
	wantCommitted(t, dir, "a", "b")
}

// TestFileSinkRescaleRestore: three subtasks pre-commit checkpoint 5 and
// then 6, which never completes; restored at parallelism 2, subtask 0
// commits old subtasks 0 and 2, subtask 1 old subtask 1, and every pending
// file of 6 is gone. The new subtasks then add theirs.
func TestFileSinkRescaleRestore(t *testing.T) {
	dir := t.TempDir()
	states := make([][]byte, 3)
	for i := 0; i < 3; i++ {
		s := newTxSink(t, dir).open(i, 3)
		s.write(fmt.Sprintf("%d.5", i))
		states[i] = s.preCommit(5)
		s.write(fmt.Sprintf("%d.6", i))
		s.preCommit(6)
		s.write(fmt.Sprintf("%d.7", i))
	}
	wantPending(t, dir, 9)
	n0 := newTxSink(t, dir).restore(0, 2, 5, states)
	wantCommitted(t, dir, "0.5", "2.5")
	n1 := newTxSink(t, dir).restore(1, 2, 5, states)
	wantCommitted(t, dir, "0.5", "1.5", "2.5")
	wantPending(t, dir, 0)
	n0.write("n0.8")
	n1.write("n1.8")
	n0.preCommit(8)
	n1.preCommit(8)
	n1.commit(8)
	n0.commit(8)
	wantCommitted(t, dir, "0.5", "n0.8", "1.5", "n1.8", "2.5")
}

// TestFileSinkFinalCheckpoint: the final transaction's file sorts after
// every checkpoint's, also past 19 digits' worth of ids.
func TestFileSinkFinalCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := newTxSink(t, dir).open(0, 1)
	for i, cp := range []int64{9, 10, 1 << 62} {
		s.write(fmt.Sprint("v", i))
		s.preCommit(cp)
	}
	s.write("last")
	if err := s.sink.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.preCommit(runtime.FinalCheckpoint)
	if err := s.sink.Close(); err != nil {
		t.Fatal(err)
	}
	s.commit(runtime.FinalCheckpoint)
	want := []string{PendingDir, "part-0-0000000000000000009", "part-0-0000000000000000010", "part-0-4611686018427387904", "part-0-final"}
	if got := listDir(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("directory %q, want %q", got, want)
	}
	wantCommitted(t, dir, "v0", "v1", "v2", "last")
}

// TestFileSinkRestoreFinishedSubtask: a subtask that finished before
// checkpoint 5 contributes its final state to it; restoring 5 commits the
// final transaction.
func TestFileSinkRestoreFinishedSubtask(t *testing.T) {
	dir := t.TempDir()
	s := newTxSink(t, dir).open(0, 1)
	s.write("a")
	if err := s.sink.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	final := s.preCommit(runtime.FinalCheckpoint)
	newTxSink(t, dir).restore(0, 1, 5, [][]byte{final})
	wantCommitted(t, dir, "a")
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{PendingDir, "part-0-final"}) {
		t.Fatalf("directory %q", got)
	}
}

// TestFileSinkRestoreIntoAnotherDirectory: a job started from a savepoint
// with another output directory commits the savepoint's pending
// transactions where they were written, cleans nothing there, and writes
// its own output to the new directory. An old directory that is gone is
// logged, not an error.
func TestFileSinkRestoreIntoAnotherDirectory(t *testing.T) {
	oldDir, newDir := t.TempDir(), t.TempDir()
	s := newTxSink(t, oldDir).open(0, 1)
	s.write("old")
	st := s.preCommit(1)
	s.write("in progress") // the old job is still running
	var logs bytes.Buffer
	info := taskInfo(0, 1, nil)
	info.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r := newTxSink(t, newDir)
	if err := r.sink.Restore(context.Background(), info, 1, [][]byte{st}); err != nil {
		t.Fatal(err)
	}
	r.open(0, 1)
	wantCommitted(t, oldDir, "old")
	wantPending(t, oldDir, 1) // the running job's file is left alone
	r.write("new")
	r.preCommit(2)
	r.commit(2)
	wantCommitted(t, newDir, "new")
	if logs.Len() != 0 {
		t.Fatalf("unexpected warnings: %s", logs.String())
	}
	// The old directory is gone (a savepoint copied to another machine).
	if err := os.RemoveAll(oldDir); err != nil {
		t.Fatal(err)
	}
	r = newTxSink(t, t.TempDir())
	if err := r.sink.Restore(context.Background(), info, 1, [][]byte{st}); err != nil {
		t.Fatalf("restore with the old directory gone: %v", err)
	}
	if !strings.Contains(logs.String(), "not committed in the checkpoint's output directory") || !strings.Contains(logs.String(), "the transaction's data is lost") {
		t.Fatalf("warning: %q", logs.String())
	}
}

func TestPartFileNames(t *testing.T) {
	for _, tc := range []struct {
		subtask    int
		checkpoint int64
		want       string
	}{
		{0, 0, "part-0-0000000000000000000"},
		{12, 345, "part-12-0000000000000000345"},
		{3, 1<<63 - 2, "part-3-9223372036854775806"},
		{3, runtime.FinalCheckpoint, "part-3-final"},
	} {
		got := PartFileName(tc.subtask, tc.checkpoint)
		if got != tc.want {
			t.Errorf("PartFileName(%d, %d) = %q, want %q", tc.subtask, tc.checkpoint, got, tc.want)
		}
		sub, cp, ok := parseCommittedName(got)
		if !ok || sub != tc.subtask || cp != tc.checkpoint {
			t.Errorf("parseCommittedName(%q) = %d, %d, %v", got, sub, cp, ok)
		}
	}
	for _, bad := range []string{"part-0", "part-01-0000000000000000001", "part-0-1", "part-0-x000000000000000001", "part--1-final", "other"} {
		if _, _, ok := parseCommittedName(bad); ok {
			t.Errorf("parseCommittedName(%q) accepted", bad)
		}
	}
}

// TestReadCommitted: files ordered by subtask number (numerically), then
// commit order; other names are ignored.
func TestReadCommitted(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"part-10-0000000000000000001": "s10\n",
		"part-2-final":                "s2 final\n",
		"part-2-0000000000000000007":  "s2 c7 a\ns2 c7 b\n",
		"part-2-0000000000000000003":  "s2 c3\n",
		"part-2-0000000000000000004":  "",
		"part-2":                      "legacy, ignored\n",
		".pending/part-2-abc-0":       "pending, ignored\n",
		"notes.txt":                   "ignored\n",
	})
	wantCommitted(t, dir, "s2 c3", "s2 c7 a", "s2 c7 b", "s2 final", "s10")
	torn := writeFiles(t, map[string]string{"part-0-final": "no newline"})
	if _, err := ReadCommitted(torn); err == nil || !strings.Contains(err.Error(), "does not end with a newline") {
		t.Fatalf("torn file: %v", err)
	}
	if _, err := ReadCommitted(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing directory: no error")
	}
}

// TestFileSinkOpenAfterRestoreKeepsOutput: after Restore, Open keeps the
// committed output of the earlier attempt (a fresh Open would remove it).
func TestFileSinkOpenAfterRestoreKeepsOutput(t *testing.T) {
	dir := t.TempDir()
	s := newTxSink(t, dir).open(0, 1)
	s.write("a")
	st := s.preCommit(1)
	s.commit(1)
	newTxSink(t, dir).restore(0, 1, 1, [][]byte{st})
	wantCommitted(t, dir, "a")
	newTxSink(t, dir).open(0, 1)
	wantCommitted(t, dir)
}

func TestFileSinkErrors(t *testing.T) {
	dir := t.TempDir()
	s := newTxSink(t, dir).open(0, 2)
	s.write("a")
	st := s.preCommit(4)
	ctx := context.Background()
	if _, err := s.sink.PreCommit(ctx, 4); err == nil || !strings.Contains(err.Error(), "pre-commit of checkpoint 4 after checkpoint 4: checkpoint ids must increase") {
		t.Fatalf("repeated id: %v", err)
	}
	datagen := snapshotOf(t, "datagen", `{"count": 3}`)
	other := bytes.Clone(st)
	other[len(other)-1] ^= 0xff
	for _, tc := range []struct {
		name       string
		subtask    int
		checkpoint int64
		states     [][]byte
		want       string
	}{
		{"garbage", 0, 4, [][]byte{[]byte("garbage!garbage!")}, `file sink node "node" subtask 0: restore checkpoint 4: state of old subtask 0: not a Weir connector snapshot (bad magic)`},
		{"corrupt", 0, 4, [][]byte{other}, `state of old subtask 0: corrupt snapshot (checksum mismatch)`},
		{"other kind", 0, 4, [][]byte{datagen}, `state of old subtask 0: snapshot of a datagen source, want a file sink`},
		{"misplaced", 1, 4, [][]byte{nil, st}, `state of old subtask 1: taken by subtask 0, but it is entry 1 of a checkpoint with 2 subtasks`},
		{"later checkpoint", 0, 3, [][]byte{st}, `restore checkpoint 3: state of old subtask 0 holds a transaction of checkpoint 4`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTxSink(t, dir).sink
			err := r.Restore(ctx, taskInfo(tc.subtask, 2, nil), tc.checkpoint, tc.states)
			wantErr(t, err, tc.want)
		})
	}
	// The pending file vanished without being committed: data loss is
	// reported, not ignored.
	pending := listDir(t, filepath.Join(dir, PendingDir))
	if len(pending) != 1 {
		t.Fatalf("pending %q", pending)
	}
	if err := os.Rename(filepath.Join(dir, PendingDir, pending[0]), filepath.Join(dir, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	r := newTxSink(t, dir).sink
	wantErr(t, r.Restore(ctx, taskInfo(0, 1, nil), 4, [][]byte{st}), "is missing and "+filepath.Join(dir, "part-0-0000000000000000004")+" does not exist: the transaction's data is lost")
	// A truncated pending file does not get committed.
	if err := os.WriteFile(filepath.Join(dir, PendingDir, pending[0]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.Restore(ctx, taskInfo(0, 1, nil), 4, [][]byte{st}), "has 0 bytes, the checkpoint recorded 2")
	// A committed file of the same name is never overwritten.
	if err := os.WriteFile(filepath.Join(dir, PendingDir, pending[0]), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "part-0-0000000000000000004"), []byte("other run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.Restore(ctx, taskInfo(0, 1, nil), 4, [][]byte{st}), "already exists (was a checkpoint id reused?)")
}

// snapshotOf returns the snapshot of a fresh subtask 0 of 1 of a source.
func snapshotOf(t *testing.T, kind, config string) []byte {
	t.Helper()
	src := openRestored(t, newSource(t, registry(t, RegisterOptions{}), kind, config), 0, 1, nil, nil)
	b, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
