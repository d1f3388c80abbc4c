package console

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/tenants"
)

// The jobs list: every job of the tenant with its state and throughput.
// The list answer has no metrics, so the page asks for each live job's
// detail (one in-process call per job: fine for the tens of jobs a tenant
// runs).

// jobListRoutes is the jobs list.
func (c *Console) jobListRoutes() []route {
	return []route{{http.MethodGet, "/jobs", c.jobListPage}}
}

// jobListRow is one job of the list.
type jobListRow struct {
	jobs.Job
	// ModuleRefs are "alias: name@version", sorted.
	ModuleRefs []string
	// Rate is the job's records per second; Live says there is one (the
	// job is not over).
	Rate float64
	Live bool
}

func (c *Console) jobListPage(r *request) error {
	list, err := r.API.Jobs(r.Ctx())
	if err != nil {
		return r.fail(0, err)
	}
	rows := make([]jobListRow, len(list))
	for i, j := range list {
		row := jobListRow{Job: j}
		for alias, ref := range j.Modules {
			row.ModuleRefs = append(row.ModuleRefs, fmt.Sprintf("%s: %s", alias, ref))
		}
		sort.Strings(row.ModuleRefs)
		if jobListIsLive(j.State) {
			// A job that ends between the list and this call just shows no
			// rate; the page must not fail for it.
			if d, err := r.API.Job(r.Ctx(), j.ID); err == nil {
				row.Rate, row.Live = jobListRate(d), true
			}
		}
		rows[i] = row
	}
	return r.render(http.StatusOK, "jobs", map[string]any{"Jobs": rows, "CanWrite": callerCan(r, tenants.ActWrite)})
}

// jobListIsLive: a job in one of these states has tasks, hence metrics.
func jobListIsLive(s jobs.State) bool {
	switch s {
	case jobs.StateRunning, jobs.StateRestarting, jobs.StateUpgrading, jobs.StateRescaling:
		return true
	}
	return false
}

// jobListRate is a job's throughput: what its sinks take in per second,
// or, when that is nothing (sinks chained behind their source, whose chain
// takes nothing in; or output that has not started), what its sources put
// out.
func jobListRate(d jobs.Detail) float64 {
	kind := make(map[string]string, len(d.Graph))
	for _, n := range d.Graph {
		kind[n.ID] = n.Kind
	}
	var in, out float64
	for _, v := range d.Vertices {
		for _, n := range v.Nodes {
			if kind[n] == "sink" {
				in += v.RecordsInPerSecond
				break
			}
		}
		if len(v.Nodes) > 0 && kind[v.Nodes[0]] == "source" {
			out += v.RecordsOutPerSecond
		}
	}
	if in > 0 {
		return in
	}
	return out
}
