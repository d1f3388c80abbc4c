package tenants

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultQuotasJSON(t *testing.T) {
	b, err := json.Marshal(DefaultQuotas())
	if err != nil {
		t.Fatal(err)
	}
	// The field names are the API's (docs/API.md); the sizes are written out.
	want := `{"slots":8,"memory_pages":1024,"call_timeout":"5s","modules":100,` +
		`"module_bytes":67108864,"state_bytes":1073741824,"retained_checkpoints":5,` +
		`"savepoints":20,"requests_per_second":100,"request_burst":200}`
	if string(b) != want {
		t.Fatalf("DefaultQuotas JSON\n got %s\nwant %s", b, want)
	}
	var back Quotas
	if err := json.Unmarshal(b, &back); err != nil || back != DefaultQuotas() {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
}

func TestQuotasWithDefaults(t *testing.T) {
	if got := (Quotas{}).WithDefaults(); got != DefaultQuotas() {
		t.Fatalf("zero quotas with defaults = %+v", got)
	}
	q := Quotas{Slots: 2, CallTimeout: Duration(time.Second), RequestsPerSecond: 0.5}
	want := DefaultQuotas()
	want.Slots, want.CallTimeout, want.RequestsPerSecond = 2, Duration(time.Second), 0.5
	if got := q.WithDefaults(); got != want {
		t.Fatalf("WithDefaults = %+v, want %+v", got, want)
	}
}

func TestQuotasValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    Quotas
		want []string // "field: problem" of each FieldError, in order
	}{
		{"zero", Quotas{}, nil},
		{"defaults", DefaultQuotas(), nil},
		{"maxima", Quotas{MemoryPages: 65535, CallTimeout: Duration(10 * time.Minute), RequestBurst: 1_000_000, RequestsPerSecond: 0.001}, nil},
		{"slots", Quotas{Slots: -1}, []string{"slots: -1 is negative"}},
		{"memory_pages", Quotas{MemoryPages: 65536}, []string{"memory_pages: 65536 is more than 65535 (64 KiB pages, 4 GiB)"}},
		{"call_timeout negative", Quotas{CallTimeout: Duration(-time.Second)}, []string{"call_timeout: -1s is negative"}},
		{"call_timeout long", Quotas{CallTimeout: Duration(11 * time.Minute)}, []string{"call_timeout: 11m0s is more than 10m0s"}},
		{"modules", Quotas{Modules: -3}, []string{"modules: -3 is negative"}},
		{"module_bytes", Quotas{ModuleBytes: -1}, []string{"module_bytes: -1 is negative"}},
		{"state_bytes", Quotas{StateBytes: -1}, []string{"state_bytes: -1 is negative"}},
		{"retained_checkpoints", Quotas{RetainedCheckpoints: -1}, []string{"retained_checkpoints: -1 is negative"}},
		{"savepoints", Quotas{Savepoints: -1}, []string{"savepoints: -1 is negative"}},
		{"rps negative", Quotas{RequestsPerSecond: -1}, []string{"requests_per_second: -1 is negative"}},
		{"rps tiny", Quotas{RequestsPerSecond: 0.0001}, []string{"requests_per_second: 0.0001 is less than 0.001"}},
		{"rps NaN", Quotas{RequestsPerSecond: math.NaN()}, []string{"requests_per_second: NaN is not a number"}},
		{"rps Inf", Quotas{RequestsPerSecond: math.Inf(1)}, []string{"requests_per_second: +Inf is not a number"}},
		{"burst negative", Quotas{RequestBurst: -1}, []string{"request_burst: -1 is negative"}},
		{"burst huge", Quotas{RequestBurst: 1_000_001}, []string{"request_burst: 1000001 is more than 1000000"}},
		{"several", Quotas{Slots: -1, Savepoints: -2, RequestBurst: -3}, []string{
			"slots: -1 is negative", "savepoints: -2 is negative", "request_burst: -3 is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.q.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a *FieldError", e)
				}
				got = append(got, fe.Field+": "+fe.Problem)
				if fe.Error() != "quota "+fe.Field+": "+fe.Problem {
					t.Errorf("FieldError.Error() = %q", fe.Error())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("field errors\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{`"5s"`, 5 * time.Second, ""},
		{`"1.5s"`, 1500 * time.Millisecond, ""},
		{`"250ms"`, 250 * time.Millisecond, ""},
		{`2000000000`, 2 * time.Second, ""},
		{`0`, 0, ""},
		{`"5 s"`, 0, `duration "5 s": time: unknown unit " s" in duration "5 s"`},
		{`"five"`, 0, `duration "five": time: invalid duration "five"`},
		{`1.5`, 0, `duration 1.5: want a string such as "5s" or integer nanoseconds`},
		{`true`, 0, `duration true: want a string such as "5s" or integer nanoseconds`},
	} {
		var q struct {
			D Duration `json:"d"`
		}
		err := json.Unmarshal([]byte(`{"d":`+tc.in+`}`), &q)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || time.Duration(q.D) != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.in, q.D, err, tc.want)
		}
	}
	// null leaves the value as it was.
	d := Duration(time.Second)
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || d != Duration(time.Second) {
		t.Errorf("null: %v, %v", d, err)
	}
	b, _ := json.Marshal(Duration(1500 * time.Millisecond))
	if string(b) != `"1.5s"` {
		t.Errorf("marshal 1.5s = %s", b)
	}
}

func TestQuotaError(t *testing.T) {
	err := Check(QuotaModules, 10, 10, 1)
	var qe *QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("Check = %v, want *QuotaError", err)
	}
	if want := `quota "modules" exceeded: 10 of 10 used, 1 more requested`; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if *qe != (QuotaError{Quota: "modules", Limit: 10, Used: 10, Requested: 1}) {
		t.Fatalf("QuotaError = %+v", *qe)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		limit, used, requested int64
		over                   bool
	}{
		{10, 0, 10, false},
		{10, 9, 1, false},
		{10, 10, 0, false},
		{10, 10, 1, true},
		{10, 3, 8, true},
		{10, 11, 0, true}, // already over (a lowered quota)
		{0, 0, 1, true},
		{math.MaxInt64, math.MaxInt64 - 1, 1, false},
		{math.MaxInt64, 2, math.MaxInt64, true}, // would overflow if summed
	} {
		err := Check("slots", tc.limit, tc.used, tc.requested)
		if (err != nil) != tc.over {
			t.Errorf("Check(%d, %d, %d) = %v, want over=%v", tc.limit, tc.used, tc.requested, err, tc.over)
		}
	}
}
