//! The SDK against the golden ABI vectors (abi/vectors): every valid vector is decoded or
//! re-encoded here, and a vector without an expectation fails the suite.

use mwhost_guest::{Action, Pair, Request, RequestInfo, Response, ResponseAction, Value};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../abi/vectors");

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/{}.msgpack", VECTORS, name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {}", path, e))
}

/// `(name, valid)` for each entry of index.json. The file is machine-written with one
/// key per line, so a line scan is enough here.
fn index() -> Vec<(String, bool)> {
    index_with_sdk().into_iter().map(|(n, v, _)| (n, v)).collect()
}

/// `(name, valid, sdk)`: `sdk` marks the bad outputs a typed builder can express.
fn index_with_sdk() -> Vec<(String, bool, bool)> {
    let text = std::fs::read_to_string(format!("{}/index.json", VECTORS)).unwrap();
    let mut entries = Vec::new();
    let mut name = None;
    let mut sdk = false;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("\"name\": \"") {
            name = Some(rest.trim_end_matches(&['"', ','][..]).to_string());
            sdk = false;
        } else if line.starts_with("\"sdk\": true") {
            sdk = true;
        } else if let Some(rest) = line.strip_prefix("\"valid\": ") {
            let valid = rest.trim_end_matches(',') == "true";
            entries.push((name.take().expect("name before valid"), valid, sdk));
        }
    }
    assert!(
        entries.len() > 20,
        "index.json parsed to {} entries",
        entries.len()
    );
    entries
}

fn pairs<'a>(items: &[(&'a str, &'a str)]) -> Vec<Pair<'a>> {
    items.to_vec()
}

fn check_request(name: &str, bytes: &[u8]) {
    let req = Request::decode(bytes).unwrap();
    let expected = match name {
        "request_minimal" => Request {
            v: 1,
            method: "GET",
            path: "/",
            query: "",
            headers: vec![],
            remote_addr: "127.0.0.1",
            scheme: "http",
            ctx: vec![],
            body: None,
        },
        "request_typical" => Request {
            v: 1,
            method: "GET",
            path: "/api/items",
            query: "limit=10&sort=name",
            headers: pairs(&[
                ("host", "example.test"),
                ("user-agent", "curl/8.5.0"),
                ("accept", "*/*"),
                ("authorization", "Bearer abc.def.ghi"),
                ("x-forwarded-for", "10.0.0.1"),
                ("x-forwarded-for", "10.0.0.2"),
            ]),
            remote_addr: "192.0.2.7",
            scheme: "https",
            ctx: pairs(&[("request_id", "r-42")]),
            body: None,
        },
        "request_with_body" => Request {
            v: 1,
            method: "POST",
            path: "/upload",
            query: "",
            headers: pairs(&[
                ("content-type", "application/json"),
                ("content-length", "7"),
            ]),
            remote_addr: "::1",
            scheme: "http",
            ctx: vec![],
            body: Some(b"{\"a\":1}"),
        },
        "request_unicode" => Request {
            v: 1,
            method: "GET",
            path: "/caf\u{e9}/\u{65e5}\u{672c}",
            query: "q=\u{fc}",
            headers: pairs(&[("x-name", "J\u{fc}rgen")]),
            remote_addr: "127.0.0.1",
            scheme: "http",
            ctx: pairs(&[("user", "\u{e9}lodie")]),
            body: None,
        },
        _ => panic!("no expectation for request vector {}", name),
    };
    assert_eq!(req, expected, "{}", name);
}

fn check_response(name: &str, bytes: &[u8]) {
    let resp = Response::decode(bytes).unwrap();
    let expected = match name {
        "response_typical" => Response {
            v: 1,
            status: 200,
            headers: pairs(&[
                ("content-type", "application/json"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ]),
            ctx: pairs(&[("request_id", "r-42")]),
            request: RequestInfo {
                method: "GET",
                path: "/api/items",
            },
            body: None,
        },
        "response_with_body" => Response {
            v: 1,
            status: 404,
            headers: pairs(&[("content-type", "text/plain")]),
            ctx: vec![],
            request: RequestInfo {
                method: "GET",
                path: "/missing",
            },
            body: Some(b"not found"),
        },
        _ => panic!("no expectation for response vector {}", name),
    };
    assert_eq!(resp, expected, "{}", name);
}

/// The vector's message built with the SDK's builders.
fn build_action(name: &str) -> Action {
    match name {
        "action_continue_empty" => Action::next().into(),
        "action_continue_full" => Action::next()
            .set_header("x-user", "alice")
            .set_header("x-tags", "a")
            .set_header("x-tags", "b")
            .remove_header("cookie")
            .path("/v2/items")
            .query("limit=5")
            .ctx("user", "alice")
            .response_header("x-served-by", "mw")
            .into(),
        "action_respond" => Action::respond(403)
            .header("content-type", "text/plain")
            .body("forbidden\n")
            .into(),
        "action_respond_minimal" => Action::respond(204).into(),
        _ => panic!("no builder for action vector {}", name),
    }
}

fn build_response_action(name: &str) -> ResponseAction {
    match name {
        "response_action_empty" => ResponseAction::unchanged(),
        "response_action_full" => ResponseAction::edit()
            .status(201)
            .set_header("x-frame-options", "DENY")
            .remove_header("server")
            .body("created")
            .into(),
        _ => panic!("no builder for response_action vector {}", name),
    }
}

fn check_config(name: &str, bytes: &[u8]) {
    assert_eq!(
        name, "config_example",
        "no expectation for config vector {}",
        name
    );
    let config = Value::decode(bytes).unwrap();
    assert_eq!(
        config.get_map("headers"),
        Some(&[("x-a".to_string(), Value::from("1"))][..])
    );
    let prefixes: Vec<_> = config
        .get_array("prefixes")
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(prefixes, ["/admin", "/internal"]);
    assert_eq!(config.get_int("limit"), Some(10));
    assert_eq!(config.get_bool("enabled"), Some(true));
    assert_eq!(config.get_f64("ratio"), Some(0.5));
    let mut again = Vec::new();
    config.encode(&mut again);
    assert_eq!(again, bytes, "a config re-encodes to the same bytes");
}

#[test]
fn every_valid_vector_decodes_or_re_encodes_exactly() {
    let mut checked = 0;
    for (name, valid) in index() {
        if !valid {
            continue;
        }
        let bytes = read(&name);
        match name.split('_').next().unwrap() {
            "request" => check_request(&name, &bytes),
            "response" if name.starts_with("response_action_") => {
                assert_eq!(build_response_action(&name).to_bytes(), bytes, "{}", name);
                assert_eq!(
                    build_response_action(&name).prebuild().to_bytes(),
                    bytes,
                    "{}",
                    name
                );
            }
            "response" => check_response(&name, &bytes),
            "action" => {
                assert_eq!(build_action(&name).to_bytes(), bytes, "{}", name);
                assert_eq!(build_action(&name).prebuild().to_bytes(), bytes, "{}", name);
            }
            "config" => check_config(&name, &bytes),
            _ => panic!("unknown vector kind: {}", name),
        }
        checked += 1;
    }
    assert_eq!(checked, 13);
}

#[test]
fn every_valid_vector_is_one_well_formed_msgpack_value() {
    for (name, valid) in index() {
        if valid {
            let bytes = read(&name);
            let value = Value::decode(&bytes).unwrap_or_else(|e| panic!("{}: {}", name, e));
            let mut again = Vec::new();
            value.encode(&mut again);
            assert_eq!(again, bytes, "{} round-trips through Value", name);
        }
    }
}

/// Invalid vectors are guest outputs the host refuses; the ones that are not one complete,
/// well-formed msgpack value must be refused by the SDK's reader too.
#[test]
fn structurally_broken_vectors_are_decode_errors() {
    let broken = [
        "bad_empty",
        "bad_truncated",
        "bad_trailing",
        "bad_invalid_utf8",
        "bad_ctx_key_bin", // the reader takes str map keys only
    ];
    for (name, valid) in index() {
        if valid {
            continue;
        }
        let result = Value::decode(&read(&name));
        if broken.contains(&name.as_str()) {
            assert!(result.is_err(), "{} should not decode", name);
        } else {
            assert!(
                result.is_ok(),
                "{} is well-formed msgpack (semantically bad): {:?}",
                name,
                result
            );
        }
    }
}

#[test]
fn request_decoding_ignores_unknown_keys() {
    let mut bytes = read("request_minimal");
    // Bump the fixmap count and append an unknown key holding a nested value.
    bytes[0] += 1;
    let extra: Value = [("k", Value::from(vec![Value::from(1), Value::Nil]))]
        .into_iter()
        .collect();
    let mut tail = Vec::new();
    mwhost_guest::msgpack::Writer::new(&mut tail).str("future_key");
    if let Value::Map(entries) = extra {
        entries[0].1.encode(&mut tail);
    }
    bytes.extend_from_slice(&tail);
    let req = Request::decode(&bytes).unwrap();
    assert_eq!(req.path, "/");
    assert_eq!(req.remote_addr, "127.0.0.1");
}

#[test]
fn request_helpers_find_headers_any_case_and_ctx() {
    let bytes = read("request_typical");
    let req = Request::decode(&bytes).unwrap();
    assert_eq!(req.header("Authorization"), Some("Bearer abc.def.ghi"));
    assert_eq!(
        req.header_values("x-forwarded-for").collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2"]
    );
    assert_eq!(req.ctx_value("request_id"), Some("r-42"));
    assert_eq!(req.header("missing"), None);
}

#[test]
fn truncated_requests_are_errors_at_every_cut() {
    let bytes = read("request_typical");
    for cut in 0..bytes.len() {
        assert!(Request::decode(&bytes[..cut]).is_err(), "cut at {}", cut);
    }
    let bytes = read("response_with_body");
    for cut in 0..bytes.len() {
        assert!(Response::decode(&bytes[..cut]).is_err(), "cut at {}", cut);
    }
}

fn build_bad(name: &str) -> Result<Action, ResponseAction> {
    let many = |n: usize| (0..n).map(|i| format!("x-{:03}", i)).collect::<Vec<_>>();
    Ok(match name {
        "bad_status_range" => Action::respond(600).into(),
        "bad_status_interim" => Action::respond(100).into(),
        "bad_response_action_interim" => return Err(ResponseAction::edit().status(103).into()),
        "bad_bodiless_with_body" => Action::respond(204).body("x").into(),
        "bad_response_action_bodiless_with_body" => {
            return Err(ResponseAction::edit().status(304).body("x").into())
        }
        "bad_header_control_char" => Action::next().set_header("x-a", "a\u{1}b").into(),
        "bad_header_del" => Action::next().response_header("x-a", "a\u{7f}").into(),
        "bad_header_not_latin1" => Action::respond(200).header("x-a", "snow \u{2603}").into(),
        "bad_content_length" => Action::respond(200).header("content-length", "abc").into(),
        "bad_too_many_headers" => (0..101)
            .fold(Action::next(), |c, _| c.set_header("x-a", "1"))
            .into(),
        "bad_header_bytes" => Action::next()
            .response_header("x-a", "v".repeat(65536))
            .into(),
        "bad_too_many_remove_headers" => many(101)
            .into_iter()
            .fold(Action::next(), |c, n| c.remove_header(n))
            .into(),
        "bad_too_many_ctx" => (0..101)
            .fold(Action::next(), |c, i| c.ctx(format!("k{:03}", i), "v"))
            .into(),
        _ => panic!("no builder for sdk vector {}", name),
    })
}

/// Every bad output a typed builder can express (index.json "sdk": true) is built here to
/// the vector's exact bytes, and the SDK's check refuses it, prebuilt or not.
#[test]
fn the_sdk_refuses_every_expressible_bad_output_vector() {
    let mut checked = 0;
    for (name, _, sdk) in index_with_sdk() {
        if !sdk {
            continue;
        }
        let (bytes, check, prebuilt_check) = match build_bad(&name) {
            Ok(a) => (a.to_bytes(), a.check(), a.prebuild().check()),
            Err(r) => (r.to_bytes(), r.check(), r.prebuild().check()),
        };
        assert_eq!(bytes, read(&name), "{} builds the vector's bytes", name);
        assert!(check.is_err(), "{} passes the check", name);
        assert_eq!(check, prebuilt_check, "{}", name);
        checked += 1;
    }
    assert!(checked >= 13, "{} sdk vectors", checked);
}
