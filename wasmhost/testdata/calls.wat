;; calls: calls one host import with arguments taken from its input, so that
;; tests and the fuzz target can hand the host any (ptr, len) values.
;;
;; Argument layout (the weir_process batch, or the weir_open config):
;;   u32 selector, then 7 x i64 arguments a0..a6 (i32 parameters use the low
;;   32 bits). 60 bytes; shorter input returns status 4 (BadInput).
;; Selectors: 0 log(a0,a1,a2) 1 fail(a0,a1) 2 emit(a0,a1)
;;   3 state_register(a0,a1,a2) 4 state_get(a0..a6) 5 state_put(a0..a6)
;;   6 state_delete(a0..a4) 7 state_append(a0..a4) 8 state_scan(a0..a4)
;;   9 state_clear(a0,a1,a2) 10 timer_register(a0,a1,a2,a3:i64)
;;   11 timer_delete(a0,a1,a2,a3:i64) 12 watermark() 13 processing_time()
;; The import's result is stored as i64 at address 8. fail returns status 1,
;; every other selector status 0; an unknown selector returns status 4.
;; Memory: 1 page (65536 bytes) unless the input needs more; input at 1024.
;; Operators: "calls" (KEYED) and "plain" (not keyed).
(module
  (import "weir" "log" (func $log (param i32 i32 i32)))
  (import "weir" "fail" (func $fail (param i32 i32)))
  (import "weir" "emit" (func $emit (param i32 i32) (result i32)))
  (import "weir" "state_register" (func $state_register (param i32 i32 i32) (result i32)))
  (import "weir" "state_get" (func $state_get (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "weir" "state_put" (func $state_put (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "weir" "state_delete" (func $state_delete (param i32 i32 i32 i32 i32) (result i32)))
  (import "weir" "state_append" (func $state_append (param i32 i32 i32 i32 i32) (result i32)))
  (import "weir" "state_scan" (func $state_scan (param i32 i32 i32 i32 i32) (result i32)))
  (import "weir" "state_clear" (func $state_clear (param i32 i32 i32) (result i32)))
  (import "weir" "timer_register" (func $timer_register (param i32 i32 i32 i64) (result i32)))
  (import "weir" "timer_delete" (func $timer_delete (param i32 i32 i32 i64) (result i32)))
  (import "weir" "watermark" (func $watermark (result i64)))
  (import "weir" "processing_time" (func $processing_time (result i64)))
  (memory (export "memory") 1)
  ;; operator table at 16: count 2, "calls" KEYED, "plain" (30 bytes)
  (data (i32.const 16) "\02\00\00\00\05\00\00\00calls\01\00\00\00\05\00\00\00plain\00\00\00\00")
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (func (export "weir_operators") (result i64) (i64.const 0x000000100000001e))
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

  ;; a64 returns argument k of the input at p; a32 its low 32 bits.
  (func $a64 (param $p i32) (param $k i32) (result i64)
    (i64.load (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.mul (local.get $k) (i32.const 8)))))
  (func $a32 (param $p i32) (param $k i32) (result i32)
    (i32.wrap_i64 (call $a64 (local.get $p) (local.get $k))))
  (func $res32 (param $r i32) (i64.store (i32.const 8) (i64.extend_i32_s (local.get $r))))

  (func $dispatch (param $p i32) (param $n i32) (result i32)
    (if (i32.lt_u (local.get $n) (i32.const 60)) (then (return (i32.const 4))))
    (i64.store (i32.const 8) (i64.const 0))
    (block $bad
    (block $processing_time
    (block $watermark
    (block $timer_delete
    (block $timer_register
    (block $state_clear
    (block $state_scan
    (block $state_append
    (block $state_delete
    (block $state_put
    (block $state_get
    (block $state_register
    (block $emit
    (block $fail
    (block $log
      (br_table $log $fail $emit $state_register $state_get $state_put $state_delete
                $state_append $state_scan $state_clear $timer_register $timer_delete
                $watermark $processing_time $bad
                (i32.load (local.get $p))))
      ;; 0 log
      (call $log (call $a32 (local.get $p) (i32.const 0)) (call $a32 (local.get $p) (i32.const 1))
                 (call $a32 (local.get $p) (i32.const 2)))
      (return (i32.const 0)))
      ;; 1 fail
      (call $fail (call $a32 (local.get $p) (i32.const 0)) (call $a32 (local.get $p) (i32.const 1)))
      (return (i32.const 1)))
      ;; 2 emit
      (call $res32 (call $emit (call $a32 (local.get $p) (i32.const 0)) (call $a32 (local.get $p) (i32.const 1))))
      (return (i32.const 0)))
      ;; 3 state_register
      (call $res32 (call $state_register (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))))
      (return (i32.const 0)))
      ;; 4 state_get
      (call $res32 (call $state_get (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))
        (call $a32 (local.get $p) (i32.const 3)) (call $a32 (local.get $p) (i32.const 4))
        (call $a32 (local.get $p) (i32.const 5)) (call $a32 (local.get $p) (i32.const 6))))
      (return (i32.const 0)))
      ;; 5 state_put
      (call $res32 (call $state_put (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))
        (call $a32 (local.get $p) (i32.const 3)) (call $a32 (local.get $p) (i32.const 4))
        (call $a32 (local.get $p) (i32.const 5)) (call $a32 (local.get $p) (i32.const 6))))
      (return (i32.const 0)))
      ;; 6 state_delete
      (call $res32 (call $state_delete (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))
        (call $a32 (local.get $p) (i32.const 3)) (call $a32 (local.get $p) (i32.const 4))))
      (return (i32.const 0)))
      ;; 7 state_append
      (call $res32 (call $state_append (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))
        (call $a32 (local.get $p) (i32.const 3)) (call $a32 (local.get $p) (i32.const 4))))
      (return (i32.const 0)))
      ;; 8 state_scan
      (call $res32 (call $state_scan (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))
        (call $a32 (local.get $p) (i32.const 3)) (call $a32 (local.get $p) (i32.const 4))))
      (return (i32.const 0)))
      ;; 9 state_clear
      (call $res32 (call $state_clear (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))))
      (return (i32.const 0)))
      ;; 10 timer_register
      (call $res32 (call $timer_register (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))
        (call $a64 (local.get $p) (i32.const 3))))
      (return (i32.const 0)))
      ;; 11 timer_delete
      (call $res32 (call $timer_delete (call $a32 (local.get $p) (i32.const 0))
        (call $a32 (local.get $p) (i32.const 1)) (call $a32 (local.get $p) (i32.const 2))
        (call $a64 (local.get $p) (i32.const 3))))
      (return (i32.const 0)))
      ;; 12 watermark
      (i64.store (i32.const 8) (call $watermark))
      (return (i32.const 0)))
      ;; 13 processing_time
      (i64.store (i32.const 8) (call $processing_time))
      (return (i32.const 0)))
    ;; unknown selector
    (i32.const 4))

  ;; weir_open runs the dispatcher on the config of the OpenInfo (if any),
  ;; so that tests can call imports (state_register) inside weir_open.
  (func (export "weir_open") (param $p i32) (param $n i32) (result i32)
    (local $q i32)
    ;; skip operator and node_id (u32 length + bytes each)
    (local.set $q (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (if (i32.eqz (i32.load (local.get $q))) (then (return (i32.const 0))))
    (call $dispatch (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
  (func (export "weir_process") (param $in i32) (param $p i32) (param $n i32) (result i32)
    (call $dispatch (local.get $p) (local.get $n)))
  (func (export "weir_close") (result i32) (i32.const 0)))
