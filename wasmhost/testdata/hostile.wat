;; hostile: misbehaves on demand. weir_process picks the behaviour by its
;; input number:
;;    0 echo the batch (the healthy case)        10 return status 77
;;    1 infinite loop                            11 integer divide by zero
;;    2 unreachable                              12 infinite recursion
;;    3 load from address 0xfffffff0             13 loop calling weir.watermark
;;    4 memory.grow until it fails, emit pages   14 print to stdout and stderr
;;    5 emit 1 KiB records forever               15 print a Go-like panic to stderr, proc_exit(2)
;;    6 proc_exit(3)                             16 log 1000 lines of 100 bytes
;;    7 fail("boom"), status 1                   17 log one 5000-byte line
;;    8 fail("kaboom"), status 2                 18 print "partial" without newline
;;    9 status 4 without a message
;; Any other input number returns status 0.
;; Memory: 1 page; the input buffer starts at 8192.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "weir" "emit" (func $emit (param i32 i32) (result i32)))
  (import "weir" "fail" (func $fail (param i32 i32)))
  (import "weir" "log" (func $log (param i32 i32 i32)))
  (import "weir" "watermark" (func $watermark (result i64)))
  (memory (export "memory") 1)
  ;; operator table at 16: count 1, "hostile", flags 0 (19 bytes)
  (data (i32.const 16) "\01\00\00\00\07\00\00\00hostile\00\00\00\00")
  (data (i32.const 256) "boom")
  (data (i32.const 264) "kaboom")
  (data (i32.const 300) "hello stdout\n")
  (data (i32.const 340) "oops stderr\n")
  (data (i32.const 600) "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n")
  (data (i32.const 700) "partial")
  ;; iovecs {ptr, len}: 400 -> stdout text, 408 -> stderr text, 416 -> panic text, 432 -> partial
  (data (i32.const 400) "\2c\01\00\00\0d\00\00\00")
  (data (i32.const 408) "\54\01\00\00\0c\00\00\00")
  (data (i32.const 416) "\58\02\00\00\30\00\00\00")
  (data (i32.const 432) "\bc\02\00\00\07\00\00\00")
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (func (export "weir_operators") (result i64) (i64.const 0x0000001000000013))
  (func (export "weir_buffer") (param $size i32) (result i32)
    (local $need i32)
    (local.set $need (i32.add (i32.const 8192) (local.get $size)))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u
                (i32.add (i32.sub (local.get $need) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65535))
                (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 8192))
  (func (export "weir_open") (param i32 i32) (result i32) (i32.const 0))
  (func (export "weir_close") (result i32) (i32.const 0))
  (func $recurse (param $d i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $d) (i32.const 1))) (i32.const 1)))
  (func (export "weir_process") (param $in i32) (param $p i32) (param $n i32) (result i32)
    (local $k i32)
    (block $default
    (block $c18 (block $c17 (block $c16 (block $c15 (block $c14 (block $c13 (block $c12
    (block $c11 (block $c10 (block $c9 (block $c8 (block $c7 (block $c6 (block $c5
    (block $c4 (block $c3 (block $c2 (block $c1 (block $c0
      (br_table $c0 $c1 $c2 $c3 $c4 $c5 $c6 $c7 $c8 $c9 $c10 $c11 $c12 $c13 $c14 $c15
                $c16 $c17 $c18 $default (local.get $in)))
      ;; 0 echo
      (if (i32.ne (call $emit (local.get $p) (local.get $n)) (i32.const 0))
        (then (return (i32.const 1))))
      (return (i32.const 0)))
      ;; 1 infinite loop
      (loop $forever (br $forever))
      (return (i32.const 0)))
      ;; 2 unreachable
      unreachable)
      ;; 3 out-of-bounds load
      (drop (i32.load (i32.const 0xfffffff0)))
      (return (i32.const 0)))
      ;; 4 grow until memory.grow fails, then emit a record whose value is
      ;; the final page count (u32)
      (block $full
        (loop $grow
          (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br $grow)))
      (i32.store8 (i32.const 4096) (i32.const 1))      ;; kind record
      (i32.store8 (i32.const 4097) (i32.const 0))      ;; tag
      (i32.store (i32.const 4098) (i32.const 0))       ;; key len
      (i32.store (i32.const 4102) (i32.const 4))       ;; value len
      (i64.store (i32.const 4106) (i64.const 0))       ;; timestamp
      (i32.store (i32.const 4114) (memory.size))       ;; value
      (drop (call $emit (i32.const 4096) (i32.const 22)))
      (return (i32.const 0)))
      ;; 5 emit flood: a 1024-byte record (empty key, 1006-byte value) forever
      (i32.store8 (i32.const 4096) (i32.const 1))
      (i32.store8 (i32.const 4097) (i32.const 0))
      (i32.store (i32.const 4098) (i32.const 0))
      (i32.store (i32.const 4102) (i32.const 1006))
      (i64.store (i32.const 4106) (i64.const 0))
      (loop $flood
        (drop (call $emit (i32.const 4096) (i32.const 1024)))
        (br $flood))
      (return (i32.const 0)))
      ;; 6 proc_exit(3)
      (call $proc_exit (i32.const 3))
      (return (i32.const 0)))
      ;; 7 status 1
      (call $fail (i32.const 256) (i32.const 4))
      (return (i32.const 1)))
      ;; 8 status 2
      (call $fail (i32.const 264) (i32.const 6))
      (return (i32.const 2)))
      ;; 9 status 4, no message
      (return (i32.const 4)))
      ;; 10 unknown status
      (return (i32.const 77)))
      ;; 11 divide by zero
      (drop (i32.div_u (i32.const 1) (i32.sub (local.get $n) (local.get $n))))
      (return (i32.const 0)))
      ;; 12 infinite recursion
      (drop (call $recurse (i32.const 0)))
      (return (i32.const 0)))
      ;; 13 loop calling the host
      (loop $host
        (drop (call $watermark))
        (br $host))
      (return (i32.const 0)))
      ;; 14 stdout and stderr
      (drop (call $fd_write (i32.const 1) (i32.const 400) (i32.const 1) (i32.const 500)))
      (drop (call $fd_write (i32.const 2) (i32.const 408) (i32.const 1) (i32.const 500)))
      (return (i32.const 0)))
      ;; 15 Go-like panic: message on stderr, then exit 2
      (drop (call $fd_write (i32.const 2) (i32.const 416) (i32.const 1) (i32.const 500)))
      (call $proc_exit (i32.const 2))
      (return (i32.const 0)))
      ;; 16 log flood
      (local.set $k (i32.const 0))
      (loop $logs
        (call $log (i32.const 1) (i32.const 2048) (i32.const 100))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $logs (i32.lt_u (local.get $k) (i32.const 1000))))
      (return (i32.const 0)))
      ;; 17 one long line of 'x'
      (memory.fill (i32.const 2048) (i32.const 120) (i32.const 5000))
      (call $log (i32.const 2) (i32.const 2048) (i32.const 5000))
      (return (i32.const 0)))
      ;; 18 stdout without a newline
      (drop (call $fd_write (i32.const 1) (i32.const 432) (i32.const 1) (i32.const 500)))
      (return (i32.const 0)))
    (i32.const 0)))
