;; ABI v1 reference guest: never returns from mw_on_request; the host's deadline must stop it.
(module
  (memory (export "memory") 2)
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  (func (export "mw_alloc") (param $size i32) (result i32) (i32.const 65536))
  (func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0)))
