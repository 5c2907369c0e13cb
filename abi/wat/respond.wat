;; ABI v1 reference guest: answers every request itself with 403 and a text body.
;; Output: {"action": "respond", "status": 403, "headers": [["content-type", "text/plain"]],
;;          "body": <bin "forbidden\n">}  (77 bytes at offset 16; see vectors/action_respond)
(module
  (memory (export "memory") 2)
  (data (i32.const 16)
    "\84" "\a6" "action" "\a7" "respond"
    "\a6" "status" "\cd\01\93"
    "\a7" "headers" "\91" "\92" "\ac" "content-type" "\aa" "text/plain"
    "\a4" "body" "\c4\0a" "forbidden\0a")
  (func (export "mw_abi_version") (result i32) (i32.const 1))
  (func (export "mw_alloc") (param $size i32) (result i32)
    (select (i32.const 65536) (i32.const 0) (i32.le_u (local.get $size) (i32.const 65536))))
  ;; (16 << 32) | 77
  (func (export "mw_on_request") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 0x000000100000004d)))
