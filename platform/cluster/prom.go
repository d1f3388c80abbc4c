package cluster

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weirstream/weir/abi"
)

// JobCheckpoints are the checkpoint figures of one job for /metrics.
type JobCheckpoints struct {
	Tenant, Job string
	Completed   int64         // checkpoints completed in this run
	Failed      int64         // aborted or declined
	LastAt      time.Time     // when the newest completed (zero: none)
	LastTook    time.Duration // how long it took
	LastAlign   time.Duration // its longest alignment
	LastSize    int64         // its bytes
}

// taskMetric is one per-task series family.
type taskMetric struct {
	name, help, typ string
	value           func(*JobStats) (float64, bool)
}

var taskMetrics = []taskMetric{
	{"weir_task_records_in_total", "Records a task received (sources: produced).", "counter", func(s *JobStats) (float64, bool) { return float64(s.RecordsIn), true }},
	{"weir_task_records_out_total", "Records a task emitted downstream or wrote to its sink.", "counter", func(s *JobStats) (float64, bool) { return float64(s.RecordsOut), true }},
	{"weir_task_bytes_in_total", "Bytes of the records a task received.", "counter", func(s *JobStats) (float64, bool) { return float64(s.BytesIn), true }},
	{"weir_task_bytes_out_total", "Bytes of the records a task emitted.", "counter", func(s *JobStats) (float64, bool) { return float64(s.BytesOut), true }},
	{"weir_task_late_records_dropped_total", "Late records dropped (no edge reads the late output).", "counter", func(s *JobStats) (float64, bool) { return float64(s.LateDropped), true }},
	{"weir_task_backpressure_seconds_total", "Time a task spent blocked on output (no credit downstream).", "counter", func(s *JobStats) (float64, bool) { return s.Backpressure.Seconds(), true }},
	{"weir_task_checkpoint_alignment_seconds_total", "Time a task spent aligning checkpoint barriers.", "counter", func(s *JobStats) (float64, bool) { return s.Alignment.Seconds(), true }},
	{"weir_task_watermark_milliseconds", "A task's current watermark (event time, ms since the epoch); absent before the first.", "gauge", func(s *JobStats) (float64, bool) {
		if s.Watermark <= abi.MinWatermark {
			return 0, false
		}
		return float64(s.Watermark), true
	}},
	{"weir_task_finished", "1 once a task has finished.", "gauge", func(s *JobStats) (float64, bool) {
		if s.Finished {
			return 1, true
		}
		return 0, true
	}},
}

// WritePrometheus writes tasks and jobs in the Prometheus text exposition
// format (version 0.0.4). worker, if not empty, labels every task series.
func WritePrometheus(out io.Writer, worker string, tasks []JobStats, jobs []JobCheckpoints) error {
	w := bufio.NewWriter(out)
	sort.Slice(tasks, func(i, j int) bool {
		a, b := tasks[i], tasks[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Job != b.Job {
			return a.Job < b.Job
		}
		if a.Attempt != b.Attempt {
			return a.Attempt < b.Attempt
		}
		return a.Task < b.Task
	})
	for _, m := range taskMetrics {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for i := range tasks {
			s := &tasks[i]
			v, ok := m.value(s)
			if !ok {
				continue
			}
			labels := [][2]string{{"tenant", s.Tenant}, {"job", s.Job}, {"task", s.Task}, {"subtask", strconv.Itoa(s.Subtask)}}
			if s.Attempt != "" {
				labels = append(labels, [2]string{"attempt", s.Attempt})
			}
			if worker != "" {
				labels = append(labels, [2]string{"worker", worker})
			}
			writeSample(w, m.name, labels, v)
		}
	}
	if jobs != nil {
		jm := []struct {
			name, help, typ string
			value           func(*JobCheckpoints) (float64, bool)
		}{
			{"weir_job_checkpoints_completed_total", "Checkpoints a job completed since it started in this process.", "counter", func(j *JobCheckpoints) (float64, bool) { return float64(j.Completed), true }},
			{"weir_job_checkpoints_failed_total", "Checkpoints aborted or declined.", "counter", func(j *JobCheckpoints) (float64, bool) { return float64(j.Failed), true }},
			{"weir_job_last_checkpoint_duration_seconds", "Duration of the newest completed checkpoint.", "gauge", func(j *JobCheckpoints) (float64, bool) { return j.LastTook.Seconds(), !j.LastAt.IsZero() }},
			{"weir_job_last_checkpoint_alignment_seconds", "Longest barrier alignment of the newest completed checkpoint.", "gauge", func(j *JobCheckpoints) (float64, bool) { return j.LastAlign.Seconds(), !j.LastAt.IsZero() }},
			{"weir_job_last_checkpoint_size_bytes", "Bytes of the newest completed checkpoint.", "gauge", func(j *JobCheckpoints) (float64, bool) { return float64(j.LastSize), !j.LastAt.IsZero() }},
			{"weir_job_last_checkpoint_timestamp_seconds", "When the newest checkpoint completed (Unix time).", "gauge", func(j *JobCheckpoints) (float64, bool) {
				return float64(j.LastAt.UnixMilli()) / 1000, !j.LastAt.IsZero()
			}},
		}
		for _, m := range jm {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
			for i := range jobs {
				if v, ok := m.value(&jobs[i]); ok {
					writeSample(w, m.name, [][2]string{{"tenant", jobs[i].Tenant}, {"job", jobs[i].Job}}, v)
				}
			}
		}
	}
	return w.Flush()
}

func writeSample(w *bufio.Writer, name string, labels [][2]string, v float64) {
	w.WriteString(name)
	w.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(l[0])
		w.WriteString(`="`)
		w.WriteString(escapeLabel(l[1]))
		w.WriteByte('"')
	}
	w.WriteString("} ")
	switch {
	case math.IsInf(v, 1):
		w.WriteString("+Inf")
	case math.IsInf(v, -1):
		w.WriteString("-Inf")
	case math.IsNaN(v):
		w.WriteString("NaN")
	default:
		w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	w.WriteByte('\n')
}

// escapeLabel escapes a label value as the text format requires:
// backslash, double quote and line feed.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}
