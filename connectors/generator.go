package connectors

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// generatorConfig is the config of one datagen field (key or value). Which
// fields are allowed depends on Kind; pointers tell "absent" from zero so
// that a field given for the wrong kind is reported instead of ignored.
type generatorConfig struct {
	Kind    string   `json:"kind"`
	Start   *int64   `json:"start"`
	End     *int64   `json:"end"`
	Min     *int64   `json:"min"`
	Max     *int64   `json:"max"`
	Length  *int     `json:"length"`
	Charset *string  `json:"charset"`
	Value   *string  `json:"value"`
	Values  []string `json:"values"`
}

// Generator defaults, documented in doc.go.
const (
	defaultRandomMax    = math.MaxInt32
	defaultStringLength = 10
	defaultCharset      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	// maxStringLength bounds a random string so a typo cannot ask for
	// gigabytes per record; abi.MaxFieldLen bounds everything anyway.
	maxStringLength = 1 << 20
)

// generator renders one field of record idx (its global index). It must be
// a pure function of (its config, seed, idx): that is what makes the output
// deterministic for a seed and independent of how indices are split among
// subtasks, and what lets subtasks share one generator without locking.
type generator interface {
	appendField(dst []byte, idx uint64) []byte
}

// newGenerator validates c (found at config path `path`, e.g. "config.key")
// and builds its generator. salt separates the random streams of the key and
// the value, so equal configs for both do not produce equal bytes.
func newGenerator(path string, c *generatorConfig, seed int64, salt uint64) (generator, error) {
	allowed := map[string][]string{
		"sequence": {"start", "end"},
		"random":   {"min", "max"},
		"string":   {"length", "charset"},
		"constant": {"value"},
		"uuid":     {},
		"oneOf":    {"values"},
	}
	fields, ok := allowed[c.Kind]
	if !ok {
		return nil, fmt.Errorf("%s.kind: must be one of sequence, random, string, constant, uuid, oneOf, got %q", path, c.Kind)
	}
	set := map[string]bool{
		"start": c.Start != nil, "end": c.End != nil, "min": c.Min != nil, "max": c.Max != nil,
		"length": c.Length != nil, "charset": c.Charset != nil, "value": c.Value != nil, "values": c.Values != nil,
	}
	for _, name := range []string{"start", "end", "min", "max", "length", "charset", "value", "values"} {
		if set[name] && !contains(fields, name) {
			return nil, fmt.Errorf("%s.%s: not used by kind %s", path, name, c.Kind)
		}
	}
	stream := mix64(uint64(seed) ^ salt)
	switch c.Kind {
	case "sequence":
		g := &sequenceGen{}
		if c.Start != nil {
			g.start = *c.Start
		}
		if c.End != nil {
			if *c.End < g.start {
				return nil, fmt.Errorf("%s.end: must be >= start (%d), got %d", path, g.start, *c.End)
			}
			// The cycle length end-start+1 overflows int64 only for
			// [MinInt64, MaxInt64], which cycles like no end at all.
			g.period = uint64(*c.End-g.start) + 1
		}
		return g, nil
	case "random":
		lo, hi := int64(0), int64(defaultRandomMax)
		if c.Min != nil {
			lo = *c.Min
		}
		if c.Max != nil {
			hi = *c.Max
		}
		if hi < lo {
			return nil, fmt.Errorf("%s.max: must be >= min (%d), got %d", path, lo, hi)
		}
		return &randomIntGen{min: lo, span: uint64(hi-lo) + 1, stream: stream}, nil
	case "string":
		n := defaultStringLength
		if c.Length != nil {
			n = *c.Length
		}
		if n < 0 || n > maxStringLength {
			return nil, fmt.Errorf("%s.length: must be between 0 and %d, got %d", path, maxStringLength, n)
		}
		charset := defaultCharset
		if c.Charset != nil {
			charset = *c.Charset
		}
		if charset == "" {
			return nil, fmt.Errorf("%s.charset: must not be empty", path)
		}
		if !utf8.ValidString(charset) {
			return nil, fmt.Errorf("%s.charset: not valid UTF-8", path)
		}
		var chars [][]byte
		seen := map[rune]bool{}
		for _, r := range charset {
			if seen[r] {
				return nil, fmt.Errorf("%s.charset: character %q appears twice (it would be picked twice as often)", path, r)
			}
			seen[r] = true
			chars = append(chars, []byte(string(r)))
		}
		return &stringGen{length: n, chars: chars, ascii: len(chars) == len(charset), charset: []byte(charset), stream: stream}, nil
	case "constant":
		if c.Value == nil {
			return nil, fmt.Errorf("%s.value: required for kind constant", path)
		}
		return constantGen(*c.Value), nil
	case "uuid":
		return uuidGen{stream: stream}, nil
	case "oneOf":
		if len(c.Values) == 0 {
			return nil, fmt.Errorf("%s.values: required and non-empty for kind oneOf", path)
		}
		g := &oneOfGen{stream: stream}
		for _, v := range c.Values {
			g.values = append(g.values, []byte(v))
		}
		return g, nil
	}
	return nil, errors.New("unreachable")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// mix64 is the SplitMix64 finaliser: a bijection on uint64 whose outputs
// pass statistical tests even for consecutive inputs, so random values can be
// computed from (seed, index) directly instead of from a sequential state.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// random returns the j-th random word of record idx in stream.
func random(stream, idx, j uint64) uint64 {
	return mix64(mix64(stream^idx) + j*0x9e3779b97f4a7c15)
}

// below maps a uniform 64-bit word to [0, n) by multiply-high (Lemire); the
// bias is at most n/2^64, negligible for generated test data.
func below(r, n uint64) uint64 {
	hi, _ := bits.Mul64(r, n)
	return hi
}

// sequenceGen renders start+idx in decimal, cycling through [start, end]
// when an end is set.
type sequenceGen struct {
	start  int64
	period uint64 // 0: no end
}

func (g *sequenceGen) appendField(dst []byte, idx uint64) []byte {
	if g.period != 0 {
		idx %= g.period
	}
	return strconv.AppendInt(dst, g.start+int64(idx), 10)
}

// randomIntGen renders a uniform integer in [min, min+span) in decimal.
type randomIntGen struct {
	min    int64
	span   uint64 // 0 means the whole int64 range (span 2^64 overflowed)
	stream uint64
}

func (g *randomIntGen) appendField(dst []byte, idx uint64) []byte {
	r := random(g.stream, idx, 0)
	if g.span != 0 {
		r = below(r, g.span)
	}
	return strconv.AppendInt(dst, g.min+int64(r), 10)
}

// stringGen renders length characters drawn uniformly from a charset.
type stringGen struct {
	length  int
	chars   [][]byte // each character's UTF-8 bytes
	ascii   bool     // every character is one byte: use charset directly
	charset []byte
	stream  uint64
}

func (g *stringGen) appendField(dst []byte, idx uint64) []byte {
	n := uint64(len(g.chars))
	// A wyrand stream seeded from (stream, idx): about a nanosecond per
	// 64-bit word. Each word yields two 32-bit draws; mapping a 32-bit draw
	// to [0, n) by multiply-high keeps the bias below n/2^32.
	state := mix64(g.stream ^ idx)
	next := func() uint64 {
		state += 0xa0761d6478bd642f
		hi, lo := bits.Mul64(state, state^0xe7037ed1a0b428db)
		return hi ^ lo
	}
	if !g.ascii {
		var word uint64
		for i := 0; i < g.length; i++ {
			if i%2 == 0 {
				word = next()
			}
			dst = append(dst, g.chars[((word&0xffffffff)*n)>>32]...)
			word >>= 32
		}
		return dst
	}
	start := len(dst)
	dst = slices.Grow(dst, g.length)[:start+g.length]
	out, cs := dst[start:], g.charset
	i := 0
	for ; i+1 < len(out); i += 2 {
		w := next()
		out[i] = cs[((w&0xffffffff)*n)>>32]
		out[i+1] = cs[((w>>32)*n)>>32]
	}
	if i < len(out) {
		out[i] = cs[((next()&0xffffffff)*n)>>32]
	}
	return dst
}

// constantGen renders the same bytes for every record.
type constantGen []byte

func (g constantGen) appendField(dst []byte, _ uint64) []byte { return append(dst, g...) }

// uuidGen renders a random version-4 UUID in its 36-character text form.
// Its 122 random bits come from the seed and the index, so it is unique per
// record only with overwhelming probability, as real UUIDs are.
type uuidGen struct{ stream uint64 }

func (g uuidGen) appendField(dst []byte, idx uint64) []byte {
	var b [16]byte
	hi, lo := random(g.stream, idx, 0), random(g.stream, idx, 1)
	for i := 0; i < 8; i++ {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// oneOfGen renders one of a list of values, picked uniformly.
type oneOfGen struct {
	values [][]byte
	stream uint64
}

func (g *oneOfGen) appendField(dst []byte, idx uint64) []byte {
	return append(dst, g.values[below(random(g.stream, idx, 0), uint64(len(g.values)))]...)
}
