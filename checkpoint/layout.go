package checkpoint

import (
	"fmt"
	"strconv"
	"strings"
)

// Object layout (LAYOUT.md is the reference):
//
//	tenants/<tenant>/jobs/<job>/
//	  checkpoints/chk-<n>/_metadata          written last, atomically
//	  checkpoints/chk-<n>/<task>/...         files private to checkpoint n
//	  shared/<task>/<unique>-<name>          incremental files, shared by checkpoints
//	  savepoints/<savepoint>/_metadata       self-contained: every path inside
//	  savepoints/<savepoint>/<task>/...      is relative to the savepoint folder

// Folder names of the layout.
const (
	tenantsFolder     = "tenants"
	jobsFolder        = "jobs"
	checkpointsFolder = "checkpoints"
	sharedFolder      = "shared"
	savepointsFolder  = "savepoints"
	checkpointPrefix  = "chk-"
)

// maxIDLen bounds tenant, job and savepoint ids: short enough for
// readable paths and any filesystem, long enough for a UUID.
const maxIDLen = 63

// maxTaskLen bounds task names, which carry node ids and a subtask index.
const maxTaskLen = 128

// ValidateID checks a tenant, job or savepoint id: 1 to 63 characters of
// a-z, 0-9, '-' and '_', starting with a letter or digit. Lower case only:
// on a case-insensitive filesystem "T1" and "t1" would be one folder, and
// two tenants sharing a folder is exactly what the layout must prevent.
// kind ("tenant", "job", "savepoint") names the id in the error.
func ValidateID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("%s id is empty", kind)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%s id %.20q... is %d characters, more than %d", kind, id, len(id), maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return fmt.Errorf("%s id %q is invalid at byte %d (%q): use a-z, 0-9, '-' and '_', starting with a letter or digit", kind, id, i, c)
		}
	}
	return nil
}

// ValidateTask checks a task name used as a folder: 1 to 128 characters of
// letters, digits and "-_.+[]", not starting with '.', so that names like
// "source+map[2]" work and no name is "..", hidden, or a path.
func ValidateTask(task string) error {
	if task == "" {
		return fmt.Errorf("task name is empty")
	}
	if len(task) > maxTaskLen {
		return fmt.Errorf("task name %.20q... is %d characters, more than %d", task, len(task), maxTaskLen)
	}
	if task[0] == '.' {
		return fmt.Errorf("task name %q starts with '.'", task)
	}
	for i := 0; i < len(task); i++ {
		c := task[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.+[]", c) >= 0) {
			return fmt.Errorf("task name %q is invalid at byte %d (%q): use letters, digits and -_.+[]", task, i, c)
		}
	}
	return nil
}

// JobPrefix is the folder holding everything of one job of one tenant:
// "tenants/<tenant>/jobs/<job>".
func JobPrefix(tenant, job string) (string, error) {
	if err := ValidateID("tenant", tenant); err != nil {
		return "", err
	}
	if err := ValidateID("job", job); err != nil {
		return "", err
	}
	return tenantsFolder + "/" + tenant + "/" + jobsFolder + "/" + job, nil
}

// CheckpointDir is the folder of checkpoint id of a job:
// "<job prefix>/checkpoints/chk-<id>". Its _metadata (MetadataName) is
// written last.
func CheckpointDir(tenant, job string, id int64) (string, error) {
	p, err := JobPrefix(tenant, job)
	if err != nil {
		return "", err
	}
	if id < 0 {
		return "", fmt.Errorf("checkpoint id %d is negative", id)
	}
	return p + "/" + checkpointsFolder + "/" + checkpointPrefix + strconv.FormatInt(id, 10), nil
}

// CheckpointID parses a checkpoint folder's last element ("chk-7" -> 7),
// as found by listing "<job prefix>/checkpoints". Only the canonical
// decimal form parses, so every id has exactly one folder.
func CheckpointID(elem string) (int64, bool) {
	digits, ok := strings.CutPrefix(elem, checkpointPrefix)
	if !ok || digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id < 0 {
		return 0, false
	}
	return id, true
}

// SharedDir is the folder of a task's shared files:
// "<job prefix>/shared/<task>". Files there are referenced by several
// checkpoints and deleted when no retained checkpoint references them.
func SharedDir(tenant, job, task string) (string, error) {
	p, err := JobPrefix(tenant, job)
	if err != nil {
		return "", err
	}
	if err := ValidateTask(task); err != nil {
		return "", err
	}
	return p + "/" + sharedFolder + "/" + task, nil
}

// SharedFile is the name of a shared file: "<shared dir>/<unique>-<file>".
// file is the name the task gives the file (a Pebble SST "000123.sst");
// unique makes the name unique across the state backend instances a job
// has had (a restored or rescaled task starts a new Pebble instance whose
// file numbers restart), for example the backend instance's random id.
// Both must be single path elements.
func SharedFile(tenant, job, task, unique, file string) (string, error) {
	dir, err := SharedDir(tenant, job, task)
	if err != nil {
		return "", err
	}
	if unique == "" || strings.ContainsAny(unique, "/-") {
		return "", fmt.Errorf("shared file unique part %q must be non-empty, without '/' or '-'", unique)
	}
	if file == "" || strings.Contains(file, "/") {
		return "", fmt.Errorf("shared file name %q must be non-empty, without '/'", file)
	}
	name := dir + "/" + unique + "-" + file
	if err := CheckObjectName(name); err != nil {
		return "", err
	}
	return name, nil
}

// SavepointDir is the folder of a savepoint:
// "<job prefix>/savepoints/<savepoint>". A savepoint is self-contained:
// its metadata names its files relative to this folder, and nothing in
// it refers outside, so the folder can be copied anywhere (another
// bucket, another tenant's job) and restored from there.
func SavepointDir(tenant, job, savepoint string) (string, error) {
	p, err := JobPrefix(tenant, job)
	if err != nil {
		return "", err
	}
	if err := ValidateID("savepoint", savepoint); err != nil {
		return "", err
	}
	return p + "/" + savepointsFolder + "/" + savepoint, nil
}
