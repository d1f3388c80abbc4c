package connectors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

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
		dir := resolvePath(baseDir, cfg.Path)
		return func() runtime.Sink { return &fileSink{dir: dir, format: format} }, nil
	}
}

// PartFileName is the name of subtask i's output file in a file sink's
// directory.
func PartFileName(subtask int) string { return "part-" + strconv.Itoa(subtask) }

// fileSink writes the records of one subtask to its part file, one line per
// record in arrival order.
//
// The part file is the unit a later two-phase commit will turn into a
// transaction: on a checkpoint barrier the sink will flush, sync and close
// the current part as pending (".part-<i>-<checkpoint>.pending"), on the
// checkpoint's completion rename it to its final name, and on restore
// commit or delete leftovers. Everything that touches the file goes through
// partFile for that reason.
type fileSink struct {
	dir    string
	format outputFormat

	part *partFile
	dec  abi.Decoder
	ev   abi.Event
}

// Open creates the directory if missing and truncates the subtask's part
// file: one run's output is the directory's content.
func (s *fileSink) Open(_ context.Context, info runtime.TaskInfo) error {
	subtask, _, err := checkTask(info)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("file sink: create directory: %w", err)
	}
	s.part, err = createPartFile(filepath.Join(s.dir, PartFileName(subtask)))
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	return nil
}

// Write formats the batch's records into the part file's buffer.
func (s *fileSink) Write(_ context.Context, batch []byte) error {
	if s.part == nil {
		return errors.New("file sink: Write before Open")
	}
	s.dec.Reset(batch)
	for s.dec.More() {
		if err := nextRecord(&s.dec, &s.ev); err != nil {
			return fmt.Errorf("file sink %s: %w", s.part.path, err)
		}
		s.part.buf = appendRecordLine(s.part.buf, s.format, s.ev.Key, s.ev.Value, s.ev.Timestamp)
		if len(s.part.buf) >= fileSinkBufferSize {
			if err := s.part.flush(); err != nil {
				return fmt.Errorf("file sink: %w", err)
			}
		}
	}
	return nil
}

// Finish flushes and syncs the part file: a finished bounded job's output is
// durable.
func (s *fileSink) Finish(context.Context) error {
	if s.part == nil {
		return nil
	}
	if err := s.part.flush(); err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	if err := s.part.f.Sync(); err != nil {
		return fmt.Errorf("file sink: sync %s: %w", s.part.path, err)
	}
	return nil
}

// Close flushes what is buffered and closes the part file.
func (s *fileSink) Close() error {
	if s.part == nil {
		return nil
	}
	err := s.part.close()
	s.part = nil
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	return nil
}

// partFile is an output file with an append buffer. The sink formats
// straight into buf (no intermediate copy, unlike bufio.Writer) and writes
// it out once it holds fileSinkBufferSize bytes. A record that overflows the
// capacity grows the buffer once (append doubles it); the grown buffer is
// then reused, so steady state allocates nothing.
type partFile struct {
	path string
	f    *os.File
	buf  []byte
}

func createPartFile(path string) (*partFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err // *PathError names the file
	}
	return &partFile{path: path, f: f, buf: make([]byte, 0, fileSinkBufferSize)}, nil
}

func (p *partFile) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	_, err := p.f.Write(p.buf)
	p.buf = p.buf[:0]
	if err != nil {
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	return nil
}

func (p *partFile) close() error {
	ferr := p.flush()
	cerr := p.f.Close()
	if ferr != nil {
		return ferr
	}
	if cerr != nil {
		return fmt.Errorf("close %s: %w", p.path, cerr)
	}
	return nil
}
