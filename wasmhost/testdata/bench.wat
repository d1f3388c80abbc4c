;; bench: measures host-call overhead. Operator "bench" (KEYED) registers
;; value state "s" in weir_open. weir_process reads a u32 count n from its
;; input and, by input number:
;;   0: calls state_get(state 0, key "benchkey", no sub key, out 64 bytes) n times
;;   1: calls watermark() n times
;;   2: calls nothing (loop overhead only)
(module
  (import "weir" "state_register" (func $state_register (param i32 i32 i32) (result i32)))
  (import "weir" "state_get" (func $state_get (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "weir" "watermark" (func $watermark (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\01\00\00\00\05\00\00\00bench\01\00\00\00")
  (data (i32.const 512) "benchkey")
  (data (i32.const 520) "s")
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (func (export "weir_operators") (result i64) (i64.const 0x0000001000000011))
  (func (export "weir_buffer") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 60000)) (then (return (i32.const 0))))
    (i32.const 1024))
  (func (export "weir_open") (param i32 i32) (result i32)
    (if (i32.lt_s (call $state_register (i32.const 520) (i32.const 1) (i32.const 1)) (i32.const 0))
      (then (return (i32.const 1))))
    (i32.const 0))
  (func (export "weir_process") (param $in i32) (param $p i32) (param $n i32) (result i32)
    (local $k i32)
    (local.set $k (i32.load (local.get $p)))
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $k)))
        (if (i32.eqz (local.get $in))
          (then (drop (call $state_get (i32.const 0) (i32.const 512) (i32.const 8)
                                       (i32.const 0) (i32.const 0) (i32.const 600) (i32.const 64)))))
        (if (i32.eq (local.get $in) (i32.const 1))
          (then (drop (call $watermark))))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br $l)))
    (i32.const 0))
  (func (export "weir_close") (result i32) (i32.const 0)))
