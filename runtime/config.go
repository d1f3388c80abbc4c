package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DecodeConfig decodes a node's JSON config into v (a pointer to a struct
// with json tags), rejecting unknown fields. Errors are prefixed "config."
// and name the field: `config.rate: cannot use "x" as number`.
func DecodeConfig(config []byte, v any) error {
	if len(bytes.TrimSpace(config)) == 0 || string(bytes.TrimSpace(config)) == "null" {
		config = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("config.%s: cannot use %s as %s", te.Field, te.Value, te.Type)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("config.%s: unknown field", strings.Trim(msg, `"`))
	}
	return fmt.Errorf("config: %v", err)
}

// Duration is a time.Duration that decodes from a Go duration string
// ("250ms", "5s") or a number of milliseconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. \"500ms\", \"5s\")", s)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("invalid duration %s (want e.g. \"500ms\" or milliseconds)", b)
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler with the same syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration is a string like \"500ms\" or a number of milliseconds", n.Line)
	}
	b := []byte(n.Value)
	if n.Tag == "!!str" {
		b, _ = json.Marshal(n.Value)
	}
	if err := d.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func timeDuration(d Duration) time.Duration { return time.Duration(d) }
