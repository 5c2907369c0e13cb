//! Raw host imports: with the exports, the only `unsafe` at the wasm boundary.
//!
//! Native builds (`cargo test`) get stubs with the same signatures, so everything above
//! this module runs without a wasm runtime.

#[cfg(target_arch = "wasm32")]
pub use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(target_arch = "wasm32")]
mod wasm {
    #[link(wasm_import_module = "mw")]
    extern "C" {
        #[link_name = "log"]
        fn mw_log(level: i32, ptr: *const u8, len: i32);
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(clock_id: i32, precision: i64, time: *mut u64) -> i32;
    }

    /// WASI's realtime clock: nanoseconds since the Unix epoch.
    const CLOCK_REALTIME: i32 = 0;

    pub fn log(level: i32, msg: &str) {
        // SAFETY: ptr/len describe a live str; the host copies it and never traps on it.
        unsafe { mw_log(level, msg.as_ptr(), msg.len() as i32) }
    }

    pub fn clock_realtime_ns() -> Option<u64> {
        let mut time = 0u64;
        // SAFETY: `time` is a live, aligned u64 that the host writes once.
        let errno = unsafe { clock_time_get(CLOCK_REALTIME, 1_000, &mut time) };
        if errno == 0 {
            Some(time)
        } else {
            None
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static LOGS: RefCell<Vec<(i32, String)>> = const { RefCell::new(Vec::new()) };
    }

    /// Records the line for [`take_logs`] and prints it (tests show it on failure).
    pub fn log(level: i32, msg: &str) {
        eprintln!("mw.log[{}] {}", level, msg);
        LOGS.with(|logs| logs.borrow_mut().push((level, msg.to_owned())));
    }

    /// The lines logged on this thread since the last call.
    pub fn take_logs() -> Vec<(i32, String)> {
        LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
    }

    pub fn clock_realtime_ns() -> Option<u64> {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        u64::try_from(since.as_nanos()).ok()
    }
}
