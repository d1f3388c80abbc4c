package sdk

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/weirstream/weir/abi"
	"github.com/weirstream/weir/sdk/codec"
	"github.com/weirstream/weir/sdk/internal/fixed"
)

// Keyed state lives in the host, scoped by operator, state name and key:
// every call refers to the current key (the record's or the timer's), so
// state can only be used in Process and OnTimer. The host snapshots it in
// checkpoints and redistributes it by key group on rescaling; the operator
// keeps nothing in memory that must survive a failure.
//
// State is declared in Open, by name. The name identifies the state across
// restarts and module upgrades: renaming a state loses its contents, and
// changing its codec must keep reading the old encoding.

// stateRef is what every state handle holds.
type stateRef struct {
	in   *instance
	id   int32
	name string
	kind abi.StateKind
}

func register(ctx *Context, name string, kind abi.StateKind) (stateRef, error) {
	in := ctx.in
	switch {
	case name == "":
		return stateRef{}, fmt.Errorf("sdk: %s state with an empty name", kind)
	case in.phase != phaseOpen:
		return stateRef{}, fmt.Errorf("sdk: %s state %q: state is declared in Open, not %s: %w", kind, name, in.phase, abi.ErrNotAllowed)
	case !in.reg.info.Keyed():
		return stateRef{}, fmt.Errorf("sdk: %s state %q: operator %q is not keyed (export it with sdk.Keyed()): %w", kind, name, in.reg.info.Name, abi.ErrNotKeyed)
	}
	n := in.h.stateRegister(name, kind)
	if n < 0 {
		return stateRef{}, fmt.Errorf("sdk: register %s state %q: %w", kind, name, abi.Errno(n))
	}
	if len(in.getBuf) == 0 {
		// Allocated here rather than on first use, so that the fast paths
		// of Get need not check.
		in.getBuf = make([]byte, initialGetBuf)
	}
	return stateRef{in: in, id: n, name: name, kind: kind}, nil
}

// fixedLayout returns the layout of c if it is one of package codec's
// fixed-width number codecs for a T of that width, or the zero Layout.
func fixedLayout[T any](c codec.Codec[T]) fixed.Layout {
	f, ok := c.(fixed.Codec)
	if !ok {
		return fixed.Layout{}
	}
	l := f.FixedLayout(fixed.Token{})
	var zero T
	if (l.Width != 4 && l.Width != 8) || uintptr(l.Width) != unsafe.Sizeof(zero) {
		return fixed.Layout{} // e.g. codec.Int for an int of 4 bytes
	}
	return l
}

// bitsOf returns the bits of *v, a number of width bytes (fixedLayout
// guarantees it).
func bitsOf[T any](v *T, width uint8) uint64 {
	if width == 8 {
		return *(*uint64)(unsafe.Pointer(v))
	}
	return uint64(*(*uint32)(unsafe.Pointer(v)))
}

// fromBits is the inverse of bitsOf.
func fromBits[T any](u uint64, width uint8) (v T) {
	if width == 8 {
		*(*uint64)(unsafe.Pointer(&v)) = u
	} else {
		*(*uint32)(unsafe.Pointer(&v)) = uint32(u)
	}
	return v
}

// check returns an error if the state cannot be used now.
func (s *stateRef) check(op string) error {
	if !s.in.ctx.hasKey {
		return fmt.Errorf("sdk: %s state %q: %s: %w", s.kind, s.name, op, ErrNoKey)
	}
	return nil
}

func (s *stateRef) fail(op string, err error) error {
	return fmt.Errorf("sdk: %s state %q: %s: %w", s.kind, s.name, op, err)
}

// result turns a host result into an error.
func (s *stateRef) result(op string, n int32) error {
	if n < 0 {
		return s.fail(op, abi.Errno(n))
	}
	return nil
}

// get reads a cell of the current key into the instance's get buffer. The
// buffer has a fixed size; a bigger value makes a second call with a buffer
// of the size the first call reported (ABI: state_get copies only if the
// value fits).
func (s *stateRef) get(sub []byte) (value []byte, ok bool, err error) {
	in := s.in
	buf := in.getBuf
	n := in.stateGet(s.id, in.ctx.key, sub, buf)
	if n >= 0 && int(n) > len(buf) {
		buf = make([]byte, n)
		if n <= maxKeptBuffer {
			in.getBuf = buf
		}
		want := n
		n = in.stateGet(s.id, in.ctx.key, sub, buf)
		if n > want {
			return nil, false, s.fail("get", fmt.Errorf("value grew from %d to %d bytes between two calls", want, n))
		}
	}
	switch {
	case n == int32(abi.ErrNotFound):
		return nil, false, nil
	case n < 0:
		return nil, false, s.fail("get", abi.Errno(n))
	}
	return buf[:n], true, nil
}

// exists reports whether a cell of the current key exists without copying
// its value (an out capacity of 0 only asks for the length).
func (s *stateRef) exists(sub []byte) (bool, error) {
	n := s.in.stateGet(s.id, s.in.ctx.key, sub, nil)
	switch {
	case n == int32(abi.ErrNotFound):
		return false, nil
	case n < 0:
		return false, s.fail("get", abi.Errno(n))
	}
	return true, nil
}

// scan reads every entry of the current key into a buffer taken from the
// instance's free list; release gives it back. Scans may nest (a Range
// callback may Range again), so each takes its own buffer.
func (s *stateRef) scan() (buf []byte, err error) {
	in := s.in
	if k := len(in.scanBufs); k > 0 {
		buf = in.scanBufs[k-1]
		in.scanBufs = in.scanBufs[:k-1]
	} else {
		buf = make([]byte, initialScanBuf)
	}
	buf = buf[:cap(buf)]
	n := in.h.stateScan(s.id, in.ctx.key, buf)
	if n >= 0 && int(n) > len(buf) {
		s.release(buf)
		buf = make([]byte, n)
		want := n
		n = in.h.stateScan(s.id, in.ctx.key, buf)
		if n > want {
			s.release(buf)
			return nil, s.fail("scan", fmt.Errorf("entries grew from %d to %d bytes between two calls", want, n))
		}
	}
	if n < 0 {
		s.release(buf)
		return nil, s.fail("scan", abi.Errno(n))
	}
	return buf[:n], nil
}

func (s *stateRef) release(buf []byte) {
	if cap(buf) <= maxKeptBuffer {
		s.in.scanBufs = append(s.in.scanBufs, buf[:0])
	}
}

// encode encodes v with c, whose layout is fx, into the instance's value
// buffers (key selects the sub-key buffers instead). The result is valid
// until the next encode with the same buffers. Fixed-width numbers are
// encoded inline, without a call through the Codec interface.
func encode[T any](in *instance, key bool, fx fixed.Layout, c codec.Codec[T], v T) ([]byte, error) {
	if fx.Width != 0 {
		b := in.num[:fx.Width]
		if key {
			b = in.knum[:fx.Width]
		}
		fx.Put(b, fx.Encode(bitsOf(&v, fx.Width)))
		return b, nil
	}
	w, back := &in.w, &in.wbuf
	if key {
		w, back = &in.kw, &in.kwbuf
	}
	w.Reset((*back)[:0])
	c.Encode(w, v)
	b := w.Buffer()
	if cap(b) <= maxKeptBuffer {
		*back = b[:0]
	}
	if err := w.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

// decode decodes b, which must hold exactly one value, with c, whose
// layout is fx (inline for fixed-width numbers of the right size; a wrong
// size is reported by c).
func decode[T any](in *instance, fx fixed.Layout, c codec.Codec[T], b []byte) (T, error) {
	if fx.Width != 0 && len(b) == int(fx.Width) {
		return fromBits[T](fx.Decode(fx.Get(b)), fx.Width), nil
	}
	in.r.Reset(b)
	v := c.Decode(&in.r)
	err := in.r.Finish()
	in.r.Reset(nil)
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// ValueState holds one value of type T per key.
type ValueState[T any] struct {
	s  stateRef
	c  codec.Codec[T]
	fx fixed.Layout // c's layout if it is a fixed-width number codec
	// int64Bits: fx is an 8-byte integer layout (Int64, Uint64, Int,
	// Uint), whose Get and Set take the hot path.
	int64Bits bool
}

// NewValueState declares value state name with codec c. Call it in Open.
func NewValueState[T any](ctx *Context, name string, c codec.Codec[T]) (*ValueState[T], error) {
	s, err := register(ctx, name, abi.StateValue)
	if err != nil {
		return nil, err
	}
	fx := fixedLayout(c)
	return &ValueState[T]{s: s, c: c, fx: fx, int64Bits: fx.Width == 8 && !fx.Float}, nil
}

// Name is the state's name.
func (v *ValueState[T]) Name() string { return v.s.name }

// Get returns the current key's value; ok is false (and value the zero T)
// when there is none.
func (v *ValueState[T]) Get() (value T, ok bool, err error) {
	in := v.s.in
	if !v.int64Bits || !in.ctx.hasKey || (wasmBuild && !in.direct) {
		return v.get()
	}
	// The hot path of ValueState[int64] (and uint64, int, uint): one host
	// call and an inline decode; in the Wasm build the call goes straight
	// to the import. Anything unusual (an error, a value of the wrong
	// size) is reported by the general path.
	var n int32
	if wasmBuild {
		n = importStateGet(v.s.id, in.ctx.key, nil, in.getBuf)
	} else {
		n = in.h.stateGet(v.s.id, in.ctx.key, nil, in.getBuf)
	}
	if n == 8 {
		u := binary.BigEndian.Uint64(in.getBuf) ^ v.fx.Flip
		return *(*T)(unsafe.Pointer(&u)), true, nil
	}
	if n == int32(abi.ErrNotFound) {
		return value, false, nil
	}
	return v.get()
}

// get is Get for any codec.
func (v *ValueState[T]) get() (value T, ok bool, err error) {
	if err = v.s.check("get"); err != nil {
		return value, false, err
	}
	b, ok, err := v.s.get(nil)
	if !ok || err != nil {
		return value, false, err
	}
	if value, err = decode(v.s.in, v.fx, v.c, b); err != nil {
		return value, false, v.s.fail("decode", err)
	}
	return value, true, nil
}

// Exists reports whether the current key has a value, without reading it.
func (v *ValueState[T]) Exists() (bool, error) {
	if err := v.s.check("get"); err != nil {
		return false, err
	}
	return v.s.exists(nil)
}

// Set stores value for the current key.
func (v *ValueState[T]) Set(value T) error {
	in := v.s.in
	if !v.int64Bits || !in.ctx.hasKey || (wasmBuild && !in.direct) {
		return v.set(value)
	}
	// The hot path, as in Get.
	binary.BigEndian.PutUint64(in.num[:], *(*uint64)(unsafe.Pointer(&value))^v.fx.Flip)
	var n int32
	if wasmBuild {
		n = importStatePut(v.s.id, in.ctx.key, nil, in.num[:])
	} else {
		n = in.h.statePut(v.s.id, in.ctx.key, nil, in.num[:])
	}
	if n < 0 {
		return v.s.fail("set", abi.Errno(n))
	}
	return nil
}

// set is Set for any codec.
func (v *ValueState[T]) set(value T) error {
	if err := v.s.check("set"); err != nil {
		return err
	}
	in := v.s.in
	b, err := encode(in, false, v.fx, v.c, value)
	if err != nil {
		return v.s.fail("encode", err)
	}
	return v.s.result("set", in.statePut(v.s.id, in.ctx.key, nil, b))
}

// Clear deletes the current key's value.
func (v *ValueState[T]) Clear() error {
	if err := v.s.check("clear"); err != nil {
		return err
	}
	return v.s.result("clear", v.s.in.stateDelete(v.s.id, v.s.in.ctx.key, nil))
}

// MapState holds a map from K to V per key. Range visits entries in the byte
// order of their encoded map keys, which for the numeric codecs of package
// codec is numeric order.
type MapState[K, V any] struct {
	s        stateRef
	kc       codec.Codec[K]
	vc       codec.Codec[V]
	kfx, vfx fixed.Layout // layouts of kc and vc (see fixedLayout)
}

// NewMapState declares map state name with codecs for map keys and values.
// Call it in Open.
func NewMapState[K, V any](ctx *Context, name string, keys codec.Codec[K], values codec.Codec[V]) (*MapState[K, V], error) {
	s, err := register(ctx, name, abi.StateMap)
	if err != nil {
		return nil, err
	}
	return &MapState[K, V]{s: s, kc: keys, vc: values, kfx: fixedLayout(keys), vfx: fixedLayout(values)}, nil
}

// Name is the state's name.
func (m *MapState[K, V]) Name() string { return m.s.name }

func (m *MapState[K, V]) subKey(op string, k K) ([]byte, error) {
	if err := m.s.check(op); err != nil {
		return nil, err
	}
	sub, err := encode(m.s.in, true, m.kfx, m.kc, k)
	if err != nil {
		return nil, m.s.fail("encode map key", err)
	}
	return sub, nil
}

// Get returns the value of map key k for the current key; ok is false when
// there is none.
func (m *MapState[K, V]) Get(k K) (value V, ok bool, err error) {
	sub, err := m.subKey("get", k)
	if err != nil {
		return value, false, err
	}
	b, ok, err := m.s.get(sub)
	if !ok || err != nil {
		return value, false, err
	}
	if value, err = decode(m.s.in, m.vfx, m.vc, b); err != nil {
		return value, false, m.s.fail("decode", err)
	}
	return value, true, nil
}

// Contains reports whether map key k exists for the current key, without
// reading its value.
func (m *MapState[K, V]) Contains(k K) (bool, error) {
	sub, err := m.subKey("get", k)
	if err != nil {
		return false, err
	}
	return m.s.exists(sub)
}

// Put sets map key k to value for the current key.
func (m *MapState[K, V]) Put(k K, value V) error {
	sub, err := m.subKey("put", k)
	if err != nil {
		return err
	}
	b, err := encode(m.s.in, false, m.vfx, m.vc, value)
	if err != nil {
		return m.s.fail("encode", err)
	}
	return m.s.result("put", m.s.in.statePut(m.s.id, m.s.in.ctx.key, sub, b))
}

// Delete removes map key k for the current key (no error if absent).
func (m *MapState[K, V]) Delete(k K) error {
	sub, err := m.subKey("delete", k)
	if err != nil {
		return err
	}
	return m.s.result("delete", m.s.in.stateDelete(m.s.id, m.s.in.ctx.key, sub))
}

// Range calls fn for every entry of the current key in ascending order of
// encoded map keys. fn sees a snapshot taken when Range started: it may
// read, put and delete entries (and Range again). An error from fn stops
// the iteration and is returned as is.
func (m *MapState[K, V]) Range(fn func(k K, v V) error) error {
	if err := m.s.check("range"); err != nil {
		return err
	}
	buf, err := m.s.scan()
	if err != nil {
		return err
	}
	defer m.s.release(buf)
	r := abi.NewScanReader(buf)
	for {
		sub, val, ok := r.Next()
		if !ok {
			break
		}
		k, err := decode(m.s.in, m.kfx, m.kc, sub)
		if err != nil {
			return m.s.fail("decode map key", err)
		}
		v, err := decode(m.s.in, m.vfx, m.vc, val)
		if err != nil {
			return m.s.fail("decode", err)
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return m.s.fail("scan", err)
	}
	return nil
}

// Clear removes every entry of the current key.
func (m *MapState[K, V]) Clear() error {
	if err := m.s.check("clear"); err != nil {
		return err
	}
	return m.s.result("clear", m.s.in.h.stateClear(m.s.id, m.s.in.ctx.key))
}

// ListState holds a list of T per key, in append order.
type ListState[T any] struct {
	s  stateRef
	c  codec.Codec[T]
	fx fixed.Layout // c's layout (see fixedLayout)
}

// NewListState declares list state name with codec c. Call it in Open.
func NewListState[T any](ctx *Context, name string, c codec.Codec[T]) (*ListState[T], error) {
	s, err := register(ctx, name, abi.StateList)
	if err != nil {
		return nil, err
	}
	return &ListState[T]{s: s, c: c, fx: fixedLayout(c)}, nil
}

// Name is the state's name.
func (l *ListState[T]) Name() string { return l.s.name }

// Append adds value at the end of the current key's list.
func (l *ListState[T]) Append(value T) error {
	if err := l.s.check("append"); err != nil {
		return err
	}
	b, err := encode(l.s.in, false, l.fx, l.c, value)
	if err != nil {
		return l.s.fail("encode", err)
	}
	return l.s.result("append", l.s.in.h.stateAppend(l.s.id, l.s.in.ctx.key, b))
}

// Range calls fn for every element of the current key's list in append
// order, on a snapshot taken when Range started. An error from fn stops the
// iteration and is returned as is.
func (l *ListState[T]) Range(fn func(v T) error) error {
	if err := l.s.check("range"); err != nil {
		return err
	}
	buf, err := l.s.scan()
	if err != nil {
		return err
	}
	defer l.s.release(buf)
	r := abi.NewScanReader(buf)
	for {
		_, val, ok := r.Next()
		if !ok {
			break
		}
		v, err := decode(l.s.in, l.fx, l.c, val)
		if err != nil {
			return l.s.fail("decode", err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return l.s.fail("scan", err)
	}
	return nil
}

// Values returns the current key's list (nil when empty).
func (l *ListState[T]) Values() ([]T, error) {
	var out []T
	err := l.Range(func(v T) error {
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Update replaces the current key's list with values.
func (l *ListState[T]) Update(values []T) error {
	if err := l.Clear(); err != nil {
		return err
	}
	for _, v := range values {
		if err := l.Append(v); err != nil {
			return err
		}
	}
	return nil
}

// Clear empties the current key's list.
func (l *ListState[T]) Clear() error {
	if err := l.s.check("clear"); err != nil {
		return err
	}
	return l.s.result("clear", l.s.in.h.stateClear(l.s.id, l.s.in.ctx.key))
}
