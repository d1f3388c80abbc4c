package sdk

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/weirstream/weir/abi"
)

// Operator is a user processing function. One Operator value serves one
// parallel instance of a job node; the SDK calls it from one goroutine (in
// Wasm there is only one), so it needs no locking.
//
// Process is called once per input record. An error fails the task (it is
// restarted from the last checkpoint); so does a panic.
//
// An Operator may also implement Opener, TimerHandler, WatermarkHandler,
// EndOfInputHandler and Closer.
type Operator interface {
	Process(ctx *Context, r Record) error
}

// Opener is implemented by operators that set up in Open: declare keyed
// state (NewValueState, NewMapState, NewListState; only possible here), read
// their configuration. Open is called once, before any other method.
type Opener interface {
	Open(ctx *Context) error
}

// TimerHandler is implemented by operators that register timers. OnTimer is
// called when a timer fires, with the timer's key as the current key (keyed
// state refers to it). Event-time timers fire in timestamp order when the
// watermark passes them; processing-time timers when the task's clock does.
type TimerHandler interface {
	OnTimer(ctx *Context, t Timer) error
}

// WatermarkHandler is implemented by operators that want to see the event-time
// watermark advance. OnWatermark is called after the timers the watermark
// fired; there is no current key.
type WatermarkHandler interface {
	OnWatermark(ctx *Context, watermark int64) error
}

// EndOfInputHandler is implemented by operators that act when an input ends
// (every upstream subtask finished). Bounded inputs deliver
// Watermark(MaxWatermark) first, so every event-time timer has fired by
// then. There is no current key.
type EndOfInputHandler interface {
	OnEndOfInput(ctx *Context, input int) error
}

// Closer is implemented by operators that release resources at the end of
// their life (after end of input, or when the task stops). Close may not
// emit records.
type Closer interface {
	Close(ctx *Context) error
}

// Record is an input record. Key and Value alias the input batch: they are
// valid only until Process returns; copy them to keep them.
type Record struct {
	Key       []byte
	Value     []byte
	Timestamp int64 // event time in epoch milliseconds, or NoTimestamp
	Input     int   // index of the input it arrived on, 0-based
}

// Timer is a fired timer. Key aliases the input batch (valid until OnTimer
// returns).
type Timer struct {
	Domain    TimeDomain
	Timestamp int64
	Key       []byte
}

// TimeDomain says which clock a timer follows.
type TimeDomain = abi.TimeDomain

// Time domains of timers.
const (
	EventTime      = abi.EventTime
	ProcessingTime = abi.ProcessingTime
)

// Special timestamps (epoch milliseconds).
const (
	// NoTimestamp is the timestamp of a record without event time.
	NoTimestamp = abi.NoTimestamp
	// MinWatermark is the watermark before any was received.
	MinWatermark = abi.MinWatermark
	// MaxWatermark is the last watermark of a bounded input.
	MaxWatermark = abi.MaxWatermark
)

// LogLevel is the severity of a log line.
type LogLevel = abi.LogLevel

// Log levels.
const (
	LevelDebug = abi.LogDebug
	LevelInfo  = abi.LogInfo
	LevelWarn  = abi.LogWarn
	LevelError = abi.LogError
)

// Option configures an exported operator.
type Option func(*exportOptions)

type exportOptions struct {
	flags uint32
}

// Keyed declares that the operator is keyed: its inputs are partitioned by
// key, and it may use keyed state and timers (which always refer to the
// current record's or timer's key).
func Keyed() Option {
	return func(o *exportOptions) { o.flags |= abi.FlagKeyed }
}

// Export makes an operator available under name. factory returns a new
// Operator for every instance the host creates. Call Export from an init
// function of the module:
//
//	func init() {
//		sdk.Export("count", func() sdk.Operator { return &Count{} }, sdk.Keyed())
//	}
//
// Export panics if name is empty, not UTF-8, or exported twice, or if
// factory is nil: these are programming errors, reported when the module is
// loaded.
func Export(name string, factory func() Operator, opts ...Option) {
	var o exportOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := exports.add(registration{info: abi.OperatorInfo{Name: name, Flags: o.flags}, factory: factory}); err != nil {
		panic(err)
	}
}

type registration struct {
	info    abi.OperatorInfo
	factory func() Operator
}

// exportTable is the set of operators a module exports.
type exportTable struct {
	mu  sync.Mutex
	ops []registration
}

// exports is the module's operator table. It is the one piece of
// package-level mutable state of the SDK, and cannot be otherwise: a Wasm
// module is one program whose exports are package functions, and operators
// are registered by init functions before any export is called. It is
// written only by Export (from init) and read afterwards.
var exports exportTable

func (t *exportTable) add(r registration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case r.info.Name == "":
		return fmt.Errorf("sdk: Export: empty operator name")
	case !utf8.ValidString(r.info.Name):
		return fmt.Errorf("sdk: Export: operator name %q is not UTF-8", r.info.Name)
	case r.factory == nil:
		return fmt.Errorf("sdk: Export(%q): nil factory", r.info.Name)
	case len(t.ops) >= abi.MaxOperators:
		return fmt.Errorf("sdk: Export(%q): more than %d operators", r.info.Name, abi.MaxOperators)
	}
	for _, o := range t.ops {
		if o.info.Name == r.info.Name {
			return fmt.Errorf("sdk: Export(%q): operator exported twice", r.info.Name)
		}
	}
	t.ops = append(t.ops, r)
	return nil
}

func (t *exportTable) lookup(name string) (registration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.ops {
		if o.info.Name == name {
			return o, true
		}
	}
	return registration{}, false
}

func (t *exportTable) infos() []abi.OperatorInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]abi.OperatorInfo, len(t.ops))
	for i, o := range t.ops {
		out[i] = o.info
	}
	return out
}
