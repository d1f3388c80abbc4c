package interrupt

import (
	"fmt"
	"math"
)

// codePlan is the result of decoding the code section: where each body is
// and where checks go.
type codePlan struct {
	count  uint32
	bodies []body
	// points holds, body after body, the offsets (in the input) where a
	// check is inserted after a loop's block type.
	points []int
	checks int // number of checks, entry checks included
}

type body struct {
	start, end int  // the body after its size: locals, then instructions
	instr      int  // offset of the first instruction
	loops      int  // number of entries of points that belong to this body
	entry      bool // a check is inserted at the first instruction
}

// parse decodes every function body of the code section b[start:].
// importedFuncs turns code entry numbers into function indices for error
// messages.
func (c *codePlan) parse(b []byte, start int, importedFuncs uint32) error {
	count, i, err := readCount(b, start, "function body")
	if err != nil {
		return err
	}
	// Every body takes at least two bytes (size, end): a cheap bound that
	// keeps a forged count from reserving memory.
	if uint64(count) > uint64(len(b)-i)/2 {
		return malformed(start, "%d function bodies in a %d-byte code section", count, len(b)-start)
	}
	c.count = count
	c.bodies = make([]body, 0, count)
	var w walker
	for k := uint32(0); k < count; k++ {
		size, next, ok := readU32(b, i)
		if !ok {
			return malformed(i, "bad size of function body %d", k)
		}
		if uint64(size) > uint64(len(b)-next) {
			return malformed(i, "function body %d of %d bytes runs past the end of the code section", k, size)
		}
		bd := body{start: next, end: next + int(size)}
		before := len(c.points)
		if err := w.walk(b[:bd.end], &bd, &c.points); err != nil {
			return fmt.Errorf("function %d (code entry %d): %w", uint64(importedFuncs)+uint64(k), k, err)
		}
		bd.loops = len(c.points) - before
		c.checks += bd.loops
		if bd.entry {
			c.checks++
		}
		c.bodies = append(c.bodies, bd)
		i = bd.end
	}
	if i != len(b) {
		return malformed(i, "%d bytes after the last function body", len(b)-i)
	}
	return nil
}

// emit appends the code section with the checks inserted.
func (c *codePlan) emit(out, in, check []byte) []byte {
	checkLen := len(check)
	size := uint64(sizeU32(c.count))
	for _, bd := range c.bodies {
		n := bd.newSize(checkLen)
		size += uint64(sizeU32(n)) + uint64(n)
	}
	out = append(out, secCode)
	out = appendU32(out, uint32(size))
	out = appendU32(out, c.count)
	points := c.points
	for _, bd := range c.bodies {
		out = appendU32(out, bd.newSize(checkLen))
		from := bd.start
		if bd.entry {
			out = append(out, in[from:bd.instr]...)
			out = append(out, check...)
			from = bd.instr
		}
		for _, p := range points[:bd.loops] {
			out = append(out, in[from:p]...)
			out = append(out, check...)
			from = p
		}
		points = points[bd.loops:]
		out = append(out, in[from:bd.end]...)
	}
	return out
}

func (bd *body) newSize(checkLen int) uint32 {
	n := bd.loops
	if bd.entry {
		n++
	}
	return uint32(bd.end - bd.start + n*checkLen)
}

// tooBig reports whether the instrumented code section or one of its
// bodies would not fit the format's u32 sizes.
func (c *codePlan) tooBig(checkLen int) bool {
	size := uint64(5)
	for _, bd := range c.bodies {
		n := uint64(bd.end-bd.start) + uint64(bd.loops+1)*uint64(checkLen)
		if n > math.MaxUint32 {
			return true
		}
		size += 5 + n
	}
	return size > math.MaxUint32
}
