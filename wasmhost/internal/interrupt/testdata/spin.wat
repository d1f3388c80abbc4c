;; Guests that never return: each export first calls env.started (so the
;; test knows the call is running) and then spins. "spin" is a bare loop;
;; "spin_calls" is a loop that calls a leaf function; "recurse" has no loop
;; at all: it recurses exponentially (2^62 calls), which only the check at
;; function entry stops. "finite" returns 42, to show an instance can be
;; re-armed after an interruption.
(module
  (import "env" "started" (func $started))
  (func (export "spin") (result i32) (local $i i32)
    (call $started)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))
    (unreachable))
  (func $leaf (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
  (func (export "spin_calls") (result i32) (local $i i32)
    (call $started)
    (loop $l
      (local.set $i (call $leaf (local.get $i)))
      (br $l))
    (unreachable))
  (func $r (param $n i64)
    (if (i64.ne (local.get $n) (i64.const 0))
      (then
        (call $r (i64.sub (local.get $n) (i64.const 1)))
        (call $r (i64.sub (local.get $n) (i64.const 1))))))
  (func (export "recurse") (result i32)
    (call $started)
    (call $r (i64.const 62))
    (i32.const 0))
  (func (export "finite") (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 42))))
    (local.get $i)))
