package interrupt

import (
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// Flag returns the interrupt flag of an instance of an instrumented module:
// Set(1) interrupts the instance's running (or next) call, Set(0) re-arms
// it. Get() == 1 after a call failed with an unreachable trap tells an
// interruption from a genuine trap.
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
