//! Host services for middleware authors: logging (`mw.log`) and the wall clock (WASI).

use crate::imports;

/// Log levels of `mw.log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// One line to the host's log. Never fails: the host drops lines over its budget.
pub fn log(level: Level, msg: &str) {
    imports::log(level as i32, msg)
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}

pub fn info(msg: &str) {
    log(Level::Info, msg)
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}

/// Wall-clock time in nanoseconds since the Unix epoch; `None` if the host's clock fails.
pub fn now_unix_nanos() -> Option<u64> {
    imports::clock_realtime_ns()
}

/// Wall-clock time in whole seconds since the Unix epoch; `0` if the host's clock fails,
/// so time checks must treat `0` as "unknown" (fail closed).
pub fn now_unix_seconds() -> u64 {
    now_unix_nanos().map_or(0, |ns| ns / 1_000_000_000)
}

/// Native builds only: the lines logged on this thread since the last call, for tests.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(Level, String)> {
    let level = |l: i32| match l {
        0 => Level::Debug,
        1 => Level::Info,
        2 => Level::Warn,
        _ => Level::Error,
    };
    imports::take_logs()
        .into_iter()
        .map(|(l, msg)| (level(l), msg))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_helpers_reach_the_import_with_their_level() {
        take_logs();
        info("hello");
        error("boom");
        assert_eq!(
            take_logs(),
            vec![(Level::Info, "hello".into()), (Level::Error, "boom".into())]
        );
    }

    #[test]
    fn the_clock_reads_a_plausible_unix_time() {
        let now = now_unix_seconds();
        assert!(now > 1_600_000_000 && now < 4_000_000_000, "{}", now);
    }
}
