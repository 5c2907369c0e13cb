;; ABI v1 reference guest: answers 200 with the very Request message it received as the body,
;; and in the response phase replaces the body with the Response message it received. Handy
;; for seeing exactly what a stage is given (and used by the host's tests for that).
;;
;; request output  = {"action": "respond", "status": 200, "body": <bin32 input>}
;; response output = {"body": <bin32 input>}
(module
  (memory (export "memory") 4)
  ;; prefix of the request output (31 bytes), then 4 length bytes, then the input
  (data (i32.const 1024)
    "\83" "\a6" "action" "\a7" "respond" "\a6" "status" "\cc\c8" "\a4" "body" "\c6")
  ;; prefix of the response output (7 bytes)
  (data (i32.const 2048) "\81" "\a4" "body" "\c6")
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  ;; inputs live at 128 KiB, up to 64 KiB; outputs are built at 1024 / 2048 and below 128 KiB
  (func (export "mw_alloc") (param $size i32) (result i32)
    (select (i32.const 131072) (i32.const 0) (i32.le_u (local.get $size) (i32.const 65536))))
  (func $store_be32 (param $at i32) (param $v i32)
    (i32.store8 (local.get $at) (i32.shr_u (local.get $v) (i32.const 24)))
    (i32.store8 (i32.add (local.get $at) (i32.const 1)) (i32.shr_u (local.get $v) (i32.const 16)))
    (i32.store8 (i32.add (local.get $at) (i32.const 2)) (i32.shr_u (local.get $v) (i32.const 8)))
    (i32.store8 (i32.add (local.get $at) (i32.const 3)) (local.get $v)))
  ;; out = prefix(at $start, $prefix_len bytes) + be32(len) + input; returns (start << 32) | total
  (func $wrap (param $start i32) (param $prefix_len i32) (param $ptr i32) (param $len i32) (result i64)
    (local $len_at i32)
    (local.set $len_at (i32.add (local.get $start) (local.get $prefix_len)))
    (call $store_be32 (local.get $len_at) (local.get $len))
    (memory.copy (i32.add (local.get $len_at) (i32.const 4)) (local.get $ptr) (local.get $len))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $start)) (i64.const 32))
            (i64.extend_i32_u (i32.add (i32.add (local.get $prefix_len) (i32.const 4)) (local.get $len)))))
  (func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64)
    (call $wrap (i32.const 1024) (i32.const 31) (local.get $ptr) (local.get $len)))
  (func (export "mw_on_response") (param $ptr i32) (param $len i32) (result i64)
    (call $wrap (i32.const 2048) (i32.const 7) (local.get $ptr) (local.get $len))))
