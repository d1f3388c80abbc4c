;; echo: the smallest valid Weir module. Operator "echo" emits its input
;; batch unchanged (valid when the batch holds only records), so it measures
;; the host's own per-call cost.
(module
  (import "weir" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; operator table at 16: count 1, "echo", flags 0 (16 bytes)
  (data (i32.const 16) "\01\00\00\00\04\00\00\00echo\00\00\00\00")
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (func (export "weir_operators") (result i64) (i64.const 0x0000001000000010))
  ;; the buffer starts at 1024; memory grows to fit it
  (func (export "weir_buffer") (param $size i32) (result i32)
    (local $need i32)
    (local.set $need (i32.add (i32.const 1024) (local.get $size)))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u
                (i32.add (i32.sub (local.get $need) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65535))
                (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 1024))
  (func (export "weir_open") (param i32 i32) (result i32) (i32.const 0))
  (func (export "weir_process") (param $in i32) (param $p i32) (param $n i32) (result i32)
    (if (i32.ne (call $emit (local.get $p) (local.get $n)) (i32.const 0))
      (then (return (i32.const 1))))
    (i32.const 0))
  (func (export "weir_close") (result i32) (i32.const 0)))
