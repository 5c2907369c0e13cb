;; ABI v1 reference guest: sets one request header and one response header, in both phases.
;; on_request  -> {"action": "continue", "set_headers": [["x-wat", "1"]],
;;                 "response_headers": [["x-wat-response", "1"]]}          (75 bytes at 16)
;; on_response -> {"set_headers": [["x-wat-phase", "response"]]}           (36 bytes at 128)
;; It also logs one line through the mw.log import on each request.
(module
  (import "mw" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16)
    "\83" "\a6" "action" "\a8" "continue"
    "\ab" "set_headers" "\91" "\92" "\a5" "x-wat" "\a1" "1"
    "\b0" "response_headers" "\91" "\92" "\ae" "x-wat-response" "\a1" "1")
  (data (i32.const 128)
    "\81" "\ab" "set_headers" "\91" "\92" "\ab" "x-wat-phase" "\a8" "response")
  (data (i32.const 256) "set_header.wat saw a request")
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  (func (export "mw_alloc") (param $size i32) (result i32)
    (select (i32.const 65536) (i32.const 0) (i32.le_u (local.get $size) (i32.const 65536))))
  (func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 1) (i32.const 256) (i32.const 28))
    (i64.const 0x000000100000004b))
  (func (export "mw_on_response") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 0x0000008000000024)))
