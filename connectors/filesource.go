package connectors

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
)

// fileSourceConfig is the config of the file source (documented in doc.go).
type fileSourceConfig struct {
	Path            string  `json:"path"`
	Format          string  `json:"format"`
	TimestampField  string  `json:"timestampField"`
	TimestampFormat string  `json:"timestampFormat"`
	KeyField        string  `json:"keyField"`
	Header          *bool   `json:"header"`
	Delimiter       *string `json:"delimiter"`
}

type fileFormat uint8

const (
	fileLines fileFormat = iota
	fileJSONL
	fileCSV
)

type timestampFormat uint8

const (
	tsMillis timestampFormat = iota
	tsSeconds
	tsRFC3339
)

func (f timestampFormat) String() string {
	switch f {
	case tsSeconds:
		return "seconds"
	case tsRFC3339:
		return "an RFC 3339 time"
	}
	return "milliseconds"
}

// fileSourcePlan is a validated file source config, shared by the subtasks.
type fileSourcePlan struct {
	pattern  string // path or glob, resolved against the base directory
	format   fileFormat
	tsField  string // "": no event time
	tsFormat timestampFormat
	keyField string // "": empty keys
	header   bool   // csv
	delim    rune   // csv
}

// NewFileSourceFactory returns the file source factory; relative paths
// resolve against baseDir (empty: the working directory).
func NewFileSourceFactory(baseDir string) runtime.SourceFactory {
	return newFileSourceFactory(fileRoot{base: baseDir})
}

func newFileSourceFactory(root fileRoot) runtime.SourceFactory {
	return func(config []byte) (func() runtime.Source, error) {
		plan, err := newFileSourcePlan(config, root)
		if err != nil {
			return nil, err
		}
		return func() runtime.Source { return &fileSource{plan: plan} }, nil
	}
}

func newFileSourcePlan(config []byte, root fileRoot) (*fileSourcePlan, error) {
	var cfg fileSourceConfig
	if err := runtime.DecodeConfig(config, &cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, errors.New("config.path: required (a file or a glob pattern)")
	}
	if _, err := filepath.Match(cfg.Path, ""); err != nil {
		return nil, fmt.Errorf("config.path: bad glob pattern %q: %w", cfg.Path, err)
	}
	pattern, err := root.resolve(cfg.Path)
	if err != nil {
		return nil, err
	}
	p := &fileSourcePlan{
		pattern:  pattern,
		tsField:  cfg.TimestampField,
		keyField: cfg.KeyField,
		header:   true,
		delim:    ',',
	}
	switch cfg.Format {
	case "", "lines":
		p.format = fileLines
	case "jsonl":
		p.format = fileJSONL
	case "csv":
		p.format = fileCSV
	default:
		return nil, fmt.Errorf("config.format: must be one of lines, jsonl, csv, got %q", cfg.Format)
	}
	if p.format == fileLines {
		if cfg.TimestampField != "" {
			return nil, errors.New("config.timestampField: not supported for format lines (a line has no fields)")
		}
		if cfg.KeyField != "" {
			return nil, errors.New("config.keyField: not supported for format lines (a line has no fields)")
		}
	}
	switch cfg.TimestampFormat {
	case "", "millis":
		p.tsFormat = tsMillis
	case "seconds":
		p.tsFormat = tsSeconds
	case "rfc3339":
		p.tsFormat = tsRFC3339
	default:
		return nil, fmt.Errorf("config.timestampFormat: must be one of millis, seconds, rfc3339, got %q", cfg.TimestampFormat)
	}
	if cfg.TimestampFormat != "" && cfg.TimestampField == "" {
		return nil, errors.New("config.timestampFormat: set without config.timestampField")
	}
	if p.format != fileCSV {
		if cfg.Header != nil {
			return nil, errors.New("config.header: only used with format csv")
		}
		if cfg.Delimiter != nil {
			return nil, errors.New("config.delimiter: only used with format csv")
		}
		return p, nil
	}
	if cfg.Header != nil {
		p.header = *cfg.Header
	}
	if cfg.Delimiter != nil {
		d := *cfg.Delimiter
		r, size := utf8.DecodeRuneInString(d)
		if size == 0 || size != len(d) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' {
			return nil, fmt.Errorf("config.delimiter: must be a single character other than a quote or line break, got %q", d)
		}
		p.delim = r
	}
	return p, nil
}

// inputFile is one file of a file source's input.
type inputFile struct {
	path string
	// name is path relative to the pattern's fixed directory (the part
	// before any glob metacharacter), so that a snapshot still matches when
	// the job spec's directory moves, as a savepoint may.
	name string
	size int64
}

// files lists the input files: the path itself, or the glob's matches in
// lexical order (directories among them are skipped).
func (p *fileSourcePlan) files() ([]inputFile, error) {
	if !hasGlobMeta(p.pattern) {
		st, err := os.Stat(p.pattern)
		if err != nil {
			return nil, err // *PathError: "stat <path>: no such file or directory"
		}
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory (use a glob such as %s)", p.pattern, filepath.Join(p.pattern, "*"))
		}
		return []inputFile{{path: p.pattern, name: filepath.Base(p.pattern), size: st.Size()}}, nil
	}
	matches, err := filepath.Glob(p.pattern)
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", p.pattern, err)
	}
	sort.Strings(matches)
	root := globRoot(p.pattern)
	var files []inputFile
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			continue
		}
		name, err := filepath.Rel(root, m)
		if err != nil {
			name = m
		}
		files = append(files, inputFile{path: m, name: filepath.ToSlash(name), size: st.Size()})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no file matches %q", p.pattern)
	}
	return files, nil
}

// globRoot is the directory of pattern up to its first element holding a
// glob metacharacter: "/data/2024-*/x.csv" gives "/data".
func globRoot(pattern string) string {
	dir := filepath.Dir(pattern)
	for hasGlobMeta(dir) {
		dir = filepath.Dir(dir)
	}
	return dir
}

func hasGlobMeta(path string) bool { return strings.ContainsAny(path, `*?[\`) }

// fileSource is one subtask of a file source node. It reads every input
// file in order and keeps the records whose global index (counted over all
// files, blank JSONL lines and CSV headers excluded) is subtask modulo
// parallelism, except those a restored checkpoint says were read already,
// so the subtasks' outputs partition the input deterministically.
type fileSource struct {
	plan *fileSourcePlan

	files   []inputFile
	fileIdx int
	cur     recordReader
	index   uint64 // global index of the next record scanned
	share   share

	restored bool
	opened   bool
	// resume is where reading starts after a restore: cur is opened at its
	// offset when fileIdx reaches resume.file.
	resume fileCursor
}

// fileCursor is a position in a file source's input from which reading
// can continue without rescanning what lies before it.
type fileCursor struct {
	file   int    // index into the file list; len(files) is the end
	offset int64  // byte offset in that file where scanning continues
	line   int    // lines of that file before offset (for error messages)
	index  uint64 // global index of the next record scanned from there
}

// Open lists the input files, failing when there are none.
func (s *fileSource) Open(_ context.Context, info runtime.TaskInfo) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	if s.restored {
		if s.share.sub != uint64(subtask) || s.share.par != uint64(p) {
			return fmt.Errorf("file source node %q: Open as subtask %d of %d after Restore as subtask %d of %d", info.NodeID, subtask, p, s.share.sub, s.share.par)
		}
	} else {
		if s.files, err = s.plan.files(); err != nil {
			return fmt.Errorf("file source: %w", err)
		}
		s.share = newShare(indexSet{}, uint64(subtask), uint64(p))
	}
	s.fileIdx, s.index = s.resume.file, s.resume.index
	s.opened = true
	return nil
}

// Poll reads up to maxRecords of this subtask's records and reports done
// after the last file's end.
func (s *fileSource) Poll(_ context.Context, w runtime.RecordWriter, maxRecords int) (bool, error) {
	if !s.opened {
		return false, errors.New("file source: Poll before Open")
	}
	sub, par := s.share.sub, s.share.par
	for written := 0; written < max(maxRecords, 1); {
		if s.cur == nil {
			if s.fileIdx == len(s.files) {
				return true, nil
			}
			var offset int64
			var line int
			if s.fileIdx == s.resume.file {
				offset, line = s.resume.offset, s.resume.line
			}
			r, err := newRecordReader(s.plan, s.files[s.fileIdx].path, offset, line)
			if err != nil {
				return false, fmt.Errorf("file source: %w", err)
			}
			s.cur = r
		}
		ok, err := s.cur.scan()
		if err != nil {
			return false, fmt.Errorf("file source: %w", err)
		}
		if !ok {
			err := s.cur.close()
			s.cur = nil
			s.fileIdx++
			if err != nil {
				return false, fmt.Errorf("file source: %w", err)
			}
			continue
		}
		idx := s.index
		s.index++
		if idx%par != sub || s.share.isDone(idx) {
			continue
		}
		key, value, ts, err := s.cur.decode()
		if err != nil {
			return false, fmt.Errorf("file source: %w", err)
		}
		w.Write(key, value, ts)
		written++
	}
	return false, nil
}

// Close closes the open file, if any.
func (s *fileSource) Close() error {
	if s.cur == nil {
		return nil
	}
	err := s.cur.close()
	s.cur = nil
	return err
}

// position is the cursor after the last record scanned.
func (s *fileSource) position() fileCursor {
	if s.cur != nil {
		off, line := s.cur.pos()
		return fileCursor{file: s.fileIdx, offset: off, line: line, index: s.index}
	}
	if s.fileIdx == s.resume.file {
		return s.resume // restored, and the file not opened yet
	}
	return fileCursor{file: s.fileIdx, index: s.index}
}

// Snapshot implements runtime.CheckpointedSource: the input's identity
// (format, file names and sizes), this subtask's cursor, and the set of
// indices read so far over the node (see doc.go, "Checkpoint formats").
func (s *fileSource) Snapshot() ([]byte, error) {
	if !s.opened {
		return nil, errors.New("file source: Snapshot before Open")
	}
	w := sourceSnapshot(snapKindFileSource, &s.share)
	w.uvarint(uint64(s.plan.format))
	w.uvarint(b2u(s.plan.header))
	w.uvarint(uint64(s.plan.delim))
	w.uvarint(uint64(len(s.files)))
	for _, f := range s.files {
		w.string(f.name)
		w.uvarint(uint64(f.size))
	}
	c := s.position()
	w.uvarint(uint64(c.file))
	w.uvarint(uint64(c.offset))
	w.uvarint(uint64(c.line))
	w.uvarint(c.index)
	set := s.share.produced(s.index)
	set.encode(w)
	return w.finish(), nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Restore implements runtime.CheckpointedSource. The input must be what
// the checkpoint read: same format (and csv header and delimiter, which
// decide what a record is) and the same files, names and sizes. Reading
// resumes at the old subtasks' cursor nearest before this subtask's first
// unread record, so a restore rescans at most the gap between the slowest
// old subtask and that record, not the input.
func (s *fileSource) Restore(info runtime.TaskInfo, states [][]byte) error {
	subtask, p, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	fail := func(err error) error {
		return fmt.Errorf("file source node %q subtask %d: restore: %w", info.NodeID, subtask, err)
	}
	if s.files, err = s.plan.files(); err != nil {
		return fail(err)
	}
	cursors := []fileCursor{{}} // the input's start is always a valid cursor
	done, err := restoreSourceStates(states, snapKindFileSource, func(_ int, r *snapReader) error {
		c, err := s.checkSnapshotInput(r)
		if err != nil {
			return err
		}
		cursors = append(cursors, c)
		return nil
	})
	if err != nil {
		return fail(err)
	}
	s.share = newShare(done, uint64(subtask), uint64(p))
	// Any cursor at or before the first index this subtask needs will do;
	// the latest such one rescans least. firstFree may stop early on its
	// budget, which only makes first a lower bound: still correct.
	first, _ := done.firstFree(0, uint64(p), uint64(subtask), normalizeBudget)
	best := cursors[0]
	for _, c := range cursors[1:] {
		if c.index <= first && c.index > best.index {
			best = c
		}
	}
	s.resume = best
	s.restored = true
	return nil
}

// checkSnapshotInput reads the input description and cursor of an old
// snapshot and checks them against the config and the files now.
func (s *fileSource) checkSnapshotInput(r *snapReader) (fileCursor, error) {
	format := fileFormat(r.int("format", int(fileCSV)+1))
	header := r.int("header flag", 2) == 1
	delim := rune(r.int("delimiter", utf8.MaxRune+1))
	n := r.int("file count", 1<<24)
	type file struct {
		name string
		size int64
	}
	var files []file
	for i := 0; i < n && r.err == nil; i++ {
		files = append(files, file{r.string("file name"), r.int64("file size")})
	}
	c := fileCursor{
		file:   r.int("cursor file", n+1),
		offset: r.int64("cursor offset"),
		line:   r.int("cursor line", math.MaxInt),
		index:  r.uvarint("cursor index"),
	}
	if r.err != nil {
		return c, r.err
	}
	p := s.plan
	if format != p.format {
		return c, fmt.Errorf("format differs: the checkpoint read %s, the config has %s", format, p.format)
	}
	if p.format == fileCSV && header != p.header {
		return c, fmt.Errorf("csv header differs: the checkpoint read with header %v, the config has %v", header, p.header)
	}
	if p.format == fileCSV && delim != p.delim {
		return c, fmt.Errorf("csv delimiter differs: the checkpoint read %q, the config has %q", delim, p.delim)
	}
	for i := 0; i < max(len(files), len(s.files)); i++ {
		switch {
		case i >= len(s.files):
			return c, fmt.Errorf("file list differs: the checkpoint read %d files, %q now matches %d (%s is gone)", len(files), p.pattern, len(s.files), files[i].name)
		case i >= len(files):
			return c, fmt.Errorf("file list differs: the checkpoint read %d files, %q now matches %d (%s is new)", len(files), p.pattern, len(s.files), s.files[i].name)
		case files[i].name != s.files[i].name:
			return c, fmt.Errorf("file list differs: file %d was %s in the checkpoint, it is %s now", i+1, files[i].name, s.files[i].name)
		case files[i].size != s.files[i].size:
			return c, fmt.Errorf("file %s changed since the checkpoint: %d bytes then, %d now", s.files[i].path, files[i].size, s.files[i].size)
		}
	}
	if c.file < len(files) && c.offset > files[c.file].size || c.file == len(files) && c.offset != 0 {
		return c, fmt.Errorf("corrupt snapshot: cursor offset %d beyond the end of file %d", c.offset, c.file+1)
	}
	return c, nil
}

func (f fileFormat) String() string {
	switch f {
	case fileJSONL:
		return "jsonl"
	case fileCSV:
		return "csv"
	}
	return "lines"
}

// recordReader reads the records of one file. scan finds the next record
// (cheaply: a subtask scans every record but decodes only its own), decode
// turns the current one into key, value and timestamp. Returned slices are
// valid until the next scan. pos is the position after the last record
// scanned: the byte offset where scanning continues and the number of lines
// before it.
type recordReader interface {
	scan() (bool, error)
	decode() (key, value []byte, ts int64, err error)
	pos() (offset int64, line int)
	close() error
}

const (
	readBufferSize = 256 << 10
	utf8BOM        = "\xef\xbb\xbf"
)

// newRecordReader opens path and positions it at offset, which is 0 or a
// pos of an earlier reader of the same file (line is that pos's line).
func newRecordReader(p *fileSourcePlan, path string, offset int64, line int) (recordReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var r recordReader
	switch p.format {
	case fileLines, fileJSONL:
		if offset == 0 {
			// Drop a byte order mark before the scanner sees it, so that a
			// file holding only one is empty (no empty record).
			var bom [len(utf8BOM)]byte
			if n, _ := io.ReadFull(f, bom[:]); n == len(bom) && string(bom[:]) == utf8BOM {
				offset = int64(n)
			}
		}
		if _, err = f.Seek(offset, io.SeekStart); err != nil {
			err = fmt.Errorf("seek %s to offset %d: %w", path, offset, err)
		}
		r = newLineReader(p, path, f, offset, line)
	case fileCSV:
		r, err = newCSVReader(p, path, f, offset, line)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// lineReader reads the lines and jsonl formats.
type lineReader struct {
	plan *fileSourcePlan
	path string
	f    *os.File
	sc   *bufio.Scanner
	line int
	// consumed is the file offset after the bytes the scanner's split
	// function has consumed, which after a scan is the end of the
	// record's line.
	consumed int64
	rec      []byte
	kbuf     []byte
	// Scratch of jsonMembers: the timestamp and key member names and
	// their raw values.
	names [2]string
	raws  [][]byte
}

// newLineReader reads f, which is positioned at offset, the start of line
// line+1.
func newLineReader(p *fileSourcePlan, path string, f *os.File, offset int64, line int) *lineReader {
	r := &lineReader{plan: p, path: path, f: f, line: line, consumed: offset}
	sc := bufio.NewScanner(f)
	// +1: the limit counts the newline, and a line may be as long as a
	// record value can be.
	sc.Buffer(make([]byte, 0, readBufferSize), abi.MaxFieldLen+1)
	sc.Split(r.split)
	r.sc = sc
	return r
}

// split is bufio.ScanLines, counting the bytes it consumes: a Scanner does
// not tell where in the input a token ended.
func (r *lineReader) split(data []byte, atEOF bool) (int, []byte, error) {
	advance, token, err := bufio.ScanLines(data, atEOF)
	r.consumed += int64(advance)
	return advance, token, err
}

func (r *lineReader) scan() (bool, error) {
	for r.sc.Scan() {
		r.line++
		r.rec = r.sc.Bytes() // ScanLines already dropped "\n" or "\r\n"
		if r.plan.format == fileJSONL && len(bytes.TrimSpace(r.rec)) == 0 {
			continue // blank lines separate nothing in JSONL; skip them
		}
		return true, nil
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return false, fmt.Errorf("%s:%d: line longer than %d bytes", r.path, r.line+1, abi.MaxFieldLen)
		}
		return false, fmt.Errorf("read %s: %w", r.path, err)
	}
	return false, nil
}

func (r *lineReader) pos() (int64, int) { return r.consumed, r.line }

func (r *lineReader) decode() ([]byte, []byte, int64, error) {
	if r.plan.format == fileLines {
		return nil, r.rec, abi.NoTimestamp, nil
	}
	if !validJSONObject(r.rec) {
		return nil, nil, 0, fmt.Errorf("%s:%d: not a JSON object: %s", r.path, r.line, excerpt(r.rec))
	}
	if r.plan.tsField == "" && r.plan.keyField == "" {
		return nil, r.rec, abi.NoTimestamp, nil
	}
	// One pass finds both members.
	r.names[0], r.names[1] = r.plan.tsField, r.plan.keyField
	raws := r.raws[:0]
	raws, found := jsonMembers(r.rec, r.names[:], raws)
	r.raws = raws
	ts := abi.NoTimestamp
	if r.plan.tsField != "" {
		if !found[0] {
			return nil, nil, 0, fmt.Errorf("%s:%d: missing timestamp field %q", r.path, r.line, r.plan.tsField)
		}
		var err error
		if ts, err = parseJSONTimestamp(raws[0], r.plan.tsFormat); err != nil {
			return nil, nil, 0, fmt.Errorf("%s:%d: timestamp field %q: %w", r.path, r.line, r.plan.tsField, err)
		}
	}
	var key []byte
	if r.plan.keyField != "" {
		if !found[1] {
			return nil, nil, 0, fmt.Errorf("%s:%d: missing key field %q", r.path, r.line, r.plan.keyField)
		}
		var err error
		if r.kbuf, err = appendJSONKey(r.kbuf[:0], raws[1]); err != nil {
			return nil, nil, 0, fmt.Errorf("%s:%d: key field %q: %w", r.path, r.line, r.plan.keyField, err)
		}
		key = r.kbuf
	}
	return key, r.rec, ts, nil
}

func (r *lineReader) close() error { return r.f.Close() }

// csvReader reads the csv format; each record becomes a JSON object whose
// member names are the header's (or f0, f1, ... without a header) and whose
// values are the fields as strings.
type csvReader struct {
	plan   *fileSourcePlan
	path   string
	f      *os.File
	r      *csv.Reader
	names  [][]byte // per column: `"name":` JSON-encoded once
	tsCol  int      // -1: none
	keyCol int      // -1: none
	rec    []string
	line   int
	vbuf   []byte
	kbuf   []byte

	// Positions: r started reading at file offset start (after a BOM at
	// the file's start) and line lineBase+1; endLine is the last line of
	// what r has consumed before any record (the header), for pos.
	start    int64
	lineBase int
	endLine  int
}

// newCSVReader reads f from offset (0 or a pos of an earlier reader, line
// being its line). Resuming mid-file still needs the columns, which the
// file's first row fixes, so it reads that row first and then seeks.
func newCSVReader(p *fileSourcePlan, path string, f *os.File, offset int64, line int) (*csvReader, error) {
	br := bufio.NewReaderSize(f, readBufferSize)
	r := &csvReader{plan: p, path: path, f: f, tsCol: -1, keyCol: -1}
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
		r.start = int64(len(utf8BOM))
	}
	r.r = r.newReader(br)
	if p.header {
		header, err := r.r.Read()
		if err == io.EOF {
			return r, nil // an empty file has no header and no records
		}
		if err != nil {
			return nil, r.parseError(err)
		}
		seen := map[string]bool{}
		for i, h := range header {
			if h == "" {
				return nil, fmt.Errorf("%s:1: header column %d is empty", path, i+1)
			}
			if seen[h] {
				return nil, fmt.Errorf("%s:1: header column %q appears twice", path, h)
			}
			seen[h] = true
		}
		if err := r.setColumns(header); err != nil {
			return nil, fmt.Errorf("%s:1: %w", path, err)
		}
		r.endLine = r.lastLine(header)
	}
	if offset == 0 {
		return r, nil
	}
	if !p.header {
		// The first row fixes the column names (scan does it on the row).
		if ok, err := r.scan(); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s: empty, but the checkpoint read up to offset %d", path, offset)
			}
			return nil, err
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek %s to the checkpointed offset %d: %w", path, offset, err)
	}
	br.Reset(f)
	r.r = r.newReader(br)
	r.start, r.lineBase, r.endLine, r.rec = offset, line, line, nil
	return r, nil
}

func (r *csvReader) newReader(br *bufio.Reader) *csv.Reader {
	cr := csv.NewReader(br)
	cr.Comma = r.plan.delim
	cr.FieldsPerRecord = -1 // checked here, to word the error
	cr.ReuseRecord = true
	return cr
}

// lastLine is the absolute line number on which rec, the row just read,
// ends: csv reports where a field starts, and a quoted last field may span
// lines (each of its line breaks is one "\n" in the field, as the reader
// turns "\r\n" into "\n").
func (r *csvReader) lastLine(rec []string) int {
	last := len(rec) - 1
	line, _ := r.r.FieldPos(last)
	return r.lineBase + line + strings.Count(rec[last], "\n")
}

func (r *csvReader) pos() (int64, int) {
	line := r.endLine
	if r.rec != nil {
		line = r.lastLine(r.rec)
	}
	return r.start + r.r.InputOffset(), line
}

// setColumns fixes the column names and finds the timestamp and key columns.
func (r *csvReader) setColumns(names []string) error {
	for _, n := range names {
		b := appendJSONString(nil, []byte(n))
		r.names = append(r.names, append(b, ':'))
	}
	find := func(what, name string) (int, error) {
		if name == "" {
			return -1, nil
		}
		for i, n := range names {
			if n == name {
				return i, nil
			}
		}
		if r.plan.header {
			return 0, fmt.Errorf("%s field %q is not a header column", what, name)
		}
		return 0, fmt.Errorf("%s field %q is not a column (without a header columns are named f0 to f%d)", what, name, len(names)-1)
	}
	var err error
	if r.tsCol, err = find("timestamp", r.plan.tsField); err != nil {
		return err
	}
	r.keyCol, err = find("key", r.plan.keyField)
	return err
}

func (r *csvReader) parseError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: csv: %v", r.path, r.lineBase+pe.Line, pe.Err)
	}
	return fmt.Errorf("read %s: %w", r.path, err)
}

func (r *csvReader) scan() (bool, error) {
	rec, err := r.r.Read()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, r.parseError(err)
	}
	r.rec = rec
	r.line, _ = r.r.FieldPos(0)
	r.line += r.lineBase
	if r.names == nil {
		// No header: the first record fixes the columns.
		names := make([]string, len(rec))
		for i := range names {
			names[i] = "f" + strconv.Itoa(i)
		}
		if err := r.setColumns(names); err != nil {
			return false, fmt.Errorf("%s:%d: %w", r.path, r.line, err)
		}
	}
	if len(rec) != len(r.names) {
		what := "the header has"
		if !r.plan.header {
			what = "the first record has"
		}
		return false, fmt.Errorf("%s:%d: %d fields, but %s %d", r.path, r.line, len(rec), what, len(r.names))
	}
	return true, nil
}

func (r *csvReader) decode() ([]byte, []byte, int64, error) {
	v := append(r.vbuf[:0], '{')
	for i, field := range r.rec {
		if i > 0 {
			v = append(v, ',')
		}
		v = append(v, r.names[i]...)
		v = appendJSONStringFromString(v, field)
	}
	r.vbuf = append(v, '}')
	ts := abi.NoTimestamp
	if r.tsCol >= 0 {
		var err error
		if ts, err = parseTimestamp(r.rec[r.tsCol], r.plan.tsFormat); err != nil {
			return nil, nil, 0, fmt.Errorf("%s:%d: timestamp field %q: %w", r.path, r.line, r.plan.tsField, err)
		}
	}
	var key []byte
	if r.keyCol >= 0 {
		r.kbuf = append(r.kbuf[:0], r.rec[r.keyCol]...)
		key = r.kbuf
	}
	return key, r.vbuf, ts, nil
}

func (r *csvReader) close() error { return r.f.Close() }

// appendJSONStringFromString is appendJSONString for a string, without
// converting it to a fresh []byte per call.
func appendJSONStringFromString(dst []byte, s string) []byte {
	// Fast path: nothing to escape.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendJSONString(dst, []byte(s))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// excerpt quotes the start of a malformed line for an error message.
func excerpt(b []byte) string {
	const n = 60
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}

// parseJSONTimestamp parses a timestamp member's raw JSON value: a number,
// or a string holding a number or an RFC 3339 time.
func parseJSONTimestamp(raw []byte, f timestampFormat) (int64, error) {
	text := raw
	switch {
	case raw[0] == '"':
		var err error
		if text, err = unquoteJSON(raw); err != nil {
			return 0, err
		}
	case string(raw) == "null":
		return 0, errors.New("is null")
	case f == tsRFC3339:
		return 0, fmt.Errorf("want a string holding an RFC 3339 time, got %s", excerpt(raw))
	}
	// string(text) does not escape into parseTimestampText, so short
	// texts are converted on the stack.
	if ts, ok := parseTimestampText(string(text), f); ok {
		return ts, nil
	}
	return 0, timestampError(string(text), f)
}

// parseTimestamp converts text to epoch milliseconds.
func parseTimestamp(s string, f timestampFormat) (int64, error) {
	if ts, ok := parseTimestampText(s, f); ok {
		return ts, nil
	}
	return 0, timestampError(s, f)
}

func timestampError(s string, f timestampFormat) error {
	return fmt.Errorf("cannot parse %q as %v", s, f)
}

func parseTimestampText(s string, f timestampFormat) (int64, bool) {
	switch f {
	case tsMillis:
		ms, err := strconv.ParseInt(s, 10, 64)
		return ms, err == nil
	case tsSeconds:
		return parseDecimalSeconds(s)
	case tsRFC3339:
		t, err := time.Parse(time.RFC3339Nano, s)
		return t.UnixMilli(), err == nil
	}
	return 0, false
}

// parseDecimalSeconds parses [-]digits[.digits] seconds to milliseconds,
// truncating below the millisecond, exactly (no float rounding).
func parseDecimalSeconds(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || strings.ContainsAny(whole, "+-") {
		return 0, false
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > (1<<63-1)/1000 {
		return 0, false
	}
	ms := sec * 1000
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if i < 3 {
			ms += int64(c-'0') * [3]int64{100, 10, 1}[i]
		}
	}
	if neg {
		ms = -ms
	}
	return ms, true
}

// appendJSONKey appends a key member's value: a string's text, or the raw
// JSON of any other value (numbers, booleans, objects), which is stable for
// the same input.
func appendJSONKey(dst, raw []byte) ([]byte, error) {
	if string(raw) == "null" {
		return nil, errors.New("is null")
	}
	if raw[0] != '"' {
		return append(dst, raw...), nil
	}
	s, err := unquoteJSON(raw)
	if err != nil {
		return nil, err
	}
	return append(dst, s...), nil
}

// unquoteJSON returns the text of a valid JSON string literal; it slices
// raw unless there are escapes to resolve.
func unquoteJSON(raw []byte) ([]byte, error) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// jsonMembers finds the top-level members names[i] ("" = not wanted) of
// obj, which must be a valid JSON object (validJSONObject), in one pass. It
// returns their raw values in raws (reusing its storage) and whether each
// was found. Like encoding/json, the last of duplicate members wins.
func jsonMembers(obj []byte, names []string, raws [][]byte) ([][]byte, [2]bool) {
	var found [2]bool
	raws = append(raws[:0], nil, nil)
	i := skipSpace(obj, 0) + 1 // past '{'
	for {
		i = skipSpace(obj, i)
		switch obj[i] {
		case '}':
			return raws, found
		case ',':
			i = skipSpace(obj, i+1)
		}
		kEnd := jsonStringEnd(obj, i)
		k := obj[i:kEnd]
		i = skipSpace(obj, kEnd) + 1 // past ':'
		i = skipSpace(obj, i)
		vEnd := jsonValueEnd(obj, i)
		for n, name := range names {
			if name != "" && jsonKeyEquals(k, name) {
				raws[n], found[n] = obj[i:vEnd], true
			}
		}
		i = vEnd
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonStringEnd returns the index after the string literal starting at i.
func jsonStringEnd(b []byte, i int) int {
	for j := i + 1; ; j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
}

// jsonValueEnd returns the index after the value starting at i.
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; {
			switch b[j] {
			case '"':
				j = jsonStringEnd(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
	}
	// A number or literal: up to the next delimiter.
	j := i
	for ; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return j
}

// jsonKeyEquals compares a member name literal with name.
func jsonKeyEquals(lit []byte, name string) bool {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == name
	}
	var s string
	return json.Unmarshal(lit, &s) == nil && s == name
}
