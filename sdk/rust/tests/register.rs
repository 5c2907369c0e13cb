//! `register!` expands natively: the exports exist with the ABI's signatures.

use mwhost_guest::{Action, Middleware, Request};

#[derive(Default)]
struct Hello;

impl Middleware for Hello {
    fn on_request(&mut self, _req: &Request) -> Action {
        Action::respond(200).body("hello").into()
    }
}

mwhost_guest::register!(Hello);

#[test]
fn register_defines_every_export_with_the_abi_signature() {
    let _: extern "C" fn() -> i32 = mw_abi_version;
    let _: extern "C" fn(i32) -> i32 = mw_alloc;
    let _: extern "C" fn(i32, i32) -> i32 = mw_init;
    let _: extern "C" fn(i32, i32) -> i64 = mw_on_request;
    let _: extern "C" fn(i32, i32) -> i64 = mw_on_response;
    assert_eq!(mw_abi_version(), 1);
    assert_eq!(mw_alloc(-1), 0, "a negative size is a failed allocation");
}
