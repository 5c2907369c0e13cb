//! Write mwhost HTTP middleware in Rust (ABI v1, see `abi/ABI.md`).
//!
//! Implement [`Middleware`] on a `Default` type, override only the callbacks you need, and
//! register it with one line:
//!
//! ```
//! use mwhost_guest::{Action, Middleware, Request};
//!
//! #[derive(Default)]
//! struct DenyDelete;
//!
//! impl Middleware for DenyDelete {
//!     fn on_request(&mut self, req: &Request) -> Action {
//!         if req.method == "DELETE" {
//!             return Action::respond(405).header("allow", "GET, POST").body("no\n").into();
//!         }
//!         Action::next().set_header("x-checked", "1").into()
//!     }
//! }
//!
//! mwhost_guest::register!(DenyDelete);
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` (crate-type
//! `cdylib`). The crate has no dependencies.

mod action;
mod check;
mod guest;
mod header;
pub mod host;
mod imports;
mod message;
pub mod msgpack;
mod value;

pub use action::{Action, Continue, OwnedPair, Prebuilt, Respond, ResponseAction, ResponseEdit};
pub use check::{MAX_ENTRIES, MAX_FIELD_BYTES};
pub use guest::{pack, Guest};
pub use header::{is_valid_header_name, is_valid_header_value};
pub use host::{debug, error, info, log, now_unix_nanos, now_unix_seconds, warn, Level};
pub use message::{Pair, Request, RequestInfo, Response};
pub use msgpack::DecodeError;
pub use value::{Config, Value};

#[doc(hidden)]
pub use guest::exports as __exports;

/// What `mw_abi_version` returns.
pub const ABI_VERSION: i32 = 1;

/// A middleware stage. Every callback has a default, so implement only what you need.
///
/// One value lives per guest instance; the host calls one callback at a time.
pub trait Middleware {
    /// Called once per instance with the stage's config before the first request, always:
    /// stages without a config get an empty map (`Config::default()`). An `Err` refuses
    /// the config (`mw_init` returns 1) and the message is logged.
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Request phase: continue (optionally with edits) or respond.
    fn on_request(&mut self, req: &Request) -> Action {
        let _ = req;
        Action::default()
    }

    /// Response phase, when exported (see [`register!`]): edits to the response.
    fn on_response(&mut self, resp: &Response) -> ResponseAction {
        let _ = resp;
        ResponseAction::unchanged()
    }
}

/// Defines the module's exports for a `Default + Middleware` type.
///
/// `register!(T)` exports `mw_abi_version`, `mw_alloc`, `mw_init`, `mw_on_request` and
/// `mw_on_response`. `register!(T, request_only)` leaves out `mw_on_response`, so the
/// host skips the stage in the response phase (one call per request saved).
#[macro_export]
macro_rules! register {
    (@common $ty:ty) => {
        ::std::thread_local! {
            static __MWHOST_GUEST: ::core::cell::RefCell<$crate::Guest<$ty>> =
                ::core::cell::RefCell::new($crate::Guest::new(
                    <$ty as ::core::default::Default>::default(),
                ));
        }

        #[no_mangle]
        pub extern "C" fn mw_abi_version() -> i32 {
            $crate::ABI_VERSION
        }

        #[no_mangle]
        pub extern "C" fn mw_alloc(size: i32) -> i32 {
            $crate::__exports::alloc(&__MWHOST_GUEST, size)
        }

        #[no_mangle]
        pub extern "C" fn mw_init(ptr: i32, len: i32) -> i32 {
            $crate::__exports::init(&__MWHOST_GUEST, ptr, len)
        }

        #[no_mangle]
        pub extern "C" fn mw_on_request(ptr: i32, len: i32) -> i64 {
            $crate::__exports::on_request(&__MWHOST_GUEST, ptr, len)
        }
    };
    ($ty:ty, request_only) => {
        $crate::register!(@common $ty);
    };
    ($ty:ty) => {
        $crate::register!(@common $ty);

        #[no_mangle]
        pub extern "C" fn mw_on_response(ptr: i32, len: i32) -> i64 {
            $crate::__exports::on_response(&__MWHOST_GUEST, ptr, len)
        }
    };
}
