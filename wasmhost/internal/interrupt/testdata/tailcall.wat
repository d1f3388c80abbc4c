;; Tail calls (return_call, return_call_indirect): "sum" adds 1..n without
;; a loop and without growing the stack; "forever" tail-calls itself
;; without end after calling env.started, which only the check at function
;; entry can stop (wazero's own loop-header check never runs).
(module
  (type $acc (func (param i32 i32) (result i32)))
  (import "env" "started" (func $started))
  (table 1 funcref)
  (elem (i32.const 0) func $sum_ind)
  (func $sum_tail (type $acc) (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else (return_call_indirect (type $acc)
        (i32.sub (local.get $n) (i32.const 1)) (i32.add (local.get $acc) (local.get $n)) (i32.const 0)))))
  (func $sum_ind (type $acc) (param $n i32) (param $acc i32) (result i32)
    (return_call $sum_tail (local.get $n) (local.get $acc)))
  (func (export "sum") (param $n i32) (result i32)
    (return_call $sum_tail (local.get $n) (i32.const 0)))
  (func $forever (param $n i64) (result i64)
    (return_call $forever (i64.add (local.get $n) (i64.const 1))))
  (func (export "forever") (result i64)
    (call $started)
    (return_call $forever (i64.const 0))))
