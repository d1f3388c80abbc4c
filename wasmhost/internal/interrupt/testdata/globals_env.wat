;; The "env" module globals.wat imports its globals from.
(module
  (global (export "imm") i32 (i32.const 1234))
  (global (export "mut") (mut i64) (i64.const 5)))
