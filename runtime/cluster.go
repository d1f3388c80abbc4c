package runtime

import (
	"context"
	"errors"

	"github.com/weirstream/weir/checkpoint"
)

// Cluster places the tasks of an attempt on workers. Options.Cluster nil
// runs every task in this process (one local TaskSet), which is also what a
// worker does with the tasks placed on it: the engine is the same in
// `weir run`, `weir standalone` and a cluster.
type Cluster interface {
	// Deploy places d's tasks and returns one TaskGroup per worker used.
	// Nothing is opened yet. An error that no retry can fix is Permanent.
	Deploy(ctx context.Context, d *Deployment) ([]TaskGroup, error)
}

// Deployment is an attempt to be placed.
type Deployment struct {
	Job     *Job
	Attempt int
	UID     string // unique per attempt
	Tasks   []TaskRef
	// Restore is where the attempt starts from (nil: afresh).
	Restore *RestoreRef
	// Acks receives the tasks' checkpoint acknowledgements (nil without
	// checkpoint storage).
	Acks Acker
}

// TaskRef names a task of the execution graph. Tasks with the same
// Subtask share a slot (Flink's default slot sharing): a job needs as many
// slots as its largest parallelism.
type TaskRef struct {
	Name    string
	Subtask int
}

// RestoreRef is a restore point as workers find it in the shared
// checkpoint storage.
type RestoreRef struct {
	Dir  string // folder holding _metadata
	Root string // prefix file paths may not leave
	// Native: a checkpoint of this job (its Pebble files may be reused).
	Native bool
	// AllowNonRestoredState drops state no operator registers.
	AllowNonRestoredState bool
}

// TaskGroup is the part of an attempt that runs on one worker.
type TaskGroup interface {
	// Open builds, restores and opens the group's tasks.
	Open(ctx context.Context) error
	// Run runs them until every one has ended, or the first fails.
	Run(ctx context.Context) error
	// Trigger queues barrier b at the group's source tasks.
	Trigger(b checkpoint.Barrier) error
	// Notify tells the tasks that checkpoint b completed or was aborted.
	Notify(b checkpoint.Barrier, completed bool)
	// Finish commits the sinks' final transactions (commit) and releases
	// the tasks. committed says whether a sink committed before an error.
	Finish(ctx context.Context, commit bool) (committed bool, err error)
	// Stats returns the metrics of the group's tasks.
	Stats() []TaskStats
}

// Acker receives what tasks report to the checkpoint coordinator; the
// job's checkpoint.Coordinator is one, a worker forwards them to it.
type Acker interface {
	Ack(ctx context.Context, id int64, ts checkpoint.TaskState)
	Decline(id int64, task string, err error)
	// Pause: a source reached its end, trigger no more checkpoints.
	Pause()
}

// Exchange connects the tasks of a TaskSet with tasks on other workers.
// Channels are numbered the same way in every process that builds the
// attempt's graph. Batches are the bytes of a local channel; the consumer
// returns one credit per buffer it has processed, and the producer sends
// only while it holds credits (it starts with the channel's buffers), so
// memory stays bounded across the network as within a process.
type Exchange interface {
	// Sender returns the sending end of channel ch, whose consumer is on
	// worker to. credit is called once per buffer the consumer returned.
	// send must not keep batch after it returns.
	Sender(to string, ch uint32, credit func()) (send func(batch []byte) error)
	// Receive registers the receiving end of channel ch, whose producer is
	// on worker from: deliver is called with every batch in order (it may
	// keep it); the returned function returns one credit to the producer.
	Receive(from string, ch uint32, deliver func(batch []byte)) (credit func())
}

// Permanent marks err as one no restart can fix.
func Permanent(err error) error { return permanent(err) }

// IsPermanent reports whether err is (or wraps) a Permanent error.
func IsPermanent(err error) bool { return isPermanent(err) }

// ErrNoSlots is wrapped by a Cluster's Deploy error when the workers lack
// the slots an attempt needs; restarts wait for slots to come back.
var ErrNoSlots = errors.New("not enough free slots")
