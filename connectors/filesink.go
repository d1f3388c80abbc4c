package connectors

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
)

// fileSinkConfig is the config of the file sink.
type fileSinkConfig struct {
	Path   string `json:"path"`
	Format string `json:"format"`
}

// fileSinkBufferSize is how many formatted bytes a file sink subtask gathers
// before one write(2): large enough that the syscall cost disappears per
// record, small enough not to matter per task.
const fileSinkBufferSize = 256 << 10

// NewFileSinkFactory returns the file sink factory; relative paths resolve
// against baseDir (empty: the working directory).
func NewFileSinkFactory(baseDir string) runtime.SinkFactory {
	return newFileSinkFactory(fileRoot{base: baseDir})
}

func newFileSinkFactory(root fileRoot) runtime.SinkFactory {
	return func(config []byte) (func() runtime.Sink, error) {
		var cfg fileSinkConfig
		if err := runtime.DecodeConfig(config, &cfg); err != nil {
			return nil, err
		}
		if cfg.Path == "" {
			return nil, errors.New("config.path: required (the output directory)")
		}
		format, err := parseOutputFormat(cfg.Format)
		if err != nil {
			return nil, err
		}
		// Absolute, because transaction states name it: a restore with
		// another output directory must be told apart.
		p, err := root.resolve(cfg.Path)
		if err != nil {
			return nil, err
		}
		dir, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("config.path: %w", err)
		}
		return func() runtime.Sink {
			return &fileSink{dir: dir, pendingDir: filepath.Join(dir, PendingDir), format: format}
		}, nil
	}
}

// PendingDir is the hidden directory, inside a file sink's output
// directory, that holds its uncommitted files.
const PendingDir = ".pending"

// PartFileName is the name of the committed file holding what subtask
// wrote for checkpoint (its transaction of that checkpoint):
// "part-<subtask>-<checkpoint>", the checkpoint id zero-padded to 19 digits
// so that a sorted listing gives each subtask's files in commit order, and
// "part-<subtask>-final" for FinalCheckpoint, which sorts after them.
func PartFileName(subtask int, checkpoint int64) string {
	if checkpoint == runtime.FinalCheckpoint {
		return "part-" + strconv.Itoa(subtask) + "-final"
	}
	return fmt.Sprintf("part-%d-%019d", subtask, checkpoint)
}

// parsePartName splits "part-<subtask>-<rest>" (any file this sink
// writes, committed or pending, and "part-<subtask>" of older versions,
// with rest ""). ok is false for any other name.
func parsePartName(name string) (subtask int, rest string, ok bool) {
	tail, found := strings.CutPrefix(name, "part-")
	if !found {
		return 0, "", false
	}
	num, rest, _ := strings.Cut(tail, "-")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, rest, true
}

// parseCommittedName is the inverse of PartFileName.
func parseCommittedName(name string) (subtask int, checkpoint int64, ok bool) {
	subtask, rest, ok := parsePartName(name)
	if !ok {
		return 0, 0, false
	}
	if rest == "final" {
		return subtask, runtime.FinalCheckpoint, true
	}
	if len(rest) != 19 {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n < 0 {
		return 0, 0, false
	}
	return subtask, n, true
}

// ReadCommitted returns the lines of every committed file of the file
// sink directory dir: each subtask's files (by the subtask number in their
// names, ascending) in commit order, each file's lines in order, without
// their newlines. Pending data and files of other names are ignored. Tests
// compare it with the expected output.
func ReadCommitted(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read committed output: %w", err)
	}
	type part struct {
		name       string
		subtask    int
		checkpoint int64
	}
	var parts []part
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if sub, cp, ok := parseCommittedName(e.Name()); ok {
			parts = append(parts, part{e.Name(), sub, cp})
		}
	}
	slices.SortFunc(parts, func(a, b part) int {
		if c := cmp.Compare(a.subtask, b.subtask); c != 0 {
			return c
		}
		return cmp.Compare(a.checkpoint, b.checkpoint)
	})
	var lines []string
	for _, p := range parts {
		b, err := os.ReadFile(filepath.Join(dir, p.name))
		if err != nil {
			return nil, fmt.Errorf("read committed output: %w", err)
		}
		text := string(b)
		if text == "" {
			continue
		}
		if !strings.HasSuffix(text, "\n") {
			return nil, fmt.Errorf("read committed output: %s does not end with a newline (a torn file?)", filepath.Join(dir, p.name))
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(text, "\n"), "\n")...)
	}
	return lines, nil
}

// fileSink writes the records of one subtask, one line per record in
// arrival order, as a two-phase-commit sink (runtime.TwoPhaseSink): the
// records between two checkpoints go to one pending file, which PreCommit
// makes durable and Commit renames to its committed name (see doc.go, "Sink
// file", for the protocol and the file names).
type fileSink struct {
	dir, pendingDir string
	format          outputFormat

	node    string
	subtask int
	opened  bool
	// restored: Restore ran, so Open must keep the directory's files.
	restored bool
	// token makes this instance's pending names unique, so that the files
	// of an earlier attempt of the same subtask are never reused.
	token string
	seq   int // sequence number of the next pending file

	// part is the open pending file of the current transaction; nil until
	// the transaction's first record, so empty transactions leave no file.
	part *partFile
	// buf gathers formatted lines for part; it outlives part files, so a
	// transaction per checkpoint allocates no new buffer.
	buf []byte
	// pending are the pre-committed transactions not committed yet, by
	// ascending checkpoint.
	pending []fileTxn
	// lastPreCommit is the last checkpoint pre-committed (-1: none).
	lastPreCommit int64

	dec abi.Decoder
	ev  abi.Event
}

// fileTxn is a pre-committed transaction: the pending file holding what
// subtask wrote up to checkpoint's barrier, and its size.
type fileTxn struct {
	checkpoint int64
	subtask    int
	pending    string // name in PendingDir
	size       int64
}

func (t fileTxn) committedName() string { return PartFileName(t.subtask, t.checkpoint) }

func (s *fileSink) errorf(format string, args ...any) error {
	return fmt.Errorf("file sink node %q subtask %d: %w", s.node, s.subtask, fmt.Errorf(format, args...))
}

// Open creates the directories if missing. On a fresh start (no Restore)
// it removes what an earlier run left in the directory for the subtasks
// this one replaces (see doc.go); after a Restore it keeps everything.
func (s *fileSink) Open(_ context.Context, info runtime.TaskInfo) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	s.node, s.subtask = info.NodeID, subtask
	if err := s.makeDirs(); err != nil {
		return err
	}
	if !s.restored {
		// Subtask s removes the files of every subtask number j with
		// j % p == s: all leftovers of a run at any parallelism are removed
		// exactly once, and never a file a live subtask of this run writes
		// (those have j < p, so j % p == j).
		mine := func(j int) bool { return j%p == subtask }
		if err := s.removeParts(s.dir, mine); err != nil {
			return err
		}
		if err := s.removeParts(s.pendingDir, mine); err != nil {
			return err
		}
	}
	var tok [8]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return s.errorf("random pending file token: %w", err)
	}
	s.token = hex.EncodeToString(tok[:])
	s.lastPreCommit = -1
	s.opened = true
	return nil
}

func (s *fileSink) makeDirs() error {
	if err := os.MkdirAll(s.pendingDir, 0o755); err != nil {
		return fmt.Errorf("file sink: create directory: %w", err)
	}
	return nil
}

// removeParts removes the files part-<j>-... (and part-<j>) of dir with
// which(j).
func (s *fileSink) removeParts(dir string, which func(int) bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return s.errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		j, _, ok := parsePartName(e.Name())
		if !ok || !which(j) || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.errorf("remove leftover: %w", err)
		}
	}
	return nil
}

// Write formats the batch's records into the pending file's buffer.
func (s *fileSink) Write(_ context.Context, batch []byte) error {
	if !s.opened {
		return errors.New("file sink: Write before Open")
	}
	s.dec.Reset(batch)
	if s.part == nil && s.dec.More() {
		name := fmt.Sprintf("part-%d-%s-%d", s.subtask, s.token, s.seq)
		part, err := createPartFile(filepath.Join(s.pendingDir, name))
		if err != nil {
			return s.errorf("%w", err)
		}
		s.part, s.seq = part, s.seq+1
		if s.buf == nil {
			s.buf = make([]byte, 0, fileSinkBufferSize)
		}
	}
	buf := s.buf
	for s.dec.More() {
		if err := nextRecord(&s.dec, &s.ev); err != nil {
			s.buf = buf
			return fmt.Errorf("file sink %s: %w", s.part.path, err)
		}
		buf = appendRecordLine(buf, s.format, s.ev.Key, s.ev.Value, s.ev.Timestamp)
		if len(buf) >= fileSinkBufferSize {
			err := s.part.write(buf)
			buf = buf[:0]
			if err != nil {
				s.buf = buf
				return s.errorf("%w", err)
			}
		}
	}
	s.buf = buf
	return nil
}

// Finish writes out what is buffered. The data becomes durable at the
// PreCommit(FinalCheckpoint) that follows and visible at its Commit.
func (s *fileSink) Finish(context.Context) error {
	return s.flush()
}

// flush writes what buf holds to the pending file.
func (s *fileSink) flush() error {
	if s.part == nil || len(s.buf) == 0 {
		return nil
	}
	err := s.part.write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return s.errorf("%w", err)
	}
	return nil
}

// PreCommit implements runtime.TwoPhaseSink: it flushes, syncs and closes
// the current pending file as checkpoint's transaction, and returns the
// state of every transaction not committed yet (this one and any earlier
// one whose Commit has not come), or nil when there is none.
func (s *fileSink) PreCommit(_ context.Context, checkpoint int64) ([]byte, error) {
	if !s.opened {
		return nil, errors.New("file sink: PreCommit before Open")
	}
	if checkpoint < 0 || checkpoint <= s.lastPreCommit {
		// A repeated id would give two transactions one committed name.
		return nil, s.errorf("pre-commit of checkpoint %d after checkpoint %d: checkpoint ids must increase", checkpoint, s.lastPreCommit)
	}
	s.lastPreCommit = checkpoint
	if s.part != nil {
		if err := s.flush(); err != nil {
			s.part.f.Close()
			s.part = nil
			return nil, err
		}
		part := s.part
		s.part = nil
		if err := part.f.Sync(); err != nil {
			part.f.Close()
			return nil, s.errorf("sync %s: %w", part.path, err)
		}
		if err := part.f.Close(); err != nil {
			return nil, s.errorf("close %s: %w", part.path, err)
		}
		// The file's directory entry must be as durable as its data.
		if err := syncDir(s.pendingDir); err != nil {
			return nil, s.errorf("%w", err)
		}
		s.pending = append(s.pending, fileTxn{checkpoint: checkpoint, subtask: s.subtask, pending: filepath.Base(part.path), size: part.size})
	}
	if len(s.pending) == 0 {
		return nil, nil
	}
	return encodeFileSinkState(s.subtask, s.dir, s.pending), nil
}

// Commit implements runtime.TwoPhaseSink: it renames the pending file of
// every transaction up to checkpoint to its committed name. It does not
// need the sink to be open, so it may follow Close.
func (s *fileSink) Commit(_ context.Context, checkpoint int64) error {
	n := 0
	for _, t := range s.pending {
		if t.checkpoint > checkpoint {
			break
		}
		if err := commitFileTxn(s.dir, s.pendingDir, t); err != nil {
			return s.errorf("%w", err)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	s.pending = slices.Delete(s.pending, 0, n)
	if err := syncDir(s.dir); err != nil {
		return s.errorf("%w", err)
	}
	return nil
}

// commitFileTxn renames t's pending file to its committed name,
// idempotently: a transaction whose pending file is gone and whose
// committed file exists with the recorded size was committed before.
func commitFileTxn(dir, pendingDir string, t fileTxn) error {
	src, dst := filepath.Join(pendingDir, t.pending), filepath.Join(dir, t.committedName())
	dstInfo, dstErr := os.Stat(dst)
	srcInfo, err := os.Stat(src)
	switch {
	case err == nil && dstErr == nil:
		return fmt.Errorf("commit checkpoint %d: %s already exists (was a checkpoint id reused?); not overwriting it with %s", t.checkpoint, dst, src)
	case err == nil && srcInfo.Size() != t.size:
		return fmt.Errorf("commit checkpoint %d: pending file %s has %d bytes, the checkpoint recorded %d", t.checkpoint, src, srcInfo.Size(), t.size)
	case err == nil:
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("commit checkpoint %d: %w", t.checkpoint, err)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("commit checkpoint %d: %w", t.checkpoint, err)
	case dstErr == nil && dstInfo.Size() == t.size:
		return nil // committed already
	case dstErr == nil:
		return fmt.Errorf("commit checkpoint %d: pending file %s is gone and %s has %d bytes, the checkpoint recorded %d", t.checkpoint, src, dst, dstInfo.Size(), t.size)
	}
	return fmt.Errorf("commit checkpoint %d: pending file %s is missing and %s does not exist: the transaction's data is lost", t.checkpoint, src, dst)
}

// Restore implements runtime.TwoPhaseSink. For every old subtask i with
// i % parallelism == subtask it commits the transactions of i's state (all
// of checkpoint or earlier, or FinalCheckpoint's when i had finished) and
// then removes every other pending file of subtask i: the transactions of
// checkpoints that never completed and the unfinished file of the failed
// attempt.
func (s *fileSink) Restore(_ context.Context, info runtime.TaskInfo, checkpoint int64, states [][]byte) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	s.node, s.subtask = info.NodeID, subtask
	log := info.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := s.makeDirs(); err != nil {
		return err
	}
	synced := map[string]bool{}
	for old := subtask; old < len(states); old += p {
		if states[old] == nil {
			continue
		}
		dir, txns, err := decodeFileSinkState(states[old], old, len(states))
		if err != nil {
			return s.errorf("restore checkpoint %d: state of old subtask %d: %w", checkpoint, old, err)
		}
		for _, t := range txns {
			// A state of checkpoint n lists transactions up to n, except the
			// final one of a subtask that finished before n (its state is
			// then part of every later checkpoint).
			if t.checkpoint > checkpoint && t.checkpoint != runtime.FinalCheckpoint {
				return s.errorf("restore checkpoint %d: state of old subtask %d holds a transaction of checkpoint %d", checkpoint, old, t.checkpoint)
			}
		}
		if dir != s.dir {
			// The job was restored with another output directory (a
			// savepoint started elsewhere): the old transactions belong to
			// the old output, which normally committed them when the
			// savepoint completed. Commit what is still pending there, but
			// a directory that is gone or changed is that output's
			// business, not a reason to fail this job.
			for _, t := range txns {
				if err := commitFileTxn(dir, filepath.Join(dir, PendingDir), t); err != nil {
					log.Warn("file sink: restore: not committed in the checkpoint's output directory", "node", s.node, "subtask", subtask, "dir", dir, "err", err)
					continue
				}
				synced[dir] = true
			}
			continue
		}
		for _, t := range txns {
			if err := commitFileTxn(s.dir, s.pendingDir, t); err != nil {
				return s.errorf("restore: %w", err)
			}
			synced[s.dir] = true
		}
	}
	for dir := range synced {
		if err := syncDir(dir); err != nil {
			return s.errorf("%w", err)
		}
	}
	// Only this directory is cleaned: an old one may belong to a job still
	// running from the same savepoint.
	mine := func(j int) bool { return j < len(states) && j%p == subtask }
	if err := s.removeParts(s.pendingDir, mine); err != nil {
		return err
	}
	s.restored = true
	return nil
}

// Close closes the open pending file, if any, and removes it: its records
// belong to no transaction and will be replayed. Pre-committed files stay
// for Commit or a later Restore.
func (s *fileSink) Close() error {
	if s.part == nil {
		return nil
	}
	part := s.part
	s.part = nil
	s.buf = s.buf[:0]
	err := part.f.Close()
	if rerr := os.Remove(part.path); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return s.errorf("discard unfinished transaction: %w", err)
	}
	return nil
}

// syncDir makes the entries created or renamed in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// encodeFileSinkState writes the transaction state of a subtask (doc.go,
// "Checkpoint formats").
func encodeFileSinkState(subtask int, dir string, txns []fileTxn) []byte {
	w := newSnapWriter(snapKindFileSink)
	w.uvarint(uint64(subtask))
	w.string(dir)
	w.uvarint(uint64(len(txns)))
	for _, t := range txns {
		w.uvarint(uint64(t.checkpoint))
		w.string(t.pending)
		w.uvarint(uint64(t.size))
	}
	return w.finish()
}

// decodeFileSinkState reads the state of old subtask old of oldP: the
// output directory and the transactions. It checks that the state is that
// subtask's and that every pending name is one this sink writes for it (a
// state must not make Restore touch other files).
func decodeFileSinkState(b []byte, old, oldP int) (string, []fileTxn, error) {
	r, err := openSnapshot(b, snapKindFileSink)
	if err != nil {
		return "", nil, err
	}
	sub := r.int("subtask", maxSnapshotParallelism)
	dir := r.string("output directory")
	if r.err == nil && !filepath.IsAbs(dir) {
		r.fail("corrupt state: output directory %q is not absolute", dir)
	}
	n := r.int("transaction count", 1<<20)
	var txns []fileTxn
	for i := 0; i < n && r.err == nil; i++ {
		t := fileTxn{checkpoint: r.int64("checkpoint"), subtask: sub, pending: r.string("pending file name"), size: r.int64("size")}
		if r.err == nil {
			if j, _, ok := parsePartName(t.pending); !ok || j != sub || strings.ContainsAny(t.pending, `/\`) {
				r.fail("corrupt state: %q is not a pending file name of subtask %d", t.pending, sub)
			}
		}
		txns = append(txns, t)
	}
	if err := r.done(); err != nil {
		return "", nil, err
	}
	if sub != old {
		return "", nil, fmt.Errorf("taken by subtask %d, but it is entry %d of a checkpoint with %d subtasks", sub, old, oldP)
	}
	return filepath.Clean(dir), txns, nil
}

// partFile is a pending file being written. The sink formats straight into
// its buffer (no intermediate copy, unlike bufio.Writer) and writes it out
// once it holds fileSinkBufferSize bytes. A record that overflows the
// capacity grows the buffer once (append doubles it); the grown buffer is
// then reused, so steady state allocates nothing.
type partFile struct {
	path string
	f    *os.File
	size int64 // bytes written to f
}

// createPartFile creates a new file at path (never an existing one: pending
// names are unique).
func createPartFile(path string) (*partFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err // *PathError names the file
	}
	return &partFile{path: path, f: f}, nil
}

func (p *partFile) write(b []byte) error {
	n, err := p.f.Write(b)
	p.size += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	return nil
}
