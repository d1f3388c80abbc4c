package connectors

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/weirstream/weir/abi"
)

// outputFormat is how the print and file sinks render a record as one line.
type outputFormat uint8

const (
	formatValue outputFormat = iota // the value
	formatKV                        // key TAB value
	formatJSON                      // {"key":...,"value":...,"timestamp":...}
)

// parseOutputFormat decodes the `format` field of a sink config; empty means
// value.
func parseOutputFormat(s string) (outputFormat, error) {
	switch s {
	case "", "value":
		return formatValue, nil
	case "kv":
		return formatKV, nil
	case "json":
		return formatJSON, nil
	}
	return 0, fmt.Errorf("config.format: must be one of value, kv, json, got %q", s)
}

// appendRecordLine appends one record rendered in format f, newline included.
//
// value and kv escape line breaks so that a record is always exactly one
// line: LF becomes the two bytes `\n`, CR becomes `\r`, and in kv's key TAB
// becomes `\t` (the value may hold tabs: the first TAB separates). Nothing
// else is escaped, backslashes included, so ordinary text and JSON values
// pass through byte for byte; the escaping is therefore not reversible for
// values that contain both raw line breaks and literal `\n`. The json format
// is lossless.
func appendRecordLine(dst []byte, f outputFormat, key, value []byte, ts int64) []byte {
	switch f {
	case formatValue:
		dst = appendLineEscaped(dst, value, false)
	case formatKV:
		dst = appendLineEscaped(dst, key, true)
		dst = append(dst, '\t')
		dst = appendLineEscaped(dst, value, false)
	case formatJSON:
		dst = appendJSONField(dst, `{"key`, key)
		dst = appendJSONField(dst, `,"value`, value)
		dst = append(dst, `,"timestamp":`...)
		if ts == abi.NoTimestamp {
			dst = append(dst, "null"...)
		} else {
			dst = strconv.AppendInt(dst, ts, 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, '\n')
}

// appendJSONField appends `<open>":"text"` for valid UTF-8 b, or
// `<open>Base64":"..."` otherwise; open is the member name without its
// closing quote, so the reader can tell the two apart by the name.
func appendJSONField(dst []byte, open string, b []byte) []byte {
	dst = append(dst, open...)
	if utf8.Valid(b) {
		dst = append(dst, `":`...)
		return appendJSONString(dst, b)
	}
	dst = append(dst, `Base64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendLineEscaped appends b with LF and CR (and TAB when tab is set)
// replaced by their backslash escapes.
func appendLineEscaped(dst, b []byte, tab bool) []byte {
	// Fast path: vectorised searches find nothing to escape in ordinary
	// values, several times faster than the byte loop below.
	if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 && (!tab || bytes.IndexByte(b, '\t') < 0) {
		return append(dst, b...)
	}
	start := 0
	for i, c := range b {
		var esc byte
		switch {
		case c == '\n':
			esc = 'n'
		case c == '\r':
			esc = 'r'
		case c == '\t' && tab:
			esc = 't'
		default:
			continue
		}
		dst = append(dst, b[start:i]...)
		dst = append(dst, '\\', esc)
		start = i + 1
	}
	return append(dst, b[start:]...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends b as a quoted JSON string. Like encoding/json,
// invalid UTF-8 becomes U+FFFD; unlike it, <, > and & are not escaped (the
// output is not meant for HTML).
func appendJSONString(dst, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(b); {
		// Skip runs that need no escaping eight bytes at a time.
		for i+8 <= len(b) && !jsonNeedsEscape8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, b[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, b[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}

// jsonNeedsEscape8 reports whether any of the eight bytes in x is a control
// byte, '"', '\\' or non-ASCII (SWAR: the classic has-zero-byte and
// has-less-than tricks; a false positive only sends the bytes to the slow
// path, and there are no false negatives).
func jsonNeedsEscape8(x uint64) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	less := (x - lsb*0x20) & ^x
	q := x ^ (lsb * '"')
	quote := (q - lsb) & ^q
	bs := x ^ (lsb * '\\')
	backslash := (bs - lsb) & ^bs
	return (less|quote|backslash|x)&msb != 0
}
