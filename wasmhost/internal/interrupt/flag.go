package interrupt

import (
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// Flag returns the interrupt flag of an instance of an instrumented module:
// Set(1), from any goroutine, interrupts the instance's running (or next)
// call with an unreachable trap; Set(0) re-arms it. To tell an
// interruption from a genuine trap, the host records its own Set(1) in
// state it synchronises (an atomic): Get from another goroutine than the
// one that called Set is a data race in Go's memory model.
func Flag(m api.Module) (api.MutableGlobal, error) {
	g := m.ExportedGlobal(ExportName)
	if g == nil {
		return nil, fmt.Errorf("interrupt: module %q exports no global %q: it is not instrumented", m.Name(), ExportName)
	}
	mg, ok := g.(api.MutableGlobal)
	if !ok || g.Type() != api.ValueTypeI32 {
		return nil, fmt.Errorf("interrupt: module %q: export %q is not a mutable i32 global", m.Name(), ExportName)
	}
	return mg, nil
}
