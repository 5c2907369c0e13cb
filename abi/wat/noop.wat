;; ABI v1 reference guest: lets every request through unchanged.
;; Input buffer: a fixed 64 KiB region at 65536 (mw_alloc refuses larger inputs with 0).
;; Output: the constant Action {"action": "continue"} (17 bytes at offset 16).
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "\81" "\a6" "action" "\a8" "continue")
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  (func (export "mw_alloc") (param $size i32) (result i32)
    (select (i32.const 65536) (i32.const 0) (i32.le_u (local.get $size) (i32.const 65536))))
  ;; (16 << 32) | 17
  (func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 0x0000001000000011)))
