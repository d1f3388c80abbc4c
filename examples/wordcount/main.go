// Command wordcount is the Weir word-count module: two operators that count
// the words of text lines.
//
//   - split (not keyed): splits each record's value, a line of text, into
//     lower-case words — runs of Unicode letters and digits — and emits
//     key=word, value=word for each.
//   - count (keyed by word): keeps a running count per word in keyed state
//     and emits key=word, value=the count in decimal, for every word.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o wordcount.wasm .
package main

import (
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/weirstream/weir/sdk"
	"github.com/weirstream/weir/sdk/codec"
)

// split emits the words of a line. word is reused: no allocation per word.
type split struct{ word []byte }

func (s *split) Process(ctx *sdk.Context, r sdk.Record) error {
	line := r.Value
	s.word = s.word[:0]
	for i := 0; i < len(line); {
		c, size := rune(line[i]), 1
		if c >= utf8.RuneSelf {
			c, size = utf8.DecodeRune(line[i:])
		}
		i += size
		switch {
		case c < utf8.RuneSelf && ('a' <= c && c <= 'z' || '0' <= c && c <= '9'):
			s.word = append(s.word, byte(c))
		case c < utf8.RuneSelf && 'A' <= c && c <= 'Z':
			s.word = append(s.word, byte(c)+'a'-'A')
		case c >= utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c)):
			s.word = utf8.AppendRune(s.word, unicode.ToLower(c))
		default:
			s.emit(ctx)
		}
	}
	s.emit(ctx)
	return nil
}

func (s *split) emit(ctx *sdk.Context) {
	if len(s.word) > 0 {
		ctx.Emit(s.word, s.word)
		s.word = s.word[:0]
	}
}

// count keeps the number of times each word was seen.
type count struct {
	n   *sdk.ValueState[int64]
	buf []byte
}

func (c *count) Open(ctx *sdk.Context) (err error) {
	c.n, err = sdk.NewValueState(ctx, "count", codec.Int64)
	return err
}

func (c *count) Process(ctx *sdk.Context, r sdk.Record) error {
	n, _, err := c.n.Get()
	if err != nil {
		return err
	}
	n++
	if err := c.n.Set(n); err != nil {
		return err
	}
	c.buf = strconv.AppendInt(c.buf[:0], n, 10)
	ctx.Emit(r.Key, c.buf)
	return nil
}

func init() {
	sdk.Export("split", func() sdk.Operator { return &split{} })
	sdk.Export("count", func() sdk.Operator { return &count{} }, sdk.Keyed())
}

func main() {}
