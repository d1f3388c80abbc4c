package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/tenants"
)

// jobRoutes are the job page, its live data for job.js, its actions, and
// the progress page of the long operations the actions start.
func (c *Console) jobRoutes() []route {
	return []route{
		{http.MethodGet, "/jobs/:id", jobPage},
		{http.MethodGet, "/jobs/:id/live", jobLive},
		{http.MethodPost, "/jobs/:id/savepoint", jobSavepoint},
		{http.MethodPost, "/jobs/:id/stop", jobStop},
		{http.MethodPost, "/jobs/:id/cancel", jobCancel},
		{http.MethodPost, "/jobs/:id/upgrade", jobUpgrade},
		{http.MethodPost, "/jobs/:id/rescale", jobRescale},
		{http.MethodGet, "/operations/:id", operationPage},
	}
}

// jobLogKeep is how many of a job's newest log lines the page shows (job.js
// keeps the same number as lines arrive).
const jobLogKeep = 200

// jobCanWrite says whether the signed-in role may change jobs. The API
// decides (a viewer's POST is refused there); the page only leaves out
// forms that could not succeed.
func jobCanWrite(me api.Me) bool {
	return me.Role == tenants.RoleOwner || me.Role == tenants.RoleDeveloper
}

// jobPage is GET /jobs/{id}.
func jobPage(r *request) error { return showJob(r, http.StatusOK, "", "") }

// showJob renders the job page. actionErr, when not empty, is why the
// action named by action (a form's name: "savepoint", "upgrade", ...)
// was refused; it is shown at that form, with status.
func showJob(r *request, status int, action, actionErr string) error {
	id := r.Param("id")
	ctx := r.Ctx()
	d, err := r.API.Job(ctx, id)
	if err != nil {
		return err
	}
	cps, err := r.API.Checkpoints(ctx, id)
	if err != nil {
		return fmt.Errorf("checkpoints of job %s: %w", id, err)
	}
	exc, err := r.API.Exceptions(ctx, id)
	if err != nil {
		return fmt.Errorf("exceptions of job %s: %w", id, err)
	}
	logs, after, err := jobLogTail(ctx, r.API, id, 0, jobLogKeep)
	if err != nil {
		return fmt.Errorf("logs of job %s: %w", id, err)
	}
	sps, err := r.API.Savepoints(ctx, id)
	if err != nil {
		return fmt.Errorf("savepoints of job %s: %w", id, err)
	}
	write := jobCanWrite(r.sess.me)
	data := map[string]any{
		"Job":         d.Job,
		"Modules":     jobModules(d.Modules),
		"Graph":       buildJobGraph(d.Graph, d.Vertices),
		"Vertices":    jobVertexRows(d.Vertices),
		"Chart":       buildJobChart(d.Graph, d.Vertices),
		"Summary":     d.Checkpoints,
		"Latest":      jobLatestCheckpoint(d.Checkpoints.Latest),
		"Checkpoints": jobCheckpointRows(cps),
		"Exceptions":  exc,
		"Logs":        jobLogRows(logs),
		"LogAfter":    after,
		"Savepoints":  sps,
		"CanWrite":    write,
		"Running":     d.State == jobs.StateRunning,
		"Over":        jobOver(d.State),
		"Action":      action,
		"ActionError": actionErr,
	}
	if write && d.State == jobs.StateRunning {
		choices, err := jobUpgradeChoices(ctx, r.API, d.Modules)
		if err != nil {
			return fmt.Errorf("module versions for the upgrade form: %w", err)
		}
		data["Upgrade"] = choices
		data["Nodes"] = d.Graph
		// Each form carries its own request id: a form sent twice (a
		// double click, a resubmitted page) returns the same operation
		// instead of starting a second one.
		data["RequestID"] = map[string]string{
			"savepoint": randomID(), "stop": randomID(), "upgrade": randomID(), "rescale": randomID(),
		}
	}
	return r.render(status, "job", data)
}

// jobOver says whether a job is over (nothing to cancel or operate).
func jobOver(s jobs.State) bool {
	switch s {
	case jobs.StateFinished, jobs.StateFailed, jobs.StateCanceled, jobs.StateStopped:
		return true
	}
	return false
}

// jobModule is one module of a job: its alias in the spec and the version
// it runs (name@version).
type jobModule struct{ Alias, Ref string }

func jobModules(m map[string]string) []jobModule {
	out := make([]jobModule, 0, len(m))
	for a, ref := range m {
		out = append(out, jobModule{a, ref})
	}
	slices.SortFunc(out, func(a, b jobModule) int { return strings.Compare(a.Alias, b.Alias) })
	return out
}

// jobUpgradeChoice is one alias's select in the upgrade form.
type jobUpgradeChoice struct {
	Alias, Current string
	Options        []string // every version of every module of the tenant, name@version
}

// jobUpgradeChoices lists, for every alias of the job, the tenant's module
// versions it could move to.
func jobUpgradeChoices(ctx context.Context, c *client.Client, current map[string]string) ([]jobUpgradeChoice, error) {
	names, err := c.Modules(ctx)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, n := range names {
		m, err := c.Module(ctx, n.Name)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", n.Name, err)
		}
		for _, v := range m.Versions {
			refs = append(refs, v.Name+"@"+strconv.Itoa(v.Version))
		}
	}
	var out []jobUpgradeChoice
	for _, m := range jobModules(current) {
		opts := slices.Clone(refs)
		if !slices.Contains(opts, m.Ref) {
			opts = append(opts, m.Ref) // the running version was deleted meanwhile
		}
		out = append(out, jobUpgradeChoice{Alias: m.Alias, Current: m.Ref, Options: opts})
	}
	return out, nil
}

// jobLogTail reads a job's log lines after seq after, paging to the newest,
// and keeps the newest keep. It returns them and the sequence number to
// continue from (the newest line's, or after when there is none).
func jobLogTail(ctx context.Context, c *client.Client, job string, after uint64, keep int) ([]jobs.LogLine, uint64, error) {
	var tail []jobs.LogLine
	// The ring the server keeps is bounded, so this ends; the cap only
	// guards against a server whose page tokens do not advance.
	for range 10_000 {
		lines, next, err := c.Logs(ctx, job, after, 500)
		if err != nil {
			return nil, 0, err
		}
		tail = append(tail, lines...)
		if len(tail) > keep {
			tail = slices.Clone(tail[len(tail)-keep:])
		}
		if len(lines) > 0 {
			after = max(after, lines[len(lines)-1].Seq)
		}
		if next == 0 || next <= after && len(lines) == 0 {
			break
		}
		after = next
	}
	return tail, after, nil
}

// jobLogRow is a log line as the page shows it.
type jobLogRow struct {
	jobs.LogLine
	Clock string `json:"clock"` // time of day, UTC, to the millisecond
	Stamp string `json:"stamp"` // RFC 3339, for <time datetime>
}

func jobLogRows(lines []jobs.LogLine) []jobLogRow {
	out := make([]jobLogRow, len(lines))
	for i, l := range lines {
		out[i] = jobLogRow{LogLine: l, Clock: l.Time.UTC().Format("15:04:05.000"), Stamp: l.Time.UTC().Format(time.RFC3339Nano)}
	}
	return out
}

// jobCheckpointRow is a checkpoint as the history table shows it.
type jobCheckpointRow struct {
	ID                      int64
	Kind, Status, Triggered string
	Duration, Alignment     string
	Size, Uploaded          int64
	Acked, Tasks            int
	Error                   string
}

func jobCheckpointRows(h []checkpoint.Stats) []jobCheckpointRow {
	out := make([]jobCheckpointRow, len(h))
	for i, s := range h {
		kind := "checkpoint"
		if s.Savepoint {
			kind = "savepoint"
		}
		dur := "–"
		if s.Status != "in progress" {
			dur = jobDuration(float64(s.Duration) / float64(time.Millisecond))
		}
		out[i] = jobCheckpointRow{
			ID: s.ID, Kind: kind, Status: s.Status, Triggered: s.TriggeredAt.UTC().Format("2006-01-02 15:04:05 UTC"),
			Duration: dur, Alignment: jobMillis(s.AlignmentMs), Size: s.Size, Uploaded: s.Uploaded,
			Acked: s.Acked, Tasks: s.Tasks, Error: s.Err,
		}
	}
	return out
}

// jobLive is GET /jobs/{id}/live: what job.js redraws the page with, as
// JSON. ?after=SEQ asks for the log lines after SEQ (the page gives the
// first SEQ). An error answers {"error": ...} with the API's status,
// except an ended session, which goes to sign-in like every page.
func jobLive(r *request) error {
	id := r.Param("id")
	ctx := r.Ctx()
	var after uint64
	if s := r.QueryParam("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return r.JSON(http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("after=%q is not a log sequence number", s)})
		}
		after = n
	}
	d, err := r.API.Job(ctx, id)
	var logs []jobs.LogLine
	if err == nil {
		logs, after, err = jobLogTail(ctx, r.API, id, after, jobLogKeep)
	}
	if err != nil {
		return jsonFailure(r, err)
	}
	r.Response().Header().Set("Cache-Control", "no-store")
	return r.JSON(http.StatusOK, jobLiveView{
		State: d.State, Error: d.Error, Generation: d.Generation, Restarts: d.Restarts,
		Vertices: jobLiveVertices(d.Graph, d.Vertices), Checkpoints: d.Checkpoints,
		Logs: jobLogRows(logs), After: after, Time: r.c.cfg.Now().UTC(),
	})
}

// jsonFailure answers a script's request that failed with {"error": ...}
// and the API's status (500 for anything else, logged), so that the
// script can say what went wrong and decide whether to try again. A key
// no longer valid ends the session as on every page: the script then
// lands on the sign-in page and reloads to get there.
func jsonFailure(r *request, err error) error {
	var pe *client.ProblemError
	if errors.As(err, &pe) {
		if pe.Status == http.StatusUnauthorized {
			return err
		}
		return r.JSON(pe.Status, map[string]string{"error": pe.Error()})
	}
	r.c.cfg.Logger.Error("console live data failed", "path", r.Request().URL.Path, "err", err)
	return r.JSON(http.StatusInternalServerError, map[string]string{"error": err.Error()})
}

// jobLiveView is the JSON of GET /jobs/{id}/live.
type jobLiveView struct {
	State       jobs.State             `json:"state"`
	Error       string                 `json:"error,omitempty"`
	Generation  int                    `json:"generation"`
	Restarts    int                    `json:"restarts"`
	Vertices    []jobLiveVertex        `json:"vertices"`
	Checkpoints jobs.CheckpointSummary `json:"checkpoints"`
	Logs        []jobLogRow            `json:"logs"`
	// After is the sequence number to ask for lines after next time.
	After uint64    `json:"after"`
	Time  time.Time `json:"time"`
}

// jobLiveVertex is a vertex with its key (its nodes joined by "+", as the
// page's rows and chart series are named) and its throughput (the rate the
// chart draws).
type jobLiveVertex struct {
	jobs.Vertex
	Key        string  `json:"key"`
	Throughput float64 `json:"throughput"`
}

func jobLiveVertices(graph []jobs.GraphNode, vs []jobs.Vertex) []jobLiveVertex {
	out := make([]jobLiveVertex, len(vs))
	for i, v := range vs {
		out[i] = jobLiveVertex{Vertex: v, Key: jobVertexKey(v), Throughput: jobThroughput(graph, v)}
	}
	return out
}

func jobVertexKey(v jobs.Vertex) string { return strings.Join(v.Nodes, "+") }

// jobThroughput is the rate a vertex's line in the chart follows: what its
// sources produce for a chain that starts with a source, else what it
// takes in (a sink chain emits nothing).
func jobThroughput(graph []jobs.GraphNode, v jobs.Vertex) float64 {
	if len(v.Nodes) > 0 {
		for _, n := range graph {
			if n.ID == v.Nodes[0] && n.Kind == "source" {
				return v.RecordsOutPerSecond
			}
		}
	}
	return v.RecordsInPerSecond
}

// jobAction answers a refused action: a problem the user can act on (the
// job is not running, no slots, a bad version) is shown at the form on
// the job page; a missing job or an ended session is the usual error page.
func jobAction(r *request, action string, err error) error {
	var pe *client.ProblemError
	if errors.As(err, &pe) && pe.Status != http.StatusNotFound && pe.Status != http.StatusUnauthorized {
		msg := pe.Detail
		if msg == "" || len(pe.Errors) > 0 {
			msg = pe.Error()
		}
		return showJob(r, pe.Status, action, msg)
	}
	return err
}

// toOperationPage sends the browser to a started operation's progress page.
func toOperationPage(r *request, op jobs.Operation) error {
	return r.redirect("/operations/" + url.PathEscape(op.ID))
}

// jobSavepoint is POST /jobs/{id}/savepoint.
func jobSavepoint(r *request) error {
	op, err := r.API.Savepoint(r.Ctx(), r.Param("id"), r.FormValue("request_id"))
	if err != nil {
		return jobAction(r, "savepoint", err)
	}
	return toOperationPage(r, op)
}

// jobConfirmed says whether a dangerous form was confirmed: by the
// confirmation page's button, or by job.js after weir.js's dialog. A form
// sent without scripts renders the confirmation page instead; question
// is its title, with %s for the job's name and id.
func jobConfirmed(r *request, action, question, text, button string) (bool, error) {
	if r.FormValue("confirm") == "yes" {
		return true, nil
	}
	d, err := r.API.Job(r.Ctx(), r.Param("id")) // a job the key cannot see is 404 here already
	if err != nil {
		return false, err
	}
	return false, r.render(http.StatusOK, "job_confirm", map[string]any{
		"JobID": d.ID, "Title": fmt.Sprintf(question, d.Name+" ("+d.ID+")"), "Text": text, "Button": button,
		"Action": "/jobs/" + url.PathEscape(d.ID) + "/" + action, "RequestID": r.FormValue("request_id"),
	})
}

// jobStop is POST /jobs/{id}/stop: stop with a savepoint, confirmed first.
func jobStop(r *request) error {
	ok, err := jobConfirmed(r, "stop", "Stop %s with a savepoint?",
		"The job takes a savepoint and stops. You can deploy it again from the savepoint later.", "Stop with savepoint")
	if !ok {
		return err
	}
	op, err := r.API.Stop(r.Ctx(), r.Param("id"), r.FormValue("request_id"))
	if err != nil {
		return jobAction(r, "stop", err)
	}
	return toOperationPage(r, op)
}

// jobCancel is POST /jobs/{id}/cancel, confirmed first. Canceling is
// synchronous: the answer comes once the tasks stopped.
func jobCancel(r *request) error {
	ok, err := jobConfirmed(r, "cancel", "Cancel %s?",
		"The job stops now, without a savepoint: records in flight and state since the last checkpoint are lost.", "Cancel the job")
	if !ok {
		return err
	}
	j, err := r.API.Cancel(r.Ctx(), r.Param("id"))
	if err != nil {
		return jobAction(r, "cancel", err)
	}
	return r.redirect("/jobs/" + url.PathEscape(j.ID) + "?flash=" + url.QueryEscape("Job "+j.ID+" is "+string(j.State)+"."))
}

// jobUpgrade is POST /jobs/{id}/upgrade: fields module.<alias> (a
// name@version) for the aliases to move, allow_non_restored_state.
func jobUpgrade(r *request) error {
	d, err := r.API.Job(r.Ctx(), r.Param("id"))
	if err != nil {
		return err
	}
	req := jobs.UpgradeRequest{Modules: map[string]string{}, AllowNonRestoredState: r.FormValue("allow_non_restored_state") != ""}
	for alias, cur := range d.Modules {
		if v := strings.TrimSpace(r.FormValue("module." + alias)); v != "" && v != cur {
			req.Modules[alias] = v
		}
	}
	if len(req.Modules) == 0 {
		return showJob(r, http.StatusBadRequest, "upgrade", "Pick a module version other than the one the job runs.")
	}
	op, err := r.API.Upgrade(r.Ctx(), d.ID, r.FormValue("request_id"), req)
	if err != nil {
		return jobAction(r, "upgrade", err)
	}
	return toOperationPage(r, op)
}

// jobRescale is POST /jobs/{id}/rescale: parallelism (the job's default)
// and node.<id> (one node's), each optional but not all.
func jobRescale(r *request) error {
	d, err := r.API.Job(r.Ctx(), r.Param("id"))
	if err != nil {
		return err
	}
	var req jobs.RescaleRequest
	parse := func(name, what string) (int, error) {
		s := strings.TrimSpace(r.FormValue(name))
		if s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s: %q is not a whole number of at least 1", what, s)
		}
		return n, nil
	}
	if req.Parallelism, err = parse("parallelism", "Parallelism"); err != nil {
		return showJob(r, http.StatusBadRequest, "rescale", err.Error())
	}
	for _, n := range d.Graph {
		p, err := parse("node."+n.ID, "Parallelism of "+n.ID)
		if err != nil {
			return showJob(r, http.StatusBadRequest, "rescale", err.Error())
		}
		if p > 0 {
			if req.Nodes == nil {
				req.Nodes = map[string]int{}
			}
			req.Nodes[n.ID] = p
		}
	}
	if req.Parallelism == 0 && len(req.Nodes) == 0 {
		return showJob(r, http.StatusBadRequest, "rescale", "Give the job's parallelism, or a node's.")
	}
	op, err := r.API.Rescale(r.Ctx(), d.ID, r.FormValue("request_id"), req)
	if err != nil {
		return jobAction(r, "rescale", err)
	}
	return toOperationPage(r, op)
}

// operationPage is GET /operations/{id}: a long operation's progress, or
// with ?format=json the operation itself (what job.js polls).
func operationPage(r *request) error {
	op, err := r.API.Operation(r.Ctx(), r.Param("id"))
	if r.QueryParam("format") == "json" {
		if err != nil {
			return jsonFailure(r, err)
		}
		r.Response().Header().Set("Cache-Control", "no-store")
		return r.JSON(http.StatusOK, op)
	}
	if err != nil {
		return err
	}
	return r.render(http.StatusOK, "job_operation", map[string]any{
		"Op": op, "Result": opResultFields(op.Result), "Title": operationTitle(op),
	})
}

// operationTitle names an operation for people.
func operationTitle(op jobs.Operation) string {
	what := map[string]string{
		jobs.OpSavepoint: "Savepoint", jobs.OpStop: "Stop with savepoint", jobs.OpUpgrade: "Upgrade", jobs.OpRescale: "Rescale",
	}[op.Kind]
	if what == "" {
		what = "Operation " + op.Kind
	}
	return what + " of job " + op.Job
}

// opResultField is one member of an operation's result.
type opResultField struct{ Name, Value string }

// opResultFields lists an operation's result (a savepoint, or which
// savepoint an upgrade went through) member by member, in name order.
func opResultFields(raw json.RawMessage) []opResultField {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make([]opResultField, 0, len(m))
	for k, v := range m {
		s := fmt.Sprint(v)
		if f, ok := v.(float64); ok {
			s = strconv.FormatFloat(f, 'f', -1, 64)
			if k == "size" {
				s = fmt.Sprintf("%s (%s bytes)", jobBytes(int64(f)), jobCount(int64(f)))
			}
		}
		out = append(out, opResultField{k, s})
	}
	slices.SortFunc(out, func(a, b opResultField) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Formatting. job.js formats the values it redraws the same way
// (fmtRate, fmtInt, fmtPct, fmtWatermark, fmtMillis there).

// jobRate formats a rate of records.
func jobRate(f float64) string {
	switch {
	case f >= 1e6:
		return fmt.Sprintf("%.2f M/s", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.1f k/s", f/1e3)
	}
	return fmt.Sprintf("%.0f/s", f)
}

// jobCount writes n with thousands separators: 1234567 is "1,234,567".
func jobCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func jobPercent(r float64) string { return fmt.Sprintf("%.0f%%", r*100) }

// jobWatermark formats an event-time watermark (epoch ms) as UTC, "–" before
// the first.
func jobWatermark(w *int64) string {
	if w == nil {
		return "–"
	}
	return time.UnixMilli(*w).UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// jobWatermarkClock is a watermark's time of day, for the graph's nodes.
func jobWatermarkClock(w *int64) string {
	if w == nil {
		return "–"
	}
	return time.UnixMilli(*w).UTC().Format("15:04:05")
}

func jobMillis(ms float64) string { return fmt.Sprintf("%.1f ms", ms) }

// jobDuration formats how long a checkpoint took: whole milliseconds
// below a second, else seconds to the millisecond.
func jobDuration(ms float64) string {
	if ms < 999.5 {
		return fmt.Sprintf("%.0fms", ms)
	}
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", ms/1000), "0"), ".")
	return s + "s"
}

// jobLatestCheckpoint describes a job's newest completed checkpoint.
func jobLatestCheckpoint(s *checkpoint.Stats) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("#%d, %s, took %s", s.ID, jobBytes(s.Size), jobDuration(float64(s.Duration)/float64(time.Millisecond)))
}

// jobBytes is a size in binary units.
func jobBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// jobVertexRow is a vertex in the metrics table.
type jobVertexRow struct {
	Key, Name                      string
	Parallelism, Finished          int
	RecordsIn, RecordsOut          string
	InRate, OutRate, BP, WM, Align string
}

func jobVertexRows(vs []jobs.Vertex) []jobVertexRow {
	out := make([]jobVertexRow, len(vs))
	for i, v := range vs {
		out[i] = jobVertexRow{
			Key: jobVertexKey(v), Name: strings.Join(v.Nodes, " → "), Parallelism: v.Parallelism, Finished: v.Finished,
			RecordsIn: jobCount(v.RecordsIn), RecordsOut: jobCount(v.RecordsOut),
			InRate: jobRate(v.RecordsInPerSecond), OutRate: jobRate(v.RecordsOutPerSecond),
			BP: jobPercent(v.BackpressureRatio), WM: jobWatermark(v.Watermark), Align: jobMillis(v.AlignmentMs),
		}
	}
	return out
}

// The job graph.

// Sizes of the graph's drawing, in SVG user units (px at scale 1).
const (
	graphNodeW  = 180
	graphNodeH  = 76
	graphLaneH  = 16  // a long edge's passage through a column
	graphColGap = 110 // room for the edge labels
	graphRowGap = 28
	graphPad    = 16
	// graphPortStep is the distance between the ends of edges at one
	// side of a node.
	graphPortStep = 16.0
	// graphLabelH is the height of an edge label (partitioning over
	// rate), graphLabelLine one more line (the side output's name).
	graphLabelH, graphLabelLine = 36, 14
)

// GraphLayout is where the nodes and edges of a job graph go in a drawing:
// nodes in columns (layers) left to right by their longest path from a
// source, stacked within a column; edges as SVG paths from the right side
// of their producer to the left side of their consumer, their ends spread
// along a node's side. An edge that skips columns passes each through a
// lane of its own, so it never crosses a node. Within a column, nodes are
// ordered by where their inputs come from (one barycenter sweep), which
// keeps most edges from crossing.
type GraphLayout struct {
	Width, Height int
	Nodes         []NodePlace // in the graph's order
	Edges         []EdgePlace // by consumer in the graph's order, then input order
}

// NodePlace is one node's box.
type NodePlace struct {
	ID string
	// Layer is the node's column: 0 for sources, else one more than its
	// furthest input's. Row is its place in the column from the top,
	// counting nodes only.
	Layer, Row int
	// X, Y is the top-left corner.
	X, Y, W, H int
}

// EdgePlace is one input edge.
type EdgePlace struct {
	From, To string
	// Input is the edge's index among To's inputs.
	Input             int
	Partition, Output string
	// Path is SVG path data.
	Path string
	// LabelX, LabelY is where the edge's label is centred: the middle of
	// its first stretch between columns (the one leaving the producer),
	// moved down as far as needed not to overlap another label there.
	LabelX, LabelY int
}

// LayoutGraph lays a job graph out. It is a pure function of the nodes:
// the same graph is always drawn the same way. Inputs naming no node are
// left out; a cycle (which a valid spec cannot have) is drawn with the
// edge that closes it going backwards.
func LayoutGraph(nodes []jobs.GraphNode) GraphLayout {
	n := len(nodes)
	if n == 0 {
		return GraphLayout{}
	}
	index := make(map[string]int, n)
	for i, nd := range nodes {
		if _, dup := index[nd.ID]; !dup {
			index[nd.ID] = i
		}
	}

	// Layers: the longest path from a source, by a depth-first walk up the
	// inputs; an input still being walked closes a cycle and is ignored.
	layer := make([]int, n)
	state := make([]uint8, n) // 0 unseen, 1 on the walk, 2 done
	var walk func(i int)
	walk = func(i int) {
		state[i] = 1
		for _, in := range nodes[i].Inputs {
			j, ok := index[in.From]
			if !ok || state[j] == 1 {
				continue
			}
			if state[j] == 0 {
				walk(j)
			}
			layer[i] = max(layer[i], layer[j]+1)
		}
		state[i] = 2
	}
	layers := 0
	for i := range nodes {
		if state[i] == 0 {
			walk(i)
		}
		layers = max(layers, layer[i]+1)
	}

	type edge struct {
		from, to, input int
		in              jobs.GraphEdge
	}
	var edges []edge
	for to, nd := range nodes {
		for k, in := range nd.Inputs {
			if from, ok := index[in.From]; ok {
				edges = append(edges, edge{from, to, k, in})
			}
		}
	}

	// Columns hold nodes and the lanes of edges that skip them.
	type item struct {
		node  int // -1 for a lane
		edge  int // the lane's edge
		order int // tie-break: the graph's order, lanes after nodes
		h     int
		y     int // top
	}
	cols := make([][]*item, layers)
	for i := range nodes {
		cols[layer[i]] = append(cols[layer[i]], &item{node: i, edge: -1, order: i, h: graphNodeH})
	}
	lane := map[[2]int]*item{} // (edge, layer) -> its lane
	for e, ed := range edges {
		for l := layer[ed.from] + 1; l < layer[ed.to]; l++ {
			it := &item{node: -1, edge: e, order: n + e, h: graphLaneH}
			cols[l] = append(cols[l], it)
			lane[[2]int{e, l}] = it
		}
	}
	colHeight := func(c []*item) int {
		h := 0
		for _, it := range c {
			h += it.h
		}
		return h + graphRowGap*max(len(c)-1, 0)
	}
	tallest := 0
	for _, c := range cols {
		tallest = max(tallest, colHeight(c))
	}

	// Order each column by the mean height of what feeds it from the
	// column before (one left-to-right barycenter sweep), which keeps
	// edges short and mostly uncrossed; then stack it, centred.
	nodeItem := make([]*item, n)
	for _, c := range cols {
		for _, it := range c {
			if it.node >= 0 {
				nodeItem[it.node] = it
			}
		}
	}
	centre := func(it *item) float64 { return float64(it.y) + float64(it.h)/2 }
	// feeder is the item in column l-1 that edge e comes through.
	feeder := func(e, l int) *item {
		if it := lane[[2]int{e, l - 1}]; it != nil {
			return it
		}
		if layer[edges[e].from] == l-1 {
			return nodeItem[edges[e].from]
		}
		return nil
	}
	for l, c := range cols {
		if l > 0 {
			bary := make(map[*item]float64, len(c))
			for _, it := range c {
				sum, cnt := 0.0, 0
				if it.node < 0 {
					if f := feeder(it.edge, l); f != nil {
						sum, cnt = centre(f), 1
					}
				} else {
					for e, ed := range edges {
						if ed.to == it.node {
							if f := feeder(e, l); f != nil {
								sum += centre(f)
								cnt++
							}
						}
					}
				}
				if cnt > 0 {
					bary[it] = sum / float64(cnt)
				}
			}
			slices.SortStableFunc(c, func(a, b *item) int {
				return cmp.Or(cmp.Compare(bary[a], bary[b]), cmp.Compare(a.order, b.order))
			})
		}
		y := graphPad + (tallest-colHeight(c))/2
		for _, it := range c {
			it.y = y
			y += it.h + graphRowGap
		}
	}

	colX := func(l int) int { return graphPad + l*(graphNodeW+graphColGap) }
	g := GraphLayout{
		Width:  2*graphPad + layers*graphNodeW + (layers-1)*graphColGap,
		Height: 2*graphPad + tallest,
		Nodes:  make([]NodePlace, n),
	}
	for l, c := range cols {
		row := 0
		for _, it := range c {
			if it.node >= 0 {
				g.Nodes[it.node] = NodePlace{ID: nodes[it.node].ID, Layer: l, Row: row, X: colX(l), Y: it.y, W: graphNodeW, H: graphNodeH}
				row++
			}
		}
	}

	// Ports: the edges leaving a node leave from points spread down its
	// right side, in the order of where they go, and arrive likewise on
	// the left, so that fanning edges (and a main and a side output into
	// one consumer) stay apart.
	laneY := func(e, l int) int { return lane[[2]int{e, l}].y + graphLaneH/2 }
	centreY := func(i int) int { return g.Nodes[i].Y + g.Nodes[i].H/2 }
	nextY := func(e int) int { // where edge e heads first
		if ed := edges[e]; layer[ed.to]-layer[ed.from] > 1 {
			return laneY(e, layer[ed.from]+1)
		}
		return centreY(edges[e].to)
	}
	prevY := func(e int) int { // where edge e comes from last
		if ed := edges[e]; layer[ed.to]-layer[ed.from] > 1 {
			return laneY(e, layer[ed.to]-1)
		}
		return centreY(edges[e].from)
	}
	outs, ins := make([][]int, n), make([][]int, n)
	for e, ed := range edges {
		outs[ed.from] = append(outs[ed.from], e)
		ins[ed.to] = append(ins[ed.to], e)
	}
	outY, inY := make([]int, len(edges)), make([]int, len(edges))
	spread := func(list []int, towards func(int) int, centre int, dst []int) {
		slices.SortStableFunc(list, func(a, b int) int { return cmp.Compare(towards(a), towards(b)) })
		step := 0.0
		if len(list) > 1 {
			step = min(graphPortStep, float64(graphNodeH-24)/float64(len(list)-1))
		}
		for k, e := range list {
			dst[e] = centre + int(math.Round((float64(k)-float64(len(list)-1)/2)*step))
		}
	}
	for i := range nodes {
		spread(outs[i], nextY, centreY(i), outY)
		spread(ins[i], prevY, centreY(i), inY)
	}

	for e, ed := range edges {
		from, to := g.Nodes[ed.from], g.Nodes[ed.to]
		x0, y0 := from.X+from.W, outY[e]
		x1, y1 := to.X, inY[e]
		var p strings.Builder
		fmt.Fprintf(&p, "M%d %d", x0, y0)
		lx, ly := (x0+x1)/2, (y0+y1)/2
		if layer[ed.from] < layer[ed.to] {
			// Through the lanes: a curve across each gap, a straight line
			// through each skipped column.
			cx, cy := x0, y0
			for l := layer[ed.from] + 1; l < layer[ed.to]; l++ {
				y := laneY(e, l)
				if l == layer[ed.from]+1 {
					lx, ly = (cx+colX(l))/2, (cy+y)/2
				}
				graphCurve(&p, cx, cy, colX(l), y)
				cx, cy = colX(l)+graphNodeW, y
				fmt.Fprintf(&p, " L%d %d", cx, cy)
			}
			graphCurve(&p, cx, cy, x1, y1)
		} else {
			// Backwards (a cycle): out and round, visibly wrong way.
			fmt.Fprintf(&p, " C%d %d %d %d %d %d", x0+graphColGap/2, y0+graphNodeH, x1-graphColGap/2, y1+graphNodeH, x1, y1)
			ly += graphNodeH * 3 / 4
		}
		g.Edges = append(g.Edges, EdgePlace{
			From: nodes[ed.from].ID, To: nodes[ed.to].ID, Input: ed.input, Partition: ed.in.Partition, Output: ed.in.Output,
			Path: p.String(), LabelX: lx, LabelY: ly,
		})
	}

	// Labels in one gap share their x (the middle of every curve across a
	// gap is the middle of the gap): push apart those that would overlap,
	// downwards, and grow the drawing if one goes past its bottom.
	byX := map[int][]int{}
	for i, e := range g.Edges {
		byX[e.LabelX] = append(byX[e.LabelX], i)
	}
	for _, list := range byX {
		slices.SortStableFunc(list, func(a, b int) int { return cmp.Compare(g.Edges[a].LabelY, g.Edges[b].LabelY) })
		for k := 1; k < len(list); k++ {
			prev, cur := &g.Edges[list[k-1]], &g.Edges[list[k]]
			sep := graphLabelH
			if cur.Output != "" {
				sep += graphLabelLine // its side output's name sits above
			}
			cur.LabelY = max(cur.LabelY, prev.LabelY+sep)
		}
	}
	for _, e := range g.Edges {
		g.Height = max(g.Height, e.LabelY+graphLabelH/2+graphPad)
	}
	return g
}

// graphCurve appends a horizontal S-curve from (x0, y0) to (x1, y1): a cubic
// whose control points sit halfway, at the heights of the ends, so its
// middle is the midpoint of the ends.
func graphCurve(p *strings.Builder, x0, y0, x1, y1 int) {
	mx := (x0 + x1) / 2
	fmt.Fprintf(p, " C%d %d %d %d %d %d", mx, y0, mx, y1, x1, y1)
}

// jobGraphView is the job graph ready for the template.
type jobGraphView struct {
	Width, Height int
	Desc          string
	Nodes         []jobGraphNode
	Edges         []jobGraphEdge
}

type jobGraphNode struct {
	NodePlace
	Kind, Name, Detail, Par, BP, WM, Tip string
	Fill                                 string // by backpressure
	// The backpressure bar: its track's place and full length, the
	// bar's length and colour class.
	BarX, BarY, BarFull, BarW int
	BarClass                  string
	ParX                      int // where "×parallelism" ends
}

type jobGraphEdge struct {
	EdgePlace
	Label, Side, Rate string
	Chained           bool
	// Producer is the node whose vertex's output rate the edge shows.
	Producer string
}

// jobBarW is the backpressure bar's full length inside a node.
const jobBarW = graphNodeW - 20

// buildJobGraph lays the graph out and annotates it with the live
// metrics of the vertices (chains of nodes).
func buildJobGraph(graph []jobs.GraphNode, vs []jobs.Vertex) jobGraphView {
	lay := LayoutGraph(graph)
	vertexOf := map[string]*jobs.Vertex{}
	for i := range vs {
		for _, id := range vs[i].Nodes {
			vertexOf[id] = &vs[i]
		}
	}
	gv := jobGraphView{Width: lay.Width, Height: lay.Height}
	var desc []string
	for i, np := range lay.Nodes {
		nd := graph[i]
		detail := nd.Kind
		switch {
		case nd.Connector != "":
			detail += " · " + nd.Connector
		case nd.Operator != "":
			detail += " · " + nd.Module + "." + nd.Operator
		}
		nv := jobGraphNode{
			NodePlace: np, Kind: nd.Kind, Name: jobFit(nd.ID, 18), Detail: jobFit(detail, 25), Par: "×" + strconv.Itoa(nd.Parallelism),
			BP: "bp –", WM: "wm –", Fill: jobBPFill(0), BarClass: "bp-low",
			BarX: 10, BarY: np.H - 12, BarFull: jobBarW, ParX: np.W - 10,
		}
		tip := fmt.Sprintf("%s: %s, parallelism %d", nd.ID, detail, nd.Parallelism)
		if v := vertexOf[nd.ID]; v != nil {
			nv.BP = "bp " + jobPercent(v.BackpressureRatio)
			nv.WM = "wm " + jobWatermarkClock(v.Watermark)
			nv.Fill = jobBPFill(v.BackpressureRatio)
			nv.BarW = int(math.Round(jobBarW * jobClamp01(v.BackpressureRatio)))
			nv.BarClass = jobBPClass(v.BackpressureRatio)
			tip += fmt.Sprintf(", backpressure %s, watermark %s", jobPercent(v.BackpressureRatio), jobWatermark(v.Watermark))
		}
		nv.Tip = tip
		var ins []string
		for _, in := range nd.Inputs {
			s := in.From + " (" + jobPartitionLabel(in.Partition)
			if in.Output != "" {
				s += ", side output " + in.Output
			}
			ins = append(ins, s+")")
		}
		if len(ins) > 0 {
			tip += "; inputs from " + strings.Join(ins, ", ")
		}
		desc = append(desc, tip)
		gv.Nodes = append(gv.Nodes, nv)
	}
	for _, ep := range lay.Edges {
		ev := jobGraphEdge{EdgePlace: ep, Label: jobPartitionLabel(ep.Partition), Producer: ep.From, Rate: "–"}
		if ep.Output != "" {
			ev.Side = "side: " + jobFit(ep.Output, 16)
		}
		pv, cv := vertexOf[ep.From], vertexOf[ep.To]
		switch {
		case pv != nil && pv == cv:
			ev.Chained, ev.Rate = true, "chained"
		case pv != nil:
			ev.Rate = jobRate(pv.RecordsOutPerSecond)
		}
		gv.Edges = append(gv.Edges, ev)
	}
	gv.Desc = strings.Join(desc, ". ")
	return gv
}

// jobPartitionLabel names an edge's partitioning; "" is the engine's choice.
func jobPartitionLabel(p string) string {
	if p == "" {
		return "default"
	}
	return p
}

func jobClamp01(f float64) float64 { return min(max(f, 0), 1) }

// jobBPFill is a node's fill: from the page's soft grey at no backpressure to
// a light red at full.
func jobBPFill(r float64) string {
	r = jobClamp01(r)
	mix := func(a, b int) int { return a + int(math.Round(float64(b-a)*r)) }
	return fmt.Sprintf("#%02x%02x%02x", mix(0xf6, 0xf7), mix(0xf8, 0xb4), mix(0xfa, 0xac))
}

// jobBPClass colours the backpressure bar: the thresholds are Flink's (OK
// below 10 %, high above 50 %).
func jobBPClass(r float64) string {
	switch {
	case r > 0.5:
		return "bp-high"
	case r >= 0.1:
		return "bp-mid"
	}
	return "bp-low"
}

// jobFit shortens s to n characters with an ellipsis (node boxes are fixed
// width; the full text is in the node's tooltip and the description).
func jobFit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// The throughput chart.

// Sizes of the chart, in SVG user units; job.js draws with the same.
const (
	chartW, chartH                      = 720, 220
	chartLeft, chartRight               = 64, 12
	chartTop, chartBottom               = 12, 28
	chartSeriesColours                  = 8
	chartPlotW, chartPlotH              = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
	chartPlotRight, chartPlotBottomEdge = chartW - chartRight, chartH - chartBottom
)

// jobChartView is the throughput chart as the server draws it: the axes and
// the current value of each series (job.js adds the history).
type jobChartView struct {
	W, H, Left, Right, Top, Bottom int
	Ticks                          []jobChartTick
	Series                         []jobChartSeries
}

type jobChartTick struct {
	Y     int
	Label string
}

type jobChartSeries struct {
	Key, Name, Value string
	Colour           int
	X, Y             int // the current value's dot
}

func buildJobChart(graph []jobs.GraphNode, vs []jobs.Vertex) jobChartView {
	top := 0.0
	for _, v := range vs {
		top = max(top, jobThroughput(graph, v))
	}
	top = jobChartCeil(top)
	cv := jobChartView{W: chartW, H: chartH, Left: chartLeft, Right: chartPlotRight, Top: chartTop, Bottom: chartPlotBottomEdge}
	for i := range 3 {
		f := float64(i) / 2
		cv.Ticks = append(cv.Ticks, jobChartTick{Y: chartPlotBottomEdge - int(math.Round(f*chartPlotH)), Label: jobRate(top * f)})
	}
	for i, v := range vs {
		t := jobThroughput(graph, v)
		cv.Series = append(cv.Series, jobChartSeries{
			Key: jobVertexKey(v), Name: strings.Join(v.Nodes, " → "), Value: jobRate(t), Colour: i % chartSeriesColours,
			X: chartPlotRight, Y: chartPlotBottomEdge - int(math.Round(t/top*chartPlotH)),
		})
	}
	return cv
}

// jobChartCeil rounds a chart's top up to 1, 2 or 5 times a power of ten (at
// least 10 records/s, so an idle job's chart is not all noise).
func jobChartCeil(f float64) float64 {
	if f <= 10 {
		return 10
	}
	p := math.Pow(10, math.Floor(math.Log10(f)))
	for _, m := range []float64{1, 2, 5, 10} {
		if f <= m*p {
			return m * p
		}
	}
	return 10 * p
}
