package main

// The client commands: `weir tenant|key|module|job|savepoint|operation|me|quotas ...`
// talk to a Weir server's REST API (platform/client) at WEIR_URL with the
// API key in WEIR_TOKEN, and print tables (text/tabwriter) or, with -o json,
// the API's JSON.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/runtime/clock"
	"github.com/weirstream/weir/tenants"
)

// defaultServerURL is where the client looks without WEIR_URL: a local
// `weir standalone`.
const defaultServerURL = "http://127.0.0.1:8080"

// clientCommand runs one client command; args[0] is the group (tenant,
// key, module, job, savepoint, operation, me, quotas). It returns the exit
// code: 0 ok, 1 the server refused or failed, 2 a usage error, 130 an
// interrupted wait.
func clientCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv, clock: clock.Real{}, poll: time.Second}
	return c.run(ctx, args)
}

// cli is one invocation of a client command and what it runs with; tests
// set a faster poll.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	clock          clock.Clock
	// poll is the interval of `job logs --follow` and of --wait.
	poll time.Duration
	// httpClient is nil for the default one.
	httpClient *http.Client
}

// command is one `weir GROUP VERB` command.
type command struct {
	verb    string // "" for the groups that are one command (me, quotas)
	args    string // the positional arguments, for the usage line
	summary string
	// minArgs and maxArgs bound the positional arguments (maxArgs < 0:
	// any number).
	minArgs, maxArgs int
	// flags registers the command's own flags (nil: only -o).
	flags func(fs *flag.FlagSet, o *opts)
	run   func(ctx context.Context, r *runCtx) error
}

// group is a noun of the command line with its verbs.
type group struct {
	name, summary string
	commands      []command
}

// clientGroups is the command table.
func clientGroups() []group {
	return []group{
		{"me", "the caller's key, tenant and role", []command{{summary: "show the API key in WEIR_TOKEN: its id, tenant, role and expiry", run: cmdMe}}},
		{"quotas", "the caller's tenant's quotas and usage", []command{{summary: "show the quotas of the tenant of WEIR_TOKEN and what it uses", run: cmdQuotas}}},
		{"tenant", "tenants and their quotas (admin)", tenantCommands()},
		{"key", "API keys", keyCommands()},
		{"module", "Wasm modules and their versions", moduleCommands()},
		{"job", "jobs", jobCommands()},
		{"savepoint", "savepoints", savepointCommands()},
		{"operation", "long operations (savepoint, stop, upgrade, rescale)", operationCommands()},
	}
}

// opts are every command's flag values; each command registers the ones
// it takes.
type opts struct {
	output    string
	requestID string
	wait      bool
	follow    bool
	tenant    string
	name      string
	role      string
	expires   string
	out       string
	job       string
	fromSP    string
	allowNRS  bool
	parallel  int
	quotas    quotaFlags
}

// runCtx is what a command runs with.
type runCtx struct {
	*cli
	o    *opts
	fs   *flag.FlagSet
	args []string
	api  *client.Client
}

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// interruptedError is a wait ended by a signal: exit 130.
type interruptedError struct{ err error }

func (e *interruptedError) Error() string { return e.err.Error() }

// clientUsage lists the client commands, for the binary's usage text.
func clientUsage(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, g := range clientGroups() {
		verbs := make([]string, 0, len(g.commands))
		for _, cmd := range g.commands {
			if cmd.verb != "" {
				verbs = append(verbs, cmd.verb)
			}
		}
		if len(verbs) == 0 {
			fmt.Fprintf(tw, "  %s\t%s\n", g.name, g.summary)
			continue
		}
		fmt.Fprintf(tw, "  %s <command>\t%s: %s\n", g.name, g.summary, strings.Join(verbs, ", "))
	}
	tw.Flush()
	fmt.Fprintf(w, "client commands talk to WEIR_URL (default %s) with the API key in WEIR_TOKEN;\n`weir GROUP help` lists a group's commands.\n", defaultServerURL)
}

func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		clientUsage(c.stderr)
		return exitUsage
	}
	var g *group
	groups := clientGroups()
	for i := range groups {
		if groups[i].name == args[0] {
			g = &groups[i]
		}
	}
	if g == nil {
		fmt.Fprintf(c.stderr, "weir: unknown command %q\n", args[0])
		return exitUsage
	}
	rest := args[1:]
	var cmd *command
	if len(g.commands) == 1 && g.commands[0].verb == "" {
		cmd = &g.commands[0]
	} else {
		if len(rest) == 0 {
			c.groupUsage(c.stderr, g)
			return exitUsage
		}
		switch rest[0] {
		case "help", "-h", "--help":
			c.groupUsage(c.stdout, g)
			return exitOK
		}
		for i := range g.commands {
			if g.commands[i].verb == rest[0] {
				cmd = &g.commands[i]
			}
		}
		if cmd == nil {
			fmt.Fprintf(c.stderr, "weir %s: unknown command %q\n", g.name, rest[0])
			c.groupUsage(c.stderr, g)
			return exitUsage
		}
		rest = rest[1:]
	}
	return c.runCommand(ctx, g, cmd, rest)
}

func (c *cli) groupUsage(w io.Writer, g *group) {
	fmt.Fprintf(w, "usage: weir %s <command> [flags]   (%s)\n\ncommands:\n", g.name, g.summary)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, cmd := range g.commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", cmd.verb, cmd.args, cmd.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nEvery command takes -o table (default) or -o json. The server is WEIR_URL (default %s),\nthe API key WEIR_TOKEN. `weir %s <command> -h` lists a command's flags.\n", defaultServerURL, g.name)
}

func (c *cli) runCommand(ctx context.Context, g *group, cmd *command, args []string) int {
	full := strings.TrimSpace("weir " + g.name + " " + cmd.verb)
	o := &opts{}
	fs := newFlagSet(full, cmd, o, c.stderr)
	args, err := interleave(fs, args)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", full, err)
		fs.Usage()
		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	pos := fs.Args()
	if len(pos) < cmd.minArgs || cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs {
		fmt.Fprintf(c.stderr, "%s: wrong number of arguments (%d)\n", full, len(pos))
		fs.Usage()
		return exitUsage
	}
	if o.output != "table" && o.output != "json" {
		fmt.Fprintf(c.stderr, "%s: -o %q: use table or json\n", full, o.output)
		return exitUsage
	}
	api, err := c.apiClient()
	if err != nil {
		fmt.Fprintf(c.stderr, "weir: %v\n", err)
		return exitUsage
	}
	err = cmd.run(ctx, &runCtx{cli: c, o: o, fs: fs, args: pos, api: api})
	if err != nil && ctx.Err() != nil && !errors.As(err, new(*interruptedError)) {
		// Interrupted mid-request: what failed is the request we gave up.
		err = &interruptedError{fmt.Errorf("interrupted (%v)", err)}
	}
	return c.exitCode(full, err)
}

// newFlagSet builds a command's flags into o.
func newFlagSet(full string, cmd *command, o *opts, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(full, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.output, "o", "table", "output: table or json")
	fs.StringVar(&o.output, "output", "table", "output: table or json (same as -o)")
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s %s [flags]\n  %s\n\nflags:\n", full, cmd.args, cmd.summary)
		fs.PrintDefaults()
	}
	return fs
}

// exitCode reports err and maps it to the exit code.
func (c *cli) exitCode(cmd string, err error) int {
	var ue *usageError
	var ie *interruptedError
	var pe *client.ProblemError
	var ue2 *url.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "%s: %v\n", cmd, err)
		return exitUsage
	case errors.As(err, &ie):
		fmt.Fprintf(c.stderr, "weir: %v\n", err)
		return exitStopped
	case errors.As(err, &pe):
		fmt.Fprintf(c.stderr, "weir: %v\n", pe)
		return exitFailed
	case errors.As(err, &ue2):
		fmt.Fprintf(c.stderr, "weir: cannot reach the Weir server (WEIR_URL=%s): %v\n", c.serverURL(), ue2.Err)
		return exitFailed
	}
	fmt.Fprintf(c.stderr, "weir: %v\n", err)
	return exitFailed
}

func (c *cli) serverURL() string {
	if u := strings.TrimSpace(c.getenv("WEIR_URL")); u != "" {
		return u
	}
	return defaultServerURL
}

// apiClient is the client of WEIR_URL with WEIR_TOKEN.
func (c *cli) apiClient() (*client.Client, error) {
	raw := c.serverURL()
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw // WEIR_URL=localhost:8080
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("WEIR_URL=%q is not a server address such as %s", c.getenv("WEIR_URL"), defaultServerURL)
	}
	token := strings.TrimSpace(c.getenv("WEIR_TOKEN"))
	if token == "" {
		return nil, errors.New("WEIR_TOKEN is not set: export WEIR_TOKEN=<API key> (the first admin key is in <data-dir>/admin.token of the server)")
	}
	hc := c.httpClient
	if hc == nil {
		// Bounds one request; waits and follows poll with short requests.
		hc = &http.Client{Timeout: 5 * time.Minute}
	}
	api := client.New(u.String(), token, hc)
	api.PollInterval, api.Clock = c.poll, c.clock
	api.UserAgent = "weir-cli/" + version
	return api, nil
}

// interleave moves flags before the positional arguments, so that flags
// may follow them (weir job stop ID --wait). Whether a flag takes a value
// is read from fs; "--" ends the flags, and is kept before the positional
// arguments so that those after it stay positional.
func interleave(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	dashes := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i, dashes = len(args), true
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) {
				if i+1 == len(args) {
					// Moved before the positional arguments, it would take
					// one of them as its value.
					return nil, fmt.Errorf("flag needs an argument: %s", a)
				}
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	if dashes {
		flags = append(flags, "--")
	}
	return append(flags, pos...), nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// emit prints v as indented JSON (-o json) or as table does.
func (r *runCtx) emit(v any, table func(w io.Writer)) error {
	if r.o.output == "json" {
		return writeJSON(r.stdout, v)
	}
	tw := tabwriter.NewWriter(r.stdout, 0, 8, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// done prints a confirmation of a command without an answer body (a
// delete); -o json prints nothing, the exit code says it.
func (r *runCtx) done(format string, a ...any) error {
	if r.o.output == "table" {
		fmt.Fprintf(r.stdout, format+"\n", a...)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// quotaFlags are the quota flags of `tenant create` and `tenant quotas`.
type quotaFlags struct {
	slots, modules, retained, savepoints, burst int
	memoryPages                                 uint
	callTimeout                                 time.Duration
	moduleBytes, stateBytes                     sizeFlag
	rps                                         float64
}

func (q *quotaFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&q.slots, "slots", 0, "task slots the tenant's jobs may hold (0: the default)")
	fs.UintVar(&q.memoryPages, "memory-pages", 0, "linear memory of one Wasm instance, in 64 KiB pages")
	fs.DurationVar(&q.callTimeout, "call-timeout", 0, "time one guest call may take")
	fs.IntVar(&q.modules, "modules", 0, "module versions the tenant may keep")
	fs.Var(&q.moduleBytes, "module-bytes", "size of the largest module (bytes, or with KiB/MiB/GiB)")
	fs.Var(&q.stateBytes, "state-bytes", "a job's full state in its newest checkpoint (bytes, or with KiB/MiB/GiB)")
	fs.IntVar(&q.retained, "retained-checkpoints", 0, "completed checkpoints a job keeps")
	fs.IntVar(&q.savepoints, "savepoints", 0, "savepoints the tenant may keep")
	fs.Float64Var(&q.rps, "requests-per-second", 0, "sustained API request rate")
	fs.IntVar(&q.burst, "request-burst", 0, "API requests that may arrive at once above the rate")
}

// apply returns base with the quota flags given on the command line, and
// whether any was.
func (q *quotaFlags) apply(fs *flag.FlagSet, base tenants.Quotas) (tenants.Quotas, bool) {
	set := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "slots":
			base.Slots = q.slots
		case "memory-pages":
			base.MemoryPages = uint32(min(q.memoryPages, 1<<32-1))
		case "call-timeout":
			base.CallTimeout = tenants.Duration(q.callTimeout)
		case "modules":
			base.Modules = q.modules
		case "module-bytes":
			base.ModuleBytes = int64(q.moduleBytes)
		case "state-bytes":
			base.StateBytes = int64(q.stateBytes)
		case "retained-checkpoints":
			base.RetainedCheckpoints = q.retained
		case "savepoints":
			base.Savepoints = q.savepoints
		case "requests-per-second":
			base.RequestsPerSecond = q.rps
		case "request-burst":
			base.RequestBurst = q.burst
		default:
			return
		}
		set = true
	})
	return base, set
}

// sizeFlag is a byte count: "1048576", "64MiB", "1.5GiB", "10MB".
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func parseSize(v string) (int64, error) {
	num, mult := strings.TrimSpace(v), 1.0
	for _, u := range sizeUnits {
		if s, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(s), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size: use bytes or a number with KiB, MiB, GiB (or KB, MB, GB)", v)
	}
	return int64(f * mult), nil
}

// formatSize writes bytes for people: "512 B", "1.5 MiB".
func formatSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

// formatTime writes a time in UTC to the second, "-" for none.
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine collapses an error message to a single line for a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
