;; Imported and defined globals: after instrumentation every global.get and
;; global.set must still reach the same global (the flag is appended after
;; them all, index 2 + 6 = 8).
(module
  (import "env" "imm" (global $imm i32))
  (import "env" "mut" (global $mut (mut i64)))
  (global $a (mut i32) (i32.const 41))
  (global $b i64 (i64.const -5))
  (global $c f32 (f32.const 1.5))
  (global $d i32 (global.get $imm))
  (global $f f64 (f64.const -2.25))
  (global $e (mut i32) (i32.const 0))
  (func (export "imm") (result i32) (global.get $imm))
  (func (export "mut") (result i64) (global.get $mut))
  (func (export "a") (result i32) (global.get $a))
  (func (export "b") (result i64) (global.get $b))
  (func (export "c") (result f32) (global.get $c))
  (func (export "d") (result i32) (global.get $d))
  (func (export "f") (result f64) (global.get $f))
  ;; Adds n to $e and to the imported $mut, one at a time.
  (func (export "count") (param $n i32) (result i32)
    (loop $l
      (if (local.get $n)
        (then
          (global.set $e (i32.add (global.get $e) (i32.const 1)))
          (global.set $mut (i64.add (global.get $mut) (i64.const 1)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $l))))
    (global.get $e))
  (export "exported_a" (global $a)))
