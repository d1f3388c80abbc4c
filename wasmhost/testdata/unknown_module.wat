;; rejected: imports from module env
(module
  (import "env" "abort" (func (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (data (i32.const 16) "\01\00\00\00\04\00\00\00stub\00\00\00\00")
  (func (export "weir_operators") (result i64) (i64.const 0x0000001000000010))
  (func (export "weir_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "weir_open") (param i32 i32) (result i32) (i32.const 0))
  (func (export "weir_process") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "weir_close") (result i32) (i32.const 0))
)
