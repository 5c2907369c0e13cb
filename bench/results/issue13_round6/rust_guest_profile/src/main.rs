//! The Rust SDK's request path natively, for callgrind (issue 13 round 6): a middleware doing
//! add_header's job (one prebuilt continue action, cloned per call) called through the SDK's
//! `Guest` as the wasm exports call it: `alloc`, the message copied in, `on_request`.
//!
//! Usage: rust_guest_profile CALLS REQUEST.bin CONFIG.bin (make_messages.py writes both)
use mwhost_guest::{Action, Config, Guest, Middleware, Request};

#[derive(Default)]
struct AddOne {
    action: Action,
}

impl Middleware for AddOne {
    fn init(&mut self, _config: &Config) -> Result<(), String> {
        self.action = Action::next()
            .set_header("x-req-0", "1")
            .response_header("x-resp-0", "1")
            .prebuild();
        Ok(())
    }

    fn on_request(&mut self, _req: &Request) -> Action {
        self.action.clone()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args[1].parse().expect("CALLS");
    let request = std::fs::read(&args[2]).expect("REQUEST.bin");
    let config = std::fs::read(&args[3]).expect("CONFIG.bin");
    let mut guest = Guest::new(AddOne::default());
    let buf = guest.alloc(config.len()).expect("alloc");
    buf.copy_from_slice(&config);
    let ptr = buf.as_ptr() as usize;
    assert_eq!(guest.init(ptr, config.len()), 0);
    let mut total = 0usize;
    for _ in 0..calls {
        let buf = guest.alloc(request.len()).expect("alloc");
        buf.copy_from_slice(&request);
        let ptr = buf.as_ptr() as usize;
        total += guest.on_request(ptr, request.len()).len();
    }
    println!("{} output bytes", total);
}
