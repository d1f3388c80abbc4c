package checkpoint

import (
	"encoding/json"
	"fmt"
	"time"
)

// StatsJSON is how Stats reads in JSON (the REST API): snake_case names,
// the duration as a Go duration string and in milliseconds (for charts).
type StatsJSON struct {
	ID          int64     `json:"id"`
	Savepoint   bool      `json:"savepoint"`
	Status      string    `json:"status"`
	TriggeredAt time.Time `json:"triggered_at"`
	Duration    string    `json:"duration"`
	DurationMs  float64   `json:"duration_ms"`
	Size        int64     `json:"size"`
	Uploaded    int64     `json:"uploaded"`
	AlignmentMs float64   `json:"alignment_ms"`
	SyncMs      float64   `json:"sync_ms"`
	Acked       int       `json:"acked"`
	Tasks       int       `json:"tasks"`
	Error       string    `json:"error,omitempty"`
}

// MarshalJSON encodes s as StatsJSON.
func (s Stats) MarshalJSON() ([]byte, error) {
	return json.Marshal(StatsJSON{
		ID: s.ID, Savepoint: s.Savepoint, Status: s.Status, TriggeredAt: s.TriggeredAt,
		Duration: s.Duration.String(), DurationMs: float64(s.Duration) / float64(time.Millisecond),
		Size: s.Size, Uploaded: s.Uploaded, AlignmentMs: s.AlignmentMs, SyncMs: s.SyncMs,
		Acked: s.Acked, Tasks: s.Tasks, Error: s.Err,
	})
}

// UnmarshalJSON decodes StatsJSON.
func (s *Stats) UnmarshalJSON(b []byte) error {
	var j StatsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := time.ParseDuration(j.Duration)
	if err != nil && j.Duration != "" {
		return fmt.Errorf("checkpoint stats: duration: %w", err)
	}
	*s = Stats{ID: j.ID, Savepoint: j.Savepoint, Status: j.Status, TriggeredAt: j.TriggeredAt, Duration: d,
		Size: j.Size, Uploaded: j.Uploaded, AlignmentMs: j.AlignmentMs, SyncMs: j.SyncMs, Acked: j.Acked, Tasks: j.Tasks, Err: j.Error}
	return nil
}
