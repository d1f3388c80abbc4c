package connectors

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/runtime"
)

// writeFiles creates files (name -> content) under a new temp directory.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFileSourceConfigErrors(t *testing.T) {
	c := registry(t, RegisterOptions{})
	for _, tc := range []struct{ config, want string }{
		{`{}`, `config.path: required`},
		{`{"path": "  "}`, `config.path: required`},
		{`{"path": "a[", "format": "lines"}`, `config.path: bad glob pattern "a["`},
		{`{"path": "x", "format": "xml"}`, `config.format: must be one of lines, jsonl, csv, got "xml"`},
		{`{"path": "x", "keyField": "k"}`, `config.keyField: not supported for format lines`},
		{`{"path": "x", "format": "lines", "timestampField": "t"}`, `config.timestampField: not supported for format lines`},
		{`{"path": "x", "format": "jsonl", "timestampField": "t", "timestampFormat": "nanos"}`, `config.timestampFormat: must be one of millis, seconds, rfc3339, got "nanos"`},
		{`{"path": "x", "format": "jsonl", "timestampFormat": "seconds"}`, `config.timestampFormat: set without config.timestampField`},
		{`{"path": "x", "format": "jsonl", "header": false}`, `config.header: only used with format csv`},
		{`{"path": "x", "format": "lines", "delimiter": ";"}`, `config.delimiter: only used with format csv`},
		{`{"path": "x", "format": "csv", "delimiter": ";;"}`, `config.delimiter: must be a single character`},
		{`{"path": "x", "format": "csv", "delimiter": ""}`, `config.delimiter: must be a single character`},
		{`{"path": "x", "format": "csv", "delimiter": "\""}`, `config.delimiter: must be a single character`},
		{`{"path": "x", "format": "csv", "header": "yes"}`, `config.header: cannot use`},
		{`{"path": "x", "compression": "gzip"}`, `config.compression: unknown field`},
		// Valid: existence is checked at Open, not here.
		{`{"path": "does/not/exist.txt"}`, ``},
		{`{"path": "x", "format": "csv", "delimiter": "\t", "header": false, "timestampField": "f0", "timestampFormat": "rfc3339", "keyField": "f1"}`, ``},
	} {
		t.Run(tc.config, func(t *testing.T) {
			_, err := c.Sources["file"]([]byte(tc.config))
			wantErr(t, err, tc.want)
		})
	}
}

func TestFileSourceOpenErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"sub/a.txt": "x\n"})
	c := registry(t, RegisterOptions{BaseDir: dir})
	for _, tc := range []struct{ path, want string }{
		{"missing.txt", filepath.Join(dir, "missing.txt") + ": no such file or directory"},
		{"*.csv", fmt.Sprintf("no file matches %q", filepath.Join(dir, "*.csv"))},
		{"sub", "is a directory (use a glob such as"},
		// A glob matching only directories matches no file.
		{"s*", "no file matches"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			src := newSource(t, c, "file", fmt.Sprintf(`{"path": %q}`, tc.path))()
			err := src.Open(context.Background(), taskInfo(0, 1, nil))
			wantErr(t, err, tc.want)
		})
	}
}

func TestFileSourceFormats(t *testing.T) {
	no := abi.NoTimestamp
	for _, tc := range []struct {
		name    string
		content string
		config  string // without path
		want    []rec
	}{
		{
			name:    "lines keeps empty lines, strips CR and BOM, no final newline needed",
			content: "\xef\xbb\xbfalpha\r\n\nbeta \t\ngamma",
			config:  `{"format": "lines"}`,
			want:    []rec{{"", "alpha", no}, {"", "", no}, {"", "beta \t", no}, {"", "gamma", no}},
		},
		{
			name:    "lines default format, empty file",
			content: "",
			config:  `{}`,
			want:    nil,
		},
		{
			name:    "lines, a file holding only a BOM is empty",
			content: "\xef\xbb\xbf",
			config:  `{}`,
			want:    nil,
		},
		{
			name:    "lines, a BOM alone on the first line is an empty record",
			content: "\xef\xbb\xbf\nx",
			config:  `{}`,
			want:    []rec{{"", "", no}, {"", "x", no}},
		},
		{
			name:    "jsonl without fields skips blank lines",
			content: "{\"a\":1}\n\n   \n {\"b\": [1, {\"c\": \"}\"}]} \r\n",
			config:  `{"format": "jsonl"}`,
			want:    []rec{{"", `{"a":1}`, no}, {"", ` {"b": [1, {"c": "}"}]} `, no}},
		},
		{
			name: "jsonl millis and keys",
			content: `{"user": "ann", "ts": 1700000000000, "x": {"ts": 1}}` + "\n" +
				`{"ts": "1700000000001", "user": 42}` + "\n" +
				`{"user": "b\u00e9\"n", "nested": {"user": "no"}, "ts": -5}` + "\n" +
				`{"user": {"id": 7}, "ts": 3, "ts": 4}` + "\n",
			config: `{"format": "jsonl", "timestampField": "ts", "keyField": "user"}`,
			want: []rec{
				{"ann", `{"user": "ann", "ts": 1700000000000, "x": {"ts": 1}}`, 1700000000000},
				{"42", `{"ts": "1700000000001", "user": 42}`, 1700000000001},
				{"bé\"n", `{"user": "b\u00e9\"n", "nested": {"user": "no"}, "ts": -5}`, -5},
				{`{"id": 7}`, `{"user": {"id": 7}, "ts": 3, "ts": 4}`, 4},
			},
		},
		{
			name:    "jsonl seconds",
			content: `{"t": 1700000000}` + "\n" + `{"t": 1.5}` + "\n" + `{"t": "-2.0019"}` + "\n" + `{"t": "7."}` + "\n",
			config:  `{"format": "jsonl", "timestampField": "t", "timestampFormat": "seconds"}`,
			want: []rec{
				{"", `{"t": 1700000000}`, 1700000000000},
				{"", `{"t": 1.5}`, 1500},
				{"", `{"t": "-2.0019"}`, -2001},
				{"", `{"t": "7."}`, 7000},
			},
		},
		{
			name:    "jsonl rfc3339, escaped member name",
			content: `{"when": "2024-01-02T03:04:05.678Z"}` + "\n" + `{"wh\u0065n": "2024-01-02T04:04:05+01:00"}` + "\n",
			config:  `{"format": "jsonl", "timestampField": "when", "timestampFormat": "rfc3339"}`,
			want: []rec{
				{"", `{"when": "2024-01-02T03:04:05.678Z"}`, 1704164645678},
				{"", `{"wh\u0065n": "2024-01-02T04:04:05+01:00"}`, 1704164645000},
			},
		},
		{
			name:    "csv with header, quoting, embedded newline, escapes",
			content: "id,ts,note\n1,1000,plain\n2,2000,\"with, comma and \"\"quotes\"\"\"\r\n3,3000,\"two\nlines\\\"\n",
			config:  `{"format": "csv", "timestampField": "ts", "keyField": "id"}`,
			want: []rec{
				{"1", `{"id":"1","ts":"1000","note":"plain"}`, 1000},
				{"2", `{"id":"2","ts":"2000","note":"with, comma and \"quotes\""}`, 2000},
				{"3", `{"id":"3","ts":"3000","note":"two\nlines\\"}`, 3000},
			},
		},
		{
			name:    "csv without header, delimiter, rfc3339, BOM",
			content: "\xef\xbb\xbf2024-01-01T00:00:00Z;a\n2024-01-01T00:00:01.5Z;b\n",
			config:  `{"format": "csv", "header": false, "delimiter": ";", "timestampField": "f0", "timestampFormat": "rfc3339"}`,
			want: []rec{
				{"", `{"f0":"2024-01-01T00:00:00Z","f1":"a"}`, 1704067200000},
				{"", `{"f0":"2024-01-01T00:00:01.5Z","f1":"b"}`, 1704067201500},
			},
		},
		{
			name:    "csv tab delimiter, unicode and control bytes in fields",
			content: "name\tv\nzoë\t\x01\n",
			config:  `{"format": "csv", "delimiter": "\t"}`,
			want:    []rec{{"", `{"name":"zoë","v":"\u0001"}`, no}},
		},
		{
			name:    "csv header only",
			content: "a,b\n",
			config:  `{"format": "csv", "timestampField": "b"}`,
			want:    nil,
		},
		{
			name:    "csv header with unusual names",
			content: "\"we\"\"ird\",x\n1,2\n",
			config:  `{"format": "csv"}`,
			want:    []rec{{"", `{"we\"ird":"1","x":"2"}`, no}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"in": tc.content})
			c := registry(t, RegisterOptions{BaseDir: dir})
			config := strings.Replace(tc.config, "{", `{"path": "in", `, 1)
			config = strings.Replace(config, ", }", "}", 1)
			for _, batch := range []int{1, 2, 100} {
				got := drain(t, newSource(t, c, "file", config)(), 0, 1, batch)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("batch %d:\ngot  %+v\nwant %+v", batch, got, tc.want)
				}
			}
		})
	}
}

func TestFileSourceMalformed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		config  string
		want    string
	}{
		{"jsonl bad json", "{\"a\":1}\n{\"a\":\n", `"format": "jsonl"`, `in:2: not a JSON object: "{\"a\":"`},
		{"jsonl array", "[1]\n", `"format": "jsonl"`, `in:1: not a JSON object`},
		{"jsonl trailing garbage", "{} x\n", `"format": "jsonl"`, `in:1: not a JSON object`},
		{"jsonl line numbers count blank lines", "{}\n\n\nnope\n", `"format": "jsonl"`, `in:4: not a JSON object`},
		{"jsonl missing timestamp", "{\"ts\": 1}\n{\"t\": 1}\n", `"format": "jsonl", "timestampField": "ts"`, `in:2: missing timestamp field "ts"`},
		{"jsonl null timestamp", "{\"ts\": null}\n", `"format": "jsonl", "timestampField": "ts"`, `in:1: timestamp field "ts": is null`},
		{"jsonl float millis", "{\"ts\": 1.5}\n", `"format": "jsonl", "timestampField": "ts"`, `in:1: timestamp field "ts": cannot parse "1.5" as milliseconds`},
		{"jsonl bad seconds", "{\"ts\": \"1.x\"}\n", `"format": "jsonl", "timestampField": "ts", "timestampFormat": "seconds"`, `in:1: timestamp field "ts": cannot parse "1.x" as seconds`},
		{"jsonl rfc3339 number", "{\"ts\": 5}\n", `"format": "jsonl", "timestampField": "ts", "timestampFormat": "rfc3339"`, `in:1: timestamp field "ts": want a string holding an RFC 3339 time, got "5"`},
		{"jsonl bad rfc3339", "{\"ts\": \"yesterday\"}\n", `"format": "jsonl", "timestampField": "ts", "timestampFormat": "rfc3339"`, `in:1: timestamp field "ts": cannot parse "yesterday" as an RFC 3339 time`},
		{"jsonl missing key", "{\"k\": 1}\n{}\n", `"format": "jsonl", "keyField": "k"`, `in:2: missing key field "k"`},
		{"jsonl null key", "{\"k\": null}\n", `"format": "jsonl", "keyField": "k"`, `in:1: key field "k": is null`},
		{"csv too few columns", "a,b\n1,2\n3\n", `"format": "csv"`, `in:3: 1 fields, but the header has 2`},
		{"csv too many columns without header", "1,2\n3,4,5\n", `"format": "csv", "header": false`, `in:2: 3 fields, but the first record has 2`},
		{"csv bare quote", "a\nx\"y\n", `"format": "csv"`, `in:2: csv: bare " in non-quoted-field`},
		{"csv unterminated quote", "a\n\"x\n", `"format": "csv"`, `in:2: csv: extraneous or missing " in quoted-field`},
		{"csv duplicate header", "a,a\n", `"format": "csv"`, `in:1: header column "a" appears twice`},
		{"csv empty header", "a,\n", `"format": "csv"`, `in:1: header column 2 is empty`},
		{"csv unknown timestamp column", "a,b\n1,2\n", `"format": "csv", "timestampField": "ts"`, `in:1: timestamp field "ts" is not a header column`},
		{"csv unknown key column without header", "1,2\n", `"format": "csv", "header": false, "keyField": "f2"`, `in:1: key field "f2" is not a column (without a header columns are named f0 to f1)`},
		{"csv bad timestamp", "ts\n12\nx\n", `"format": "csv", "timestampField": "ts"`, `in:3: timestamp field "ts": cannot parse "x" as milliseconds`},
		{"csv empty timestamp", "ts\n\"\"\n", `"format": "csv", "timestampField": "ts"`, `in:2: timestamp field "ts": cannot parse "" as milliseconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"in": tc.content})
			c := registry(t, RegisterOptions{})
			config := fmt.Sprintf(`{"path": %q, %s}`, filepath.Join(dir, "in"), tc.config)
			_, err := drainErr(newSource(t, c, "file", config)(), 0, 1, 10)
			wantErr(t, err, filepath.Join(dir, tc.want))
		})
	}
}

func TestFileSourceLongLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 64 MiB file")
	}
	long := strings.Repeat("x", abi.MaxFieldLen+1)
	dir := writeFiles(t, map[string]string{"in": "ok\n" + long + "\n"})
	c := registry(t, RegisterOptions{BaseDir: dir})
	_, err := drainErr(newSource(t, c, "file", `{"path": "in"}`)(), 0, 1, 10)
	wantErr(t, err, filepath.Join(dir, "in")+":2: line longer than 67108864 bytes")
}

// TestFileSourceParallelSplit reads several files through a glob at
// parallelism 1..5, in each format, and checks that every line is read
// exactly once, by the subtask its global index names.
func TestFileSourceParallelSplit(t *testing.T) {
	files := map[string]string{
		"d.txt":   "not matched\n",
		"e.log/x": "a directory matching the glob is skipped\n",
	}
	var all []string
	// Names sort as a < b < c; sizes differ so that file boundaries fall
	// at different offsets modulo p. Each format gets the same lines.
	for _, f := range []struct {
		name string
		n    int
	}{{"a", 7}, {"b", 1}, {"c", 12}} {
		var lines, jsonl, csv strings.Builder
		for i := 0; i < f.n; i++ {
			line := fmt.Sprintf("%s-%d", f.name, i)
			all = append(all, line)
			fmt.Fprintf(&lines, "%s\n", line)
			fmt.Fprintf(&jsonl, "{\"v\": %q}\n\n", line) // blank lines are not records
			fmt.Fprintf(&csv, "%s\n", line)
		}
		files[f.name+".log"] = lines.String()
		files[f.name+".jsonl"] = jsonl.String()
		files[f.name+".csv"] = "v\n" + csv.String()
	}
	dir := writeFiles(t, files)
	c := registry(t, RegisterOptions{BaseDir: dir})
	for _, tc := range []struct {
		format, config string
		line           func(rec) string
	}{
		{"lines", `{"path": "*.log"}`, func(r rec) string { return r.Value }},
		{"jsonl", `{"path": "*.jsonl", "format": "jsonl", "keyField": "v"}`, func(r rec) string { return r.Key }},
		{"csv", `{"path": "*.csv", "format": "csv", "keyField": "v"}`, func(r rec) string { return r.Key }},
	} {
		for p := 1; p <= 5; p++ {
			t.Run(fmt.Sprintf("%s/p%d", tc.format, p), func(t *testing.T) {
				seen := map[string]int{}
				for i := 0; i < p; i++ {
					got := drain(t, newSource(t, c, "file", tc.config)(), i, p, 3)
					for j, r := range got {
						idx := i + j*p
						if line := tc.line(r); idx >= len(all) || line != all[idx] {
							t.Fatalf("subtask %d record %d: %q, want line %d of %q", i, j, line, idx, all)
						}
						seen[tc.line(r)]++
					}
				}
				if len(seen) != len(all) {
					t.Fatalf("read %d distinct lines, want %d", len(seen), len(all))
				}
				for l, n := range seen {
					if n != 1 {
						t.Fatalf("line %q read %d times", l, n)
					}
				}
			})
		}
	}
}

func TestFileSourceGlobAcrossFormats(t *testing.T) {
	// Two csv files with their own headers (different column order) read
	// through one glob.
	dir := writeFiles(t, map[string]string{
		"2.csv": "ts,k\n20,b\n",
		"1.csv": "k,ts\na,10\n",
	})
	c := registry(t, RegisterOptions{BaseDir: dir})
	got := drain(t, newSource(t, c, "file", `{"path": "*.csv", "format": "csv", "timestampField": "ts", "keyField": "k"}`)(), 0, 1, 10)
	want := []rec{{"a", `{"k":"a","ts":"10"}`, 10}, {"b", `{"ts":"20","k":"b"}`, 20}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v want %+v", got, want)
	}
}

func TestFileSourceBaseDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{"data/in.txt": "x\n"})
	var c runtime.Connectors
	RegisterWithBase(&c, dir)
	if got := drain(t, newSource(t, &c, "file", `{"path": "data/in.txt"}`)(), 0, 1, 10); len(got) != 1 {
		t.Fatalf("relative path: %v", got)
	}
	// Absolute paths ignore the base directory.
	var c2 runtime.Connectors
	RegisterWithBase(&c2, "/nonexistent")
	abs := strconv.Quote(filepath.Join(dir, "data", "in.txt"))
	if got := drain(t, newSource(t, &c2, "file", `{"path": `+abs+`}`)(), 0, 1, 10); len(got) != 1 {
		t.Fatalf("absolute path: %v", got)
	}
}

func BenchmarkFileSource(b *testing.B) {
	const lines = 200_000
	for _, bc := range []struct {
		format, config string
		line           func(i int) string
		header         string
	}{
		{"lines", `{"path": "in", "format": "lines"}`, func(i int) string {
			return fmt.Sprintf("%08d %s", i, strings.Repeat("x", 91))
		}, ""},
		{"jsonl", `{"path": "in", "format": "jsonl", "timestampField": "ts", "keyField": "user"}`, func(i int) string {
			return fmt.Sprintf(`{"user": "u%d", "ts": %d, "amount": 12.5, "note": "%s"}`, i%1000, 1700000000000+i, strings.Repeat("y", 30))
		}, ""},
		{"csv", `{"path": "in", "format": "csv", "timestampField": "ts", "keyField": "user"}`, func(i int) string {
			return fmt.Sprintf(`u%d,%d,12.5,%s`, i%1000, 1700000000000+i, strings.Repeat("y", 30))
		}, "user,ts,amount,note\n"},
	} {
		var sb strings.Builder
		sb.WriteString(bc.header)
		for i := 0; i < lines; i++ {
			sb.WriteString(bc.line(i))
			sb.WriteByte('\n')
		}
		dir := writeFiles(b, map[string]string{"in": sb.String()})
		c := registry(b, RegisterOptions{BaseDir: dir})
		mk := newSource(b, c, "file", bc.config)
		b.Run(bc.format, func(b *testing.B) {
			ctx := context.Background()
			w := &batchWriter{}
			b.SetBytes(int64(sb.Len() / lines))
			b.ReportAllocs()
			b.ResetTimer()
			// One op is one line; the file is re-read as often as needed.
			for n := 0; n < b.N; {
				src := mk()
				if err := src.Open(ctx, taskInfo(0, 1, nil)); err != nil {
					b.Fatal(err)
				}
				for done := false; !done && n < b.N; {
					w.enc.Reset()
					before := w.n
					var err error
					done, err = src.Poll(ctx, w, min(1024, b.N-n))
					if err != nil {
						b.Fatal(err)
					}
					n += w.n - before
				}
				src.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func FuzzValidJSONObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a": [1, -2.5e+3, true, false, null, {"b": "\u00e9\n"}]} `, `{"a":01}`, `{"a":"\u12"}`,
		`{"a" 1}`, `{"a":1,}`, `[1]`, `{"a":"` + "\x01" + `"}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, "{\"a\":\"\xff\"}",
		`{"a":tru}`, `{"a":[1 2]}`, `{"a":{}}}`, `{"\\":"/"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		i := skipSpace(b, 0)
		want := i < len(b) && b[i] == '{' && json.Valid(b)
		if got := validJSONObject(b); got != want {
			t.Fatalf("validJSONObject(%q) = %v, json.Valid says %v", b, got, want)
		}
		if want {
			// jsonMembers must not panic on any valid object.
			jsonMembers(b, []string{"a", "b"}, nil)
		}
	})
}
