//! The export glue behind [`register!`](crate::register): buffers, lazy init and the error
//! answers. Safe Rust on addresses, so it is tested natively; the `extern "C"` shims in
//! [`exports`] only convert integers.

use crate::action::{Action, ResponseAction};
use crate::host;
use crate::message::{Request, Response};
use crate::msgpack::DecodeError;
use crate::value::Value;
use crate::Middleware;

/// `(out_ptr << 32) | out_len`, as the host reads it (unsigned).
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

enum InitState {
    Pending,
    Done,
    Failed,
}

/// One middleware instance with its input and output buffers.
pub struct Guest<M> {
    mw: M,
    init: InitState,
    /// Where the host writes each message (`mw_alloc`); reused across calls.
    input: Vec<u8>,
    /// The last answer; valid until the next call, as the ABI requires.
    output: Vec<u8>,
}

impl<M: Middleware> Guest<M> {
    pub fn new(mw: M) -> Self {
        Guest {
            mw,
            init: InitState::Pending,
            input: Vec::new(),
            output: Vec::new(),
        }
    }

    pub fn middleware(&self) -> &M {
        &self.mw
    }

    /// The buffer for the next message, or `None` when memory runs out (`mw_alloc` -> 0).
    pub fn alloc(&mut self, size: usize) -> Option<&mut [u8]> {
        self.input.clear();
        self.input.try_reserve(size).ok()?;
        self.input.resize(size, 0);
        Some(&mut self.input)
    }

    /// `mw_init`: 0 when the middleware accepts the config.
    pub fn init(&mut self, ptr: usize, len: usize) -> i32 {
        let result = match input_at(&self.input, ptr, len).and_then(Value::decode) {
            Ok(config @ Value::Map(_)) => self.mw.init(&config),
            Ok(_) => Err("config is not a map".to_string()),
            Err(e) => Err(format!("cannot decode config: {}", e)),
        };
        self.finish_init(result)
    }

    /// `mw_on_request`: the encoded Action.
    pub fn on_request(&mut self, ptr: usize, len: usize) -> &[u8] {
        self.output.clear();
        let action = if !self.ensure_init() {
            not_started()
        } else {
            match input_at(&self.input, ptr, len).and_then(Request::decode) {
                Ok(req) => self.mw.on_request(&req),
                Err(e) => bad_input(&e),
            }
        };
        refuse_invalid("action", action.check());
        action.encode(&mut self.output);
        &self.output
    }

    /// `mw_on_response`: the encoded ResponseAction.
    pub fn on_response(&mut self, ptr: usize, len: usize) -> &[u8] {
        self.output.clear();
        let action = if !self.ensure_init() {
            not_started_response()
        } else {
            match input_at(&self.input, ptr, len).and_then(Response::decode) {
                Ok(resp) => self.mw.on_response(&resp),
                Err(e) => bad_input_response(&e),
            }
        };
        refuse_invalid("response action", action.check());
        action.encode(&mut self.output);
        &self.output
    }

    /// The host calls `mw_init` once per instance, always (with an empty map when the stage
    /// has no config; ABI.md). A call without `mw_init` first (another host, a native test)
    /// initialises the middleware with an empty map, so `init` runs exactly once before
    /// `on_request` either way, as in the Go SDK.
    fn ensure_init(&mut self) -> bool {
        if let InitState::Pending = self.init {
            let result = self.mw.init(&Value::empty_map());
            self.finish_init(result);
        }
        matches!(self.init, InitState::Done)
    }

    fn finish_init(&mut self, result: Result<(), String>) -> i32 {
        match result {
            Ok(()) => {
                self.init = InitState::Done;
                0
            }
            Err(msg) => {
                host::error(&format!("init failed: {}", msg));
                self.init = InitState::Failed;
                1
            }
        }
    }
}

/// An answer the host would refuse is the middleware's bug: log why, then panic (a trap on
/// wasm), so the host fails the request by the stage's `on_error` policy and names the stage,
/// instead of decoding bytes it cannot send.
fn refuse_invalid(what: &str, checked: Result<(), String>) {
    if let Err(reason) = checked {
        let message = format!("invalid {} (ABI.md Validation): {}", what, reason);
        host::error(&message);
        panic!("{}", message);
    }
}

/// The message at `ptr..ptr+len`, which must lie inside the buffer `mw_alloc` returned.
fn input_at(input: &[u8], ptr: usize, len: usize) -> Result<&[u8], DecodeError> {
    let outside = DecodeError {
        msg: "input is not inside the mw_alloc buffer",
        offset: 0,
    };
    let start = ptr
        .checked_sub(input.as_ptr() as usize)
        .ok_or_else(|| outside.clone())?;
    let end = start.checked_add(len).ok_or_else(|| outside.clone())?;
    input.get(start..end).ok_or(outside)
}

const TEXT: (&str, &str) = ("content-type", "text/plain; charset=utf-8");

fn bad_input(e: &DecodeError) -> Action {
    host::error(&format!("cannot decode request: {}", e));
    Action::respond(500)
        .header(TEXT.0, TEXT.1)
        .body("middleware input error\n")
        .into()
}

fn bad_input_response(e: &DecodeError) -> ResponseAction {
    host::error(&format!("cannot decode response: {}", e));
    internal_error_edit("middleware input error\n")
}

fn not_started() -> Action {
    Action::respond(500)
        .header(TEXT.0, TEXT.1)
        .body("middleware not configured\n")
        .into()
}

fn not_started_response() -> ResponseAction {
    internal_error_edit("middleware not configured\n")
}

fn internal_error_edit(body: &str) -> ResponseAction {
    ResponseAction::edit()
        .status(500)
        .set_header(TEXT.0, TEXT.1)
        .body(body)
        .into()
}

/// The `extern "C"` side of [`register!`](crate::register): integer conversions only.
#[doc(hidden)]
pub mod exports {
    use super::{pack, Guest};
    use crate::Middleware;
    use std::cell::RefCell;
    use std::thread::LocalKey;

    pub type Slot<M> = LocalKey<RefCell<Guest<M>>>;

    /// Guest addresses are unsigned 32-bit; a negative i32 is a high address.
    fn addr(v: i32) -> usize {
        v as u32 as usize
    }

    fn packed(out: &[u8]) -> i64 {
        pack(out.as_ptr() as usize as u32, out.len() as u32)
    }

    pub fn alloc<M: Middleware>(slot: &'static Slot<M>, size: i32) -> i32 {
        if size < 0 {
            return 0;
        }
        slot.with(|g| match g.borrow_mut().alloc(addr(size)) {
            Some(buf) => buf.as_mut_ptr() as usize as i32,
            None => 0,
        })
    }

    pub fn init<M: Middleware>(slot: &'static Slot<M>, ptr: i32, len: i32) -> i32 {
        slot.with(|g| g.borrow_mut().init(addr(ptr), addr(len)))
    }

    pub fn on_request<M: Middleware>(slot: &'static Slot<M>, ptr: i32, len: i32) -> i64 {
        slot.with(|g| packed(g.borrow_mut().on_request(addr(ptr), addr(len))))
    }

    pub fn on_response<M: Middleware>(slot: &'static Slot<M>, ptr: i32, len: i32) -> i64 {
        slot.with(|g| packed(g.borrow_mut().on_response(addr(ptr), addr(len))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, ResponseEdit};

    #[derive(Default)]
    struct Echo {
        prefix: String,
        inits: u32,
    }

    impl Middleware for Echo {
        fn init(&mut self, config: &Config) -> Result<(), String> {
            self.inits += 1;
            match config.get("prefix") {
                None => Ok(()),
                Some(v) => {
                    self.prefix = v.as_str().ok_or("prefix must be a string")?.to_string();
                    Ok(())
                }
            }
        }

        fn on_request(&mut self, req: &Request) -> Action {
            Action::next()
                .set_header("x-path", format!("{}{}", self.prefix, req.path))
                .into()
        }

        fn on_response(&mut self, resp: &Response) -> ResponseAction {
            ResponseEdit::default().status(resp.status + 1).into()
        }
    }

    /// Writes `msg` the way the host does and returns (ptr, len).
    fn write(g: &mut Guest<Echo>, msg: &[u8]) -> (usize, usize) {
        let buf = g.alloc(msg.len()).expect("alloc");
        buf.copy_from_slice(msg);
        (buf.as_ptr() as usize, msg.len())
    }

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out);
        out
    }

    fn request(path: &str) -> Vec<u8> {
        encode(
            &[("v", Value::from(1)), ("path", Value::from(path))]
                .into_iter()
                .collect(),
        )
    }

    #[test]
    fn pack_matches_the_worked_examples_of_abi_md() {
        assert_eq!(pack(16, 1), 68719476737);
        assert_eq!(pack(65536, 45), 281474976710701);
        assert_eq!(pack(0x8000_0000, 2), -9223372036854775806);
        assert_eq!(pack(0x8000_0000, 2) as u64, 0x8000_0000_0000_0002);
    }

    #[test]
    fn a_request_goes_through_alloc_call_and_encode() {
        let mut g = Guest::new(Echo::default());
        let (ptr, len) = write(&mut g, &request("/a"));
        let expected = Action::from(Action::next().set_header("x-path", "/a")).to_bytes();
        assert_eq!(g.on_request(ptr, len), &expected[..]);
    }

    #[test]
    fn mw_init_passes_the_config_and_reports_refusal() {
        let mut g = Guest::new(Echo::default());
        let (ptr, len) = write(
            &mut g,
            &encode(&[("prefix", Value::from(">"))].into_iter().collect()),
        );
        assert_eq!(g.init(ptr, len), 0);
        let (ptr, len) = write(&mut g, &request("/a"));
        let expected = Action::from(Action::next().set_header("x-path", ">/a")).to_bytes();
        assert_eq!(g.on_request(ptr, len), &expected[..]);
        assert_eq!(g.middleware().inits, 1, "no lazy init after mw_init");

        let mut g = Guest::new(Echo::default());
        let (ptr, len) = write(
            &mut g,
            &encode(&[("prefix", Value::from(1))].into_iter().collect()),
        );
        assert_eq!(g.init(ptr, len), 1);
        let (ptr, len) = write(&mut g, &[0xc0]);
        assert_eq!(g.init(ptr, len), 1, "a config that is not a map is refused");
    }

    #[test]
    fn without_mw_init_the_first_call_initialises_with_an_empty_config() {
        let mut g = Guest::new(Echo::default());
        let (ptr, len) = write(&mut g, &request("/"));
        g.on_request(ptr, len);
        let (ptr, len) = write(&mut g, &request("/"));
        g.on_request(ptr, len);
        assert_eq!(g.middleware().inits, 1);
    }

    #[test]
    fn undecodable_input_answers_500_and_logs_an_error() {
        let mut g = Guest::new(Echo::default());
        host::take_logs();
        let (ptr, len) = write(&mut g, &[0x81, 0xa1]);
        let out = Value::decode(g.on_request(ptr, len)).unwrap();
        assert_eq!(out.get_str("action"), Some("respond"));
        assert_eq!(out.get_int("status"), Some(500));
        let logs = host::take_logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].1.starts_with("cannot decode request"), "{:?}", logs);

        let (ptr, len) = write(&mut g, &[0x92]);
        let out = Value::decode(g.on_response(ptr, len)).unwrap();
        assert_eq!(out.get_int("status"), Some(500));
    }

    #[test]
    fn a_pointer_outside_the_alloc_buffer_is_refused() {
        let mut g = Guest::new(Echo::default());
        let (ptr, len) = write(&mut g, &request("/"));
        let out = Value::decode(g.on_request(ptr + 1, len)).unwrap();
        assert_eq!(out.get_int("status"), Some(500));
        let out = Value::decode(g.on_request(0, 1)).unwrap();
        assert_eq!(out.get_int("status"), Some(500));
        assert!(input_at(&[1, 2, 3], usize::MAX, 2).is_err());
    }

    #[test]
    fn a_refused_config_answers_500_on_every_call() {
        #[derive(Default)]
        struct NeedsConfig;
        impl Middleware for NeedsConfig {
            fn init(&mut self, _config: &Config) -> Result<(), String> {
                Err("missing secret".into())
            }
        }
        let mut g = Guest::new(NeedsConfig);
        let msg = request("/");
        for _ in 0..2 {
            let buf = g.alloc(msg.len()).unwrap();
            buf.copy_from_slice(&msg);
            let ptr = buf.as_ptr() as usize;
            let out = Value::decode(g.on_request(ptr, msg.len())).unwrap();
            assert_eq!(out.get_int("status"), Some(500));
        }
    }

    #[test]
    fn responses_reach_on_response() {
        let mut g = Guest::new(Echo::default());
        let resp = encode(
            &[("v", Value::from(1)), ("status", Value::from(200))]
                .into_iter()
                .collect(),
        );
        let (ptr, len) = write(&mut g, &resp);
        let out = Value::decode(g.on_response(ptr, len)).unwrap();
        assert_eq!(out, [("status", Value::from(201))].into_iter().collect());
    }

    #[test]
    fn an_invalid_answer_is_logged_then_trapped_never_encoded() {
        #[derive(Default)]
        struct Interim;
        impl Middleware for Interim {
            fn on_request(&mut self, _req: &Request) -> Action {
                Action::respond(100).into()
            }
        }
        let mut g = Guest::new(Interim);
        host::take_logs();
        let msg = request("/");
        let buf = g.alloc(msg.len()).unwrap();
        buf.copy_from_slice(&msg);
        let ptr = buf.as_ptr() as usize;
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            g.on_request(ptr, msg.len()).to_vec()
        }));
        assert!(answered.is_err(), "the invalid action was encoded");
        let logs = host::take_logs();
        assert_eq!(
            logs.last().unwrap().1,
            "invalid action (ABI.md Validation): status 100 is not a final status within 200..599"
        );
    }

    #[test]
    fn alloc_of_zero_bytes_is_a_usable_nonzero_address() {
        let mut g = Guest::new(Echo::default());
        let ptr = g.alloc(0).unwrap().as_ptr() as usize;
        assert_ne!(ptr, 0);
    }
}
