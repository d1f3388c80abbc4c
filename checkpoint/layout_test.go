package checkpoint

import (
	"strings"
	"testing"
)

func TestLayoutPaths(t *testing.T) {
	for _, tc := range []struct {
		what string
		got  func() (string, error)
		want string
	}{
		{"job", func() (string, error) { return JobPrefix("acme", "wordcount-1") }, "tenants/acme/jobs/wordcount-1"},
		{"checkpoint", func() (string, error) { return CheckpointDir("acme", "j", 7) }, "tenants/acme/jobs/j/checkpoints/chk-7"},
		{"checkpoint 0", func() (string, error) { return CheckpointDir("acme", "j", 0) }, "tenants/acme/jobs/j/checkpoints/chk-0"},
		{"shared", func() (string, error) { return SharedDir("acme", "j", "source+map[2]") }, "tenants/acme/jobs/j/shared/source+map[2]"},
		{"shared file", func() (string, error) { return SharedFile("acme", "j", "op-1_0", "a1b2", "000123.sst") }, "tenants/acme/jobs/j/shared/op-1_0/a1b2-000123.sst"},
		{"savepoint", func() (string, error) { return SavepointDir("acme", "j", "sp-20260101_1200") }, "tenants/acme/jobs/j/savepoints/sp-20260101_1200"},
	} {
		got, err := tc.got()
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.what, got, err, tc.want)
		}
		if err == nil {
			if err := CheckObjectName(got); err != nil {
				t.Errorf("%s: %q is not a valid object name: %v", tc.what, got, err)
			}
		}
	}
}

func TestLayoutRejectsBadIDs(t *testing.T) {
	for _, tc := range []struct {
		what    string
		err     func() error
		mention string // the error must name the bad id
	}{
		{"empty tenant", func() error { _, err := JobPrefix("", "j"); return err }, "tenant id is empty"},
		{"upper case tenant", func() error { _, err := JobPrefix("T1", "j"); return err }, `tenant id "T1"`},
		{"tenant escaping", func() error { _, err := JobPrefix("..", "j"); return err }, `tenant id ".."`},
		{"tenant with slash", func() error { _, err := JobPrefix("t1/../t2", "j"); return err }, `tenant id "t1/../t2"`},
		{"tenant starting with dash", func() error { _, err := JobPrefix("-t", "j"); return err }, `tenant id "-t"`},
		{"long tenant", func() error { _, err := JobPrefix(strings.Repeat("a", 64), "j"); return err }, "more than 63"},
		{"job with space", func() error { _, err := JobPrefix("t", "my job"); return err }, `job id "my job"`},
		{"job unicode", func() error { _, err := JobPrefix("t", "jöb"); return err }, `job id "jöb"`},
		{"negative checkpoint", func() error { _, err := CheckpointDir("t", "j", -1); return err }, "checkpoint id -1"},
		{"task dotdot", func() error { _, err := SharedDir("t", "j", ".."); return err }, `task name ".."`},
		{"task slash", func() error { _, err := SharedDir("t", "j", "a/b"); return err }, `task name "a/b"`},
		{"task empty", func() error { _, err := SharedDir("t", "j", ""); return err }, "task name is empty"},
		{"shared unique with dash", func() error { _, err := SharedFile("t", "j", "task", "a-b", "f"); return err }, `unique part "a-b"`},
		{"shared file with slash", func() error { _, err := SharedFile("t", "j", "task", "u", "../f"); return err }, `"../f"`},
		{"shared file empty", func() error { _, err := SharedFile("t", "j", "task", "u", ""); return err }, `shared file name ""`},
		{"savepoint", func() error { _, err := SavepointDir("t", "j", "../sp"); return err }, `savepoint id "../sp"`},
	} {
		err := tc.err()
		if err == nil {
			t.Errorf("%s: no error", tc.what)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: error %q does not mention %q", tc.what, err, tc.mention)
		}
	}
}

func TestCheckpointID(t *testing.T) {
	for _, tc := range []struct {
		elem string
		id   int64
		ok   bool
	}{
		{"chk-0", 0, true},
		{"chk-7", 7, true},
		{"chk-9223372036854775807", 9223372036854775807, true},
		{"chk-9223372036854775808", 0, false},
		{"chk-07", 0, false},
		{"chk--1", 0, false},
		{"chk-+1", 0, false},
		{"chk-", 0, false},
		{"chk-1a", 0, false},
		{"chk7", 0, false},
		{"_metadata", 0, false},
	} {
		id, ok := CheckpointID(tc.elem)
		if id != tc.id || ok != tc.ok {
			t.Errorf("CheckpointID(%q) = %d, %v; want %d, %v", tc.elem, id, ok, tc.id, tc.ok)
		}
	}
	// Round trip with CheckpointDir.
	for _, id := range []int64{0, 1, 42, 1 << 40} {
		dir, err := CheckpointDir("t", "j", id)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := CheckpointID(dir[strings.LastIndexByte(dir, '/')+1:])
		if !ok || got != id {
			t.Errorf("CheckpointID of %s = %d, %v", dir, got, ok)
		}
	}
}
