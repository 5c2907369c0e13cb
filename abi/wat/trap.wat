;; ABI v1 reference guest: traps on every request (as a Rust panic or Go fatal error would).
(module
  (memory (export "memory") 2)
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  (func (export "mw_alloc") (param $size i32) (result i32) (i32.const 65536))
  (func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64)
    (unreachable)))
