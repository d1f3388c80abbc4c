package state

import (
	"fmt"

	"github.com/weirstream/weir/abi"
)

// registry maps (operator, name) to a state ID and remembers each ID's kind.
// IDs are dense, starting at 0, so kinds is indexed by ID; both backends use it
// (Pebble also persists it, see pebbleRegistryKey).
type registry struct {
	ids   map[registryName]ID
	kinds []abi.StateKind // by ID; 0 for IDs that are not (yet) known
}

type registryName struct{ operator, name string }

func newRegistry() registry {
	return registry{ids: make(map[registryName]ID)}
}

// lookup returns the ID of (operator, name) if it is registered with kind,
// ok=false if it is not registered, or an ErrKindMismatch error.
func (r *registry) lookup(operator, name string, kind abi.StateKind) (ID, bool, error) {
	if err := checkKind(kind); err != nil {
		return 0, false, fmt.Errorf("state: register %q of operator %q: %w", name, operator, err)
	}
	id, ok := r.ids[registryName{operator, name}]
	if !ok {
		return 0, false, nil
	}
	if have := r.kinds[id]; have != kind {
		return 0, false, fmt.Errorf("state: register %q of operator %q as %v: it is %v: %w (%w)",
			name, operator, kind, have, ErrKindMismatch, abi.ErrInvalid)
	}
	return id, true, nil
}

// next is the ID the next new registration gets.
func (r *registry) next() ID { return ID(len(r.kinds)) }

// add records id for (operator, name); id may leave gaps (a store reopened
// after a crash between two registrations never does, but add tolerates it).
func (r *registry) add(operator, name string, kind abi.StateKind, id ID) {
	r.ids[registryName{operator, name}] = id
	for ID(len(r.kinds)) <= id {
		r.kinds = append(r.kinds, 0)
	}
	r.kinds[id] = kind
}

// kind returns the kind of id, or an ErrUnknownState error.
func (r *registry) kind(id ID) (abi.StateKind, error) {
	if int(id) < len(r.kinds) {
		if k := r.kinds[id]; k != 0 {
			return k, nil
		}
	}
	return 0, fmt.Errorf("state id %d: %w", id, ErrUnknownState)
}

func checkKind(kind abi.StateKind) error {
	switch kind {
	case abi.StateValue, abi.StateMap, abi.StateList:
		return nil
	}
	return fmt.Errorf("kind %d: %w", kind, ErrWrongKind)
}

// wrongKind describes a call that does not apply to a state of kind k.
func wrongKind(op string, id ID, k abi.StateKind) error {
	return fmt.Errorf("state: %s on %v state %d: %w", op, k, id, ErrWrongKind)
}

// infos lists the registered states in ID order (IDs that are gaps are
// left out), for snapshots.
func (r *registry) infos() []StateInfo {
	byID := make([]StateInfo, len(r.kinds))
	for n, id := range r.ids {
		byID[id] = StateInfo{Operator: n.operator, Name: n.name, Kind: r.kinds[id]}
	}
	out := byID[:0]
	for _, s := range byID {
		if s.Kind != 0 {
			out = append(out, s)
		}
	}
	return out
}
