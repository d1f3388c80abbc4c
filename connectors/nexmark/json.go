package nexmark

import (
	"fmt"
	"strconv"
	"time"

	"github.com/weirstream/weir/abi/row"
)

// AppendJSON appends event n (n >= 0) as one JSON object, the way the
// reference's Kafka pipeline writes it (its ddl_kafka.sql table written by
// Flink's "json" format):
//
//	{"event_type":2,"person":null,"auction":null,"bid":{"auction":1000,
//	"bidder":2001,"price":32530001,"channel":"Google","url":"https://...",
//	"dateTime":"2026-01-01 00:00:00.001","extra":"..."}}
//
// Members come in the table's column order; the two entities the event
// does not hold are null; field names are the reference's (camelCase, as
// in Event's row layout). Timestamps are strings in Flink's SQL format,
// UTC: "yyyy-MM-dd HH:mm:ss" followed by the milliseconds without trailing
// zeros (".001", ".12", ".5", nothing for whole seconds), which is what
// the reference's TIMESTAMP(3) columns read back. It allocates nothing
// beyond growing dst.
func (g *Generator) AppendJSON(dst []byte, n int64) []byte {
	// Generate the row after dst's end, render it, and move the JSON down
	// over it: one generator for both formats, no scratch buffer.
	start := len(dst)
	dst = g.AppendRow(dst, n)
	end := len(dst)
	dst = appendJSONRow(dst, dst[start:end])
	jsonLen := copy(dst[start:], dst[end:])
	return dst[:start+jsonLen]
}

// appendJSONRow renders an event row as JSON. The row comes from
// AppendRow, so its shape is known; a malformed one is a bug.
func appendJSONRow(dst, b []byte) []byte {
	r := row.NewReader(b)
	t := Type(r.Int())
	dst = append(dst, `{"event_type":`...)
	dst = strconv.AppendInt(dst, int64(t), 10)
	switch t {
	case PersonType:
		dst = append(dst, `,"person":{"id":`...)
		dst = strconv.AppendInt(dst, r.Int(), 10)
		dst = appendJSONString(append(dst, `,"name":`...), r.Bytes())
		dst = appendJSONString(append(dst, `,"emailAddress":`...), r.Bytes())
		dst = appendJSONString(append(dst, `,"creditCard":`...), r.Bytes())
		dst = appendJSONString(append(dst, `,"city":`...), r.Bytes())
		dst = appendJSONString(append(dst, `,"state":`...), r.Bytes())
		dst = appendSQLTimestamp(append(dst, `,"dateTime":`...), r.Int())
		dst = appendJSONString(append(dst, `,"extra":`...), r.Bytes())
		dst = append(dst, `},"auction":null,"bid":null}`...)
	case AuctionType:
		dst = append(dst, `,"person":null,"auction":{"id":`...)
		dst = strconv.AppendInt(dst, r.Int(), 10)
		dst = appendJSONString(append(dst, `,"itemName":`...), r.Bytes())
		dst = appendJSONString(append(dst, `,"description":`...), r.Bytes())
		dst = strconv.AppendInt(append(dst, `,"initialBid":`...), r.Int(), 10)
		dst = strconv.AppendInt(append(dst, `,"reserve":`...), r.Int(), 10)
		dst = appendSQLTimestamp(append(dst, `,"dateTime":`...), r.Int())
		dst = appendSQLTimestamp(append(dst, `,"expires":`...), r.Int())
		dst = strconv.AppendInt(append(dst, `,"seller":`...), r.Int(), 10)
		dst = strconv.AppendInt(append(dst, `,"category":`...), r.Int(), 10)
		dst = appendJSONString(append(dst, `,"extra":`...), r.Bytes())
		dst = append(dst, `},"bid":null}`...)
	default:
		dst = append(dst, `,"person":null,"auction":null,"bid":{"auction":`...)
		dst = strconv.AppendInt(dst, r.Int(), 10)
		dst = strconv.AppendInt(append(dst, `,"bidder":`...), r.Int(), 10)
		dst = strconv.AppendInt(append(dst, `,"price":`...), r.Int(), 10)
		dst = appendJSONString(append(dst, `,"channel":`...), r.Bytes())
		dst = appendJSONString(append(dst, `,"url":`...), r.Bytes())
		dst = appendSQLTimestamp(append(dst, `,"dateTime":`...), r.Int())
		dst = appendJSONString(append(dst, `,"extra":`...), r.Bytes())
		dst = append(dst, `}}`...)
	}
	if !r.Done() {
		panic(fmt.Sprintf("nexmark: generated %s row does not render: %v", t, r.Err()))
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as Jackson (which
// Flink's json format uses) escapes: quote, backslash and control
// characters. Generated strings are ASCII; extra fields do hold
// backslashes.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	// Copy the runs between characters to escape in one append each.
	run := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[run:i]...)
		run = i + 1
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	dst = append(dst, s[run:]...)
	return append(dst, '"')
}

// appendSQLTimestamp appends epoch milliseconds ms as a quoted timestamp
// in Flink's SQL format in UTC (java.time's ISO_LOCAL_DATE, a space,
// HH:mm:ss and the fraction without trailing zeros). Years beyond 9999
// get a '+' as java.time writes them.
func appendSQLTimestamp(dst []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	dst = append(dst, '"')
	if year > 9999 {
		dst = append(dst, '+')
	}
	if year < 0 {
		dst = append(dst, '-')
		year = -year
	}
	dst = appendPadded(dst, year, 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, day, 2)
	dst = append(dst, ' ')
	dst = appendPadded(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, second, 2)
	if frac := t.Nanosecond() / int(time.Millisecond); frac != 0 {
		digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
		n := 3
		for digits[n-1] == '0' {
			n--
		}
		dst = append(dst, '.')
		dst = append(dst, digits[:n]...)
	}
	return append(dst, '"')
}

// appendPadded appends v >= 0 in decimal, zero-padded to width digits.
func appendPadded(dst []byte, v, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v > 0 || width > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	return append(dst, buf[i:]...)
}
