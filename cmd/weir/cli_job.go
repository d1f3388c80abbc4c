package main

// job, savepoint and operation commands.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/runtime"
)

func jobCommands() []command {
	opFlags := func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.wait, "wait", false, "wait until the operation is done and print its result (exit 1 if it fails)")
		fs.StringVar(&o.requestID, "request-id", "", "the operation's request id: running the command again with it returns the same operation (default: a random one)")
	}
	return []command{
		{verb: "deploy", args: "SPEC.yaml", summary: "deploy a job from a spec naming modules by reference (wc: wordcount@2)", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.fromSP, "from-savepoint", "", "start from this savepoint (its id)")
				fs.BoolVar(&o.allowNRS, "allow-non-restored-state", false, "with --from-savepoint: drop state the job cannot map instead of failing")
			}, run: cmdJobDeploy},
		{verb: "list", summary: "list jobs, newest first", maxArgs: 0, run: cmdJobList},
		{verb: "get", args: "ID", summary: "show a job: state, graph, per-vertex metrics and watermarks, checkpoints", minArgs: 1, maxArgs: 1, run: cmdJobGet},
		{verb: "cancel", args: "ID", summary: "cancel a job (no savepoint)", minArgs: 1, maxArgs: 1, run: cmdJobCancel},
		{verb: "stop", args: "ID", summary: "stop a job with a savepoint", minArgs: 1, maxArgs: 1, flags: opFlags, run: cmdJobStop},
		{verb: "savepoint", args: "ID", summary: "take a savepoint of a running job", minArgs: 1, maxArgs: 1, flags: opFlags, run: cmdJobSavepoint},
		{verb: "upgrade", args: "ID ALIAS=REF...", summary: "move modules to other versions through a savepoint (rolled back if the new version fails to start)", minArgs: 2, maxArgs: -1,
			flags: func(fs *flag.FlagSet, o *opts) {
				opFlags(fs, o)
				fs.BoolVar(&o.allowNRS, "allow-non-restored-state", false, "drop state the new version cannot map instead of failing")
			}, run: cmdJobUpgrade},
		{verb: "rescale", args: "ID [NODE=N...]", summary: "change parallelism through a savepoint: the job default (--parallelism) and/or per node", minArgs: 1, maxArgs: -1,
			flags: func(fs *flag.FlagSet, o *opts) {
				opFlags(fs, o)
				fs.IntVar(&o.parallel, "parallelism", 0, "the new default parallelism of the job's nodes")
			}, run: cmdJobRescale},
		{verb: "exceptions", args: "ID", summary: "a job's failures, newest first", minArgs: 1, maxArgs: 1, run: cmdJobExceptions},
		{verb: "logs", args: "ID", summary: "a job's log: guest output and system events (-o json: one object per line)", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.follow, "follow", false, "keep printing new lines until the job is over or the command is interrupted")
				fs.BoolVar(&o.follow, "f", false, "same as --follow")
			}, run: cmdJobLogs},
		{verb: "checkpoints", args: "ID", summary: "a job's recent checkpoints and savepoints, newest first", minArgs: 1, maxArgs: 1, run: cmdJobCheckpoints},
		{verb: "delete", args: "ID", summary: "forget a job that is over, with its checkpoints (savepoints stay)", minArgs: 1, maxArgs: 1, run: cmdJobDelete},
	}
}

func savepointCommands() []command {
	return []command{
		{verb: "list", summary: "list savepoints, newest first", maxArgs: 0,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.job, "job", "", "only this job's")
			}, run: cmdSavepointList},
		{verb: "get", args: "ID", summary: "show a savepoint", minArgs: 1, maxArgs: 1, run: cmdSavepointGet},
		{verb: "delete", args: "ID", summary: "delete a savepoint and its files", minArgs: 1, maxArgs: 1, run: cmdSavepointDelete},
	}
}

func operationCommands() []command {
	return []command{
		{verb: "get", args: "ID", summary: "show an operation's progress", minArgs: 1, maxArgs: 1, run: cmdOperationGet},
		{verb: "wait", args: "ID", summary: "wait until an operation is done (exit 1 if it failed)", minArgs: 1, maxArgs: 1, run: cmdOperationWait},
	}
}

// terminal reports whether a job state is final.
func terminal(s jobs.State) bool {
	switch s {
	case jobs.StateFinished, jobs.StateFailed, jobs.StateCanceled, jobs.StateStopped:
		return true
	}
	return false
}

func moduleRefs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return orDash(strings.Join(parts, ", "))
}

func printJob(w io.Writer, j jobs.Job) {
	fmt.Fprintf(w, "job\t%s\n", j.ID)
	fmt.Fprintf(w, "name\t%s\n", j.Name)
	fmt.Fprintf(w, "state\t%s\n", j.State)
	if j.Error != "" {
		fmt.Fprintf(w, "error\t%s\n", oneLine(j.Error))
	}
	fmt.Fprintf(w, "modules\t%s\n", moduleRefs(j.Modules))
	fmt.Fprintf(w, "slots\t%d\n", j.Slots)
	fmt.Fprintf(w, "generation\t%d\n", j.Generation)
	fmt.Fprintf(w, "restarts\t%d\n", j.Restarts)
	if j.Savepoint != "" {
		fmt.Fprintf(w, "from savepoint\t%s\n", j.Savepoint)
	}
	if j.StoppedWith != "" {
		fmt.Fprintf(w, "stopped with savepoint\t%s\n", j.StoppedWith)
	}
	fmt.Fprintf(w, "created\t%s\n", formatTime(&j.CreatedAt))
	fmt.Fprintf(w, "updated\t%s\n", formatTime(&j.UpdatedAt))
	if j.FinishedAt != nil {
		fmt.Fprintf(w, "finished\t%s\n", formatTime(j.FinishedAt))
	}
}

func cmdJobDeploy(ctx context.Context, r *runCtx) error {
	spec, err := readInput(r.args[0])
	if err != nil {
		return err
	}
	if r.o.allowNRS && r.o.fromSP == "" {
		return usagef("--allow-non-restored-state needs --from-savepoint")
	}
	j, err := r.api.Deploy(ctx, spec, r.o.fromSP, r.o.allowNRS)
	if err != nil {
		return err
	}
	return r.emit(j, func(w io.Writer) { printJob(w, j) })
}

func cmdJobList(ctx context.Context, r *runCtx) error {
	js, err := r.api.Jobs(ctx)
	if err != nil {
		return err
	}
	return r.emit(js, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tSTATE\tMODULES\tSLOTS\tGEN\tRESTARTS\tCREATED")
		for _, j := range js {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", j.ID, j.Name, j.State, moduleRefs(j.Modules), j.Slots, j.Generation, j.Restarts, formatTime(&j.CreatedAt))
		}
	})
}

func cmdJobGet(ctx context.Context, r *runCtx) error {
	d, err := r.api.Job(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(d, func(w io.Writer) { printDetail(w, d) })
}

// printDetail writes a job with its graph (one node a line, with its
// inputs), the metrics of its vertices and its checkpoints.
func printDetail(w io.Writer, d jobs.Detail) {
	printJob(w, d.Job)
	fmt.Fprintln(w, "\ngraph:")
	for _, n := range d.Graph {
		what := n.Kind + " " + n.Connector
		if n.Kind == "operator" {
			what = "operator " + n.Module + "/" + n.Operator
		}
		inputs := make([]string, len(n.Inputs))
		for i, in := range n.Inputs {
			e := in.From
			if in.Output != "" && in.Output != runtime.OutputMain {
				e += "." + in.Output
			}
			if in.Partition != "" {
				e += " (" + in.Partition + ")"
			}
			inputs[i] = e
		}
		fmt.Fprintf(w, "  %s\t%s\tparallelism %d", n.ID, what, n.Parallelism)
		if len(inputs) > 0 {
			fmt.Fprintf(w, "\t<- %s", strings.Join(inputs, ", "))
		}
		fmt.Fprintln(w)
	}
	if len(d.Vertices) > 0 {
		fmt.Fprintln(w, "\nVERTEX\tTASKS\tRECORDS IN\tRECORDS OUT\tIN/S\tOUT/S\tBACKPRESSURE\tWATERMARK")
		for _, v := range d.Vertices {
			tasks := strconv.Itoa(v.Parallelism)
			if v.Finished > 0 {
				tasks = fmt.Sprintf("%d (%d done)", v.Parallelism, v.Finished)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f%%\t%s\n", strings.Join(v.Nodes, "+"), tasks, v.RecordsIn, v.RecordsOut,
				v.RecordsInPerSecond, v.RecordsOutPerSecond, 100*v.BackpressureRatio, vertexWatermark(v.Watermark))
		}
	} else if !terminal(d.State) {
		fmt.Fprintln(w, "\n(no task metrics yet)")
	}
	c := d.Checkpoints
	fmt.Fprintf(w, "\ncheckpoints\t%d completed, %d aborted\n", c.Completed, c.Aborted)
	if l := c.Latest; l != nil {
		fmt.Fprintf(w, "latest\t#%d at %s: %s (%s new), took %s, alignment %.1fms\n", l.ID, formatTime(&l.TriggeredAt),
			formatSize(l.Size), formatSize(l.Uploaded), l.Duration.Round(time.Millisecond), l.AlignmentMs)
	}
}

// vertexWatermark writes a vertex's watermark (epoch ms) as `weir run`
// does: "-" before any, "end" for the final one of a bounded input.
func vertexWatermark(wm *int64) string {
	if wm == nil {
		return "-"
	}
	return formatWatermark(*wm)
}

func cmdJobCancel(ctx context.Context, r *runCtx) error {
	j, err := r.api.Cancel(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(j, func(w io.Writer) { printJob(w, j) })
}

func cmdJobStop(ctx context.Context, r *runCtx) error {
	return r.operation(ctx, func(rid string) (jobs.Operation, error) { return r.api.Stop(ctx, r.args[0], rid) })
}

func cmdJobSavepoint(ctx context.Context, r *runCtx) error {
	return r.operation(ctx, func(rid string) (jobs.Operation, error) { return r.api.Savepoint(ctx, r.args[0], rid) })
}

// assignments parses NAME=VALUE arguments.
func assignments(args []string, what string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" || v == "" {
			return nil, usagef("%q is not %s", a, what)
		}
		if _, dup := out[k]; dup {
			return nil, usagef("%s is given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

func cmdJobUpgrade(ctx context.Context, r *runCtx) error {
	mods, err := assignments(r.args[1:], "ALIAS=REF (wc=wordcount@3)")
	if err != nil {
		return err
	}
	req := jobs.UpgradeRequest{Modules: mods, AllowNonRestoredState: r.o.allowNRS}
	return r.operation(ctx, func(rid string) (jobs.Operation, error) { return r.api.Upgrade(ctx, r.args[0], rid, req) })
}

func cmdJobRescale(ctx context.Context, r *runCtx) error {
	pairs, err := assignments(r.args[1:], "NODE=N (count=4)")
	if err != nil {
		return err
	}
	req := jobs.RescaleRequest{Parallelism: r.o.parallel}
	if r.o.parallel < 0 {
		return usagef("--parallelism %d: must be positive", r.o.parallel)
	}
	for node, v := range pairs {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return usagef("%s=%s: the parallelism must be a positive integer", node, v)
		}
		if req.Nodes == nil {
			req.Nodes = map[string]int{}
		}
		req.Nodes[node] = n
	}
	if req.Parallelism == 0 && len(req.Nodes) == 0 {
		return usagef("give --parallelism N and/or NODE=N")
	}
	return r.operation(ctx, func(rid string) (jobs.Operation, error) { return r.api.Rescale(ctx, r.args[0], rid, req) })
}

// operation starts a long operation with the command's request id (a
// random one by default, so that the client's retries of this command are
// idempotent) and prints it, or with --wait its outcome.
func (r *runCtx) operation(ctx context.Context, start func(requestID string) (jobs.Operation, error)) error {
	rid := r.o.requestID
	if rid == "" {
		rid = client.NewRequestID()
	}
	op, err := start(rid)
	if err != nil {
		return err
	}
	if !r.o.wait {
		return r.emit(op, func(w io.Writer) {
			printOperation(w, op)
			fmt.Fprintf(w, "\nfollow it with: weir operation wait %s\n", op.ID)
		})
	}
	return r.waitOperation(ctx, op.ID)
}

// waitOperation waits for an operation and prints it; a failed one is
// printed and returned as the error.
func (r *runCtx) waitOperation(ctx context.Context, id string) error {
	op, err := r.api.WaitOperation(ctx, id)
	var oe *client.OperationError
	switch {
	case errors.As(err, &oe):
		if perr := r.emit(op, func(w io.Writer) { printOperation(w, op) }); perr != nil {
			return perr
		}
		return err
	case errors.Is(err, client.ErrOperationPending):
		return &interruptedError{fmt.Errorf("stopped waiting; operation %s goes on (weir operation get %s)", id, id)}
	case err != nil:
		return err
	}
	return r.emit(op, func(w io.Writer) { printOperation(w, op) })
}

// opResult is what operations give as result: a savepoint (savepoint,
// stop) or the savepoint an upgrade or rescale went through.
type opResult struct {
	ID         string `json:"id"`
	Checkpoint int64  `json:"checkpoint"`
	Size       int64  `json:"size"`
	Path       string `json:"path"`
	Savepoint  string `json:"savepoint"`
}

func printOperation(w io.Writer, op jobs.Operation) {
	state := "in progress"
	switch {
	case op.Done && op.Error != "" && op.RolledBack:
		state = "failed, rolled back to the previous version"
	case op.Done && op.Error != "":
		state = "failed"
	case op.Done:
		state = "done"
	}
	fmt.Fprintf(w, "operation\t%s\n", op.ID)
	fmt.Fprintf(w, "kind\t%s\n", op.Kind)
	fmt.Fprintf(w, "job\t%s\n", op.Job)
	fmt.Fprintf(w, "state\t%s\n", state)
	if op.Error != "" {
		fmt.Fprintf(w, "error\t%s\n", oneLine(op.Error))
	}
	var res opResult
	if len(op.Result) > 0 && json.Unmarshal(op.Result, &res) == nil {
		switch {
		case res.ID != "":
			fmt.Fprintf(w, "savepoint\t%s (checkpoint %d, %s)\n", res.ID, res.Checkpoint, formatSize(res.Size))
			fmt.Fprintf(w, "path\t%s\n", res.Path)
		case res.Savepoint != "":
			fmt.Fprintf(w, "through savepoint\t%s\n", res.Savepoint)
		}
	}
	if op.RequestID != "" {
		fmt.Fprintf(w, "request id\t%s\n", op.RequestID)
	}
	fmt.Fprintf(w, "created\t%s\n", formatTime(&op.CreatedAt))
	fmt.Fprintf(w, "updated\t%s\n", formatTime(&op.UpdatedAt))
}

func cmdJobExceptions(ctx context.Context, r *runCtx) error {
	ex, err := r.api.Exceptions(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(ex, func(w io.Writer) {
		fmt.Fprintln(w, "TIME\tGENERATION\tATTEMPT\tERROR")
		for _, e := range ex {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", formatTime(&e.Time), e.Generation, e.Attempt, oneLine(e.Error))
		}
	})
}

// logPageSize is how many lines one logs request asks for.
const logPageSize = 500

// cmdJobLogs prints a job's log, page after page. With --follow it then
// polls for new lines; it ends when the job is over and its last lines are
// printed, or when the command is interrupted (exit 0: following has no
// other end).
func cmdJobLogs(ctx context.Context, r *runCtx) error {
	id := r.args[0]
	var after uint64
	over := false
	for {
		lines, next, err := r.api.Logs(ctx, id, after, logPageSize)
		if err != nil {
			if r.o.follow && ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, l := range lines {
			if err := r.printLogLine(l); err != nil {
				return err
			}
		}
		if len(lines) > 0 {
			after = lines[len(lines)-1].Seq
		}
		if next != 0 {
			after = max(after, next)
			continue
		}
		if !r.o.follow || over {
			return nil
		}
		d, err := r.api.Job(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if terminal(d.State) {
			over = true // one more read: the lines of the job's end
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock.After(r.poll):
		}
	}
}

func (r *runCtx) printLogLine(l jobs.LogLine) error {
	if r.o.output == "json" {
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		_, err = r.stdout.Write(append(b, '\n'))
		return err
	}
	src := l.Source
	if l.Task != "" {
		src += "[" + l.Task + "]"
	}
	_, err := fmt.Fprintf(r.stdout, "%s %-5s %s %s\n", l.Time.UTC().Format("2006-01-02T15:04:05.000Z"), l.Level, src, l.Message)
	return err
}

func cmdJobCheckpoints(ctx context.Context, r *runCtx) error {
	h, err := r.api.Checkpoints(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(h, func(w io.Writer) { checkpointTable(w, h) })
}

func checkpointTable(w io.Writer, h []checkpoint.Stats) {
	fmt.Fprintln(w, "ID\tKIND\tSTATUS\tTRIGGERED\tDURATION\tSIZE\tNEW\tALIGNMENT\tACKED\tERROR")
	for _, s := range h {
		kind := "checkpoint"
		if s.Savepoint {
			kind = "savepoint"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%v\t%s\t%s\t%.1fms\t%d/%d\t%s\n", s.ID, kind, s.Status, formatTime(&s.TriggeredAt),
			s.Duration.Round(time.Millisecond), formatSize(s.Size), formatSize(s.Uploaded), s.AlignmentMs, s.Acked, s.Tasks, orDash(oneLine(s.Err)))
	}
}

func cmdJobDelete(ctx context.Context, r *runCtx) error {
	if err := r.api.DeleteJob(ctx, r.args[0]); err != nil {
		return err
	}
	return r.done("job %s deleted", r.args[0])
}

func savepointTable(w io.Writer, sps []jobs.Savepoint) {
	fmt.Fprintln(w, "ID\tJOB\tCHECKPOINT\tSIZE\tCREATED\tPATH")
	for _, sp := range sps {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", sp.ID, sp.Job, sp.Checkpoint, formatSize(sp.Size), formatTime(&sp.CreatedAt), sp.Dir)
	}
}

func cmdSavepointList(ctx context.Context, r *runCtx) error {
	sps, err := r.api.Savepoints(ctx, r.o.job)
	if err != nil {
		return err
	}
	return r.emit(sps, func(w io.Writer) { savepointTable(w, sps) })
}

func cmdSavepointGet(ctx context.Context, r *runCtx) error {
	sp, err := r.api.GetSavepoint(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(sp, func(w io.Writer) { savepointTable(w, []jobs.Savepoint{sp}) })
}

func cmdSavepointDelete(ctx context.Context, r *runCtx) error {
	if err := r.api.DeleteSavepoint(ctx, r.args[0]); err != nil {
		return err
	}
	return r.done("savepoint %s deleted", r.args[0])
}

func cmdOperationGet(ctx context.Context, r *runCtx) error {
	op, err := r.api.Operation(ctx, r.args[0])
	if err != nil {
		return err
	}
	return r.emit(op, func(w io.Writer) { printOperation(w, op) })
}

func cmdOperationWait(ctx context.Context, r *runCtx) error {
	return r.waitOperation(ctx, r.args[0])
}
