;; Every instruction form the walker must decode exactly, inside and around
;; loops: nested loops, loops in blocks and ifs, br_table, call_indirect,
;; memory arguments, 0xfc (saturating truncation, bulk memory, tables),
;; reference types, typed select, sign extension, multi-value block types
;; (type indices), SIMD. Each export computes something the test compares
;; between the original and the instrumented module (and, where simple,
;; with a value computed in Go). env.inc(x) returns x + 1.
(module
  (type $unop (func (param i32) (result i32)))
  (import "env" "inc" (func $inc (param i32) (result i32)))
  (memory 1)
  (table $tab 3 funcref)
  (table $t2 2 funcref)
  (table $refs 2 externref)
  (elem (table $tab) (i32.const 0) func $double $square $inc)
  (elem $passive func $square $double)
  (data $bytes "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10")
  (func $double (type $unop) (i32.mul (local.get 0) (i32.const 2)))
  (func $square (type $unop) (i32.mul (local.get 0) (local.get 0)))

  ;; Sum over 0 <= j < i < n of i*j: a loop in a loop in a block, the inner
  ;; one continuing from inside an if.
  (func (export "nested") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $s i32)
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (loop $inner
          (if (i32.lt_u (local.get $j) (local.get $i))
            (then
              (local.set $s (i32.add (local.get $s) (i32.mul (local.get $i) (local.get $j))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $inner))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $s))

  ;; Collatz steps of n: a loop inside an if, dispatching with br_table.
  (func (export "collatz") (param $n i64) (result i32) (local $steps i32)
    (if (i64.gt_u (local.get $n) (i64.const 1))
      (then
        (loop $l
          (block $odd
            (block $even
              (br_table $even $odd (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 2)))))
            (local.set $n (i64.shr_u (local.get $n) (i64.const 1)))
            (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
            (br_if $l (i64.gt_u (local.get $n) (i64.const 1)))
            (return (local.get $steps)))
          (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 3)) (i64.const 1)))
          (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
          (br $l))))
    (local.get $steps))

  ;; Sum over i < n of tab[i mod 3](i) = double, square, inc: call_indirect
  ;; in a loop (the call to the import goes through the table too).
  (func (export "indirect") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $l
      (if (i32.lt_u (local.get $i) (local.get $n))
        (then
          (local.set $s (i32.add (local.get $s)
            (call_indirect $tab (type $unop) (local.get $i) (i32.rem_u (local.get $i) (i32.const 3)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l))))
    (local.get $s))

  ;; Stores i at every width with offsets and alignments and loads it back
  ;; with sign and zero extension, for i < max(n, 1); plus memory.size.
  (func (export "memops") (param $n i32) (result i64) (local $i i32) (local $s i64)
    (loop $l
      (i32.store8 offset=1 (i32.const 0) (local.get $i))
      (i32.store16 offset=2 align=1 (i32.const 0) (local.get $i))
      (i64.store32 offset=4 (i32.const 0) (i64.extend_i32_u (local.get $i)))
      (i64.store offset=8 (i32.const 0) (i64.mul (i64.extend_i32_s (local.get $i)) (i64.const -3)))
      (f32.store offset=16 (i32.const 0) (f32.convert_i32_s (local.get $i)))
      (f64.store offset=24 align=4 (i32.const 0) (f64.convert_i32_s (local.get $i)))
      (local.set $s (i64.add (local.get $s)
        (i64.add
          (i64.add (i64.load8_s offset=1 (i32.const 0)) (i64.load16_u offset=2 (i32.const 0)))
          (i64.add (i64.load32_u offset=4 (i32.const 0)) (i64.load offset=8 (i32.const 0))))))
      (local.set $s (i64.add (local.get $s)
        (i64.add (i64.trunc_f32_s (f32.load offset=16 (i32.const 0)))
                 (i64.trunc_f64_s (f64.load offset=24 (i32.const 0))))))
      (local.set $s (i64.add (local.get $s) (i64.extend_i32_s (i32.load8_u offset=1 (i32.const 0)))))
      (local.set $s (i64.add (local.get $s) (i64.extend_i32_s (i32.load16_s offset=2 (i32.const 0)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i64.add (local.get $s) (i64.extend_i32_u (memory.size))))

  ;; Bulk memory, table instructions and saturating truncation (0xfc 0-17).
  (func (export "bulk") (result i32) (local $s i32) (local $i i32)
    (memory.fill (i32.const 100) (i32.const 7) (i32.const 16))
    (memory.init $bytes (i32.const 200) (i32.const 4) (i32.const 8))
    (data.drop $bytes)
    (memory.copy (i32.const 104) (i32.const 200) (i32.const 8))
    (loop $l
      (local.set $s (i32.add (local.get $s) (i32.load8_u offset=100 (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 16))))
    (table.init $t2 $passive (i32.const 0) (i32.const 0) (i32.const 2))
    (elem.drop $passive)
    (table.copy $t2 $t2 (i32.const 1) (i32.const 0) (i32.const 1))
    (drop (table.grow $t2 (ref.null func) (i32.const 2)))
    (table.fill $t2 (i32.const 2) (ref.func $double) (i32.const 2))
    (local.set $s (i32.add (local.get $s) (i32.mul (table.size $t2) (i32.const 1000))))
    (local.set $s (i32.add (local.get $s) (call_indirect $t2 (type $unop) (i32.const 5) (i32.const 1))))
    (local.set $s (i32.add (local.get $s) (call_indirect $t2 (type $unop) (i32.const 5) (i32.const 3))))
    (local.set $s (i32.add (local.get $s) (i32.trunc_sat_f32_s (f32.const -1e10))))
    (local.set $s (i32.add (local.get $s) (i32.trunc_sat_f64_u (f64.const nan))))
    (local.set $s (i32.add (local.get $s) (i32.wrap_i64 (i64.trunc_sat_f64_s (f64.const 1e30)))))
    (local.set $s (i32.add (local.get $s) (i32.wrap_i64 (i64.trunc_sat_f32_u (f32.const -5)))))
    (i32.add (local.get $s) (memory.grow (i32.const 1))))

  ;; Reference types, typed and untyped select, sign extension.
  (func (export "refs") (param $x i32) (result i32) (local $s i32)
    (local.set $s (ref.is_null (ref.null func)))
    (local.set $s (i32.add (local.get $s) (i32.mul (ref.is_null (ref.func $double)) (i32.const 10))))
    (table.set $refs (i32.const 1) (ref.null extern))
    (local.set $s (i32.add (local.get $s) (i32.mul (ref.is_null (table.get $refs (i32.const 1))) (i32.const 100))))
    (local.set $s (i32.add (local.get $s) (select (result i32) (i32.const 1000) (i32.const 2000) (local.get $x))))
    (local.set $s (i32.add (local.get $s) (select (i32.const 3) (i32.const 4) (local.get $x))))
    (local.set $s (i32.add (local.get $s) (i32.extend8_s (i32.const 0xff))))
    (local.set $s (i32.add (local.get $s) (i32.wrap_i64 (i64.extend32_s (i64.const 0x80000000)))))
    (local.get $s))

  ;; a / b * 1000 + a % b by repeated subtraction: a loop with parameters
  ;; and results, an if with two results, a block with parameters (all
  ;; encoded with type indices).
  (func (export "divmod") (param $a i32) (param $b i32) (result i32) (local $r i32) (local $q i32)
    local.get $a
    i32.const 0
    loop $l (param i32 i32) (result i32 i32)
      local.set $q
      local.set $r
      local.get $r
      local.get $b
      i32.ge_u
      if (result i32 i32)
        local.get $r
        local.get $b
        i32.sub
        local.get $q
        i32.const 1
        i32.add
        br $l
      else
        local.get $r
        local.get $q
      end
    end
    block (param i32 i32) (result i32)
      i32.const 1000
      i32.mul
      i32.add
    end)

  ;; SIMD: v128.const, shuffle, splat, lanes, memory arguments with lanes,
  ;; load32_zero, bitwise and arithmetic ops, in a loop.
  (func (export "simd") (param $n i32) (result i32) (local $v v128) (local $i i32)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (v128.store offset=32 (i32.const 0) (v128.const i8x16 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15))
    (loop $l
      (local.set $v (i32x4.add (local.get $v) (i32x4.splat (local.get $i))))
      (local.set $v (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $v) (local.get $v)))
      (local.set $v (i32x4.replace_lane 3 (local.get $v) (i32.add (i32x4.extract_lane 3 (local.get $v)) (i32.const 1))))
      (local.set $v (v128.xor (local.get $v) (v128.load32_zero offset=32 (i32.const 0))))
      (local.set $v (v128.load8_lane offset=33 1 (i32.const 0) (local.get $v)))
      (v128.store32_lane offset=48 2 (i32.const 0) (local.get $v))
      (local.set $v (v128.bitselect (local.get $v) (i8x16.swizzle (local.get $v) (v128.load offset=32 (i32.const 0)))
        (v128.const i64x2 -1 0)))
      (local.set $v (i16x8.add_sat_u (local.get $v) (i16x8.splat (i32.const 3))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $v)) (i32x4.extract_lane 1 (local.get $v)))
      (i32.add
        (i32.add (i32x4.extract_lane 2 (local.get $v)) (i32.load offset=48 (i32.const 0)))
        (i32.add (i8x16.extract_lane_u 15 (i8x16.popcnt (local.get $v)))
          (i32.trunc_f64_s (f64x2.extract_lane 1 (f64x2.mul (f64x2.splat (f64.const 1.5)) (f64x2.convert_low_i32x4_s (local.get $v))))))))))
