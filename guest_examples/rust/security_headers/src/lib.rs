//! security_headers: adds browser security headers to every response and removes headers
//! that reveal the server. Response phase only; the edit is the same for every response,
//! so it is encoded once at `init`.

use mwhost_guest::{
    is_valid_header_name, is_valid_header_value, Config, Middleware, Response, ResponseAction,
};

const DEFAULT_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("content-security-policy", "default-src 'self'"),
];

const DEFAULT_REMOVE: [&str; 2] = ["server", "x-powered-by"];

#[derive(Default)]
struct SecurityHeaders {
    edit: ResponseAction,
}

impl Middleware for SecurityHeaders {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        config.reject_unknown_keys(&["headers", "remove"])?;
        let headers = headers(config)?;
        let remove = remove(config)?;
        let mut edit = ResponseAction::edit();
        for name in remove {
            edit = edit.remove_header(name);
        }
        for (name, value) in headers {
            edit = edit.set_header(name, value);
        }
        self.edit = edit.prebuild();
        Ok(())
    }

    fn on_response(&mut self, _resp: &Response) -> ResponseAction {
        self.edit.clone()
    }
}

// The request phase is the SDK default (continue unchanged).
mwhost_guest::register!(SecurityHeaders);

/// The defaults, overridden by the `headers` table: a new value replaces a default, an
/// empty string drops it, other names are added.
fn headers(config: &Config) -> Result<Vec<(String, String)>, String> {
    let mut headers: Vec<(String, String)> = DEFAULT_HEADERS
        .iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let table = match config.get("headers") {
        None => &[][..],
        Some(v) => v
            .as_map()
            .ok_or("headers must be a table of name = value")?,
    };
    for (name, value) in table {
        let name = name.to_ascii_lowercase();
        let value = value
            .as_str()
            .ok_or_else(|| format!("headers.{} must be a string", name))?;
        if !is_valid_header_name(&name) || !is_valid_header_value(value) {
            return Err(format!("headers.{}: invalid header name or value", name));
        }
        headers.retain(|(n, _)| *n != name);
        if !value.is_empty() {
            headers.push((name, value.to_string()));
        }
    }
    Ok(headers)
}

/// Header names to strip; the list replaces the default (`[]` removes nothing).
fn remove(config: &Config) -> Result<Vec<String>, String> {
    let items = match config.get("remove") {
        None => return Ok(DEFAULT_REMOVE.iter().map(|n| n.to_string()).collect()),
        Some(v) => v
            .as_array()
            .ok_or("remove must be a list of header names")?,
    };
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(name) if is_valid_header_name(name) => Ok(name.to_ascii_lowercase()),
            Some(name) => Err(format!("remove: \"{}\" is not a header name", name)),
            None => Err(format!(
                "remove: items must be strings, not {}",
                item.kind()
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwhost_guest::Value;

    fn edit_for(config: Config) -> Vec<u8> {
        let mut mw = SecurityHeaders::default();
        mw.init(&config).unwrap();
        mw.on_response(&Response::default()).to_bytes()
    }

    #[test]
    fn defaults_set_five_headers_and_remove_server_headers() {
        let mut expected = ResponseAction::edit()
            .remove_header("server")
            .remove_header("x-powered-by");
        for (n, v) in DEFAULT_HEADERS {
            expected = expected.set_header(n, v);
        }
        assert_eq!(
            edit_for(Value::empty_map()),
            ResponseAction::from(expected).to_bytes()
        );
    }

    #[test]
    fn config_overrides_drops_and_adds_headers() {
        let config: Config = vec![
            (
                "headers",
                vec![
                    ("Content-Security-Policy", Value::from("default-src 'none'")),
                    ("x-frame-options", Value::from("")),
                    ("permissions-policy", Value::from("camera=()")),
                ]
                .into_iter()
                .collect(),
            ),
            ("remove", Value::from(vec![])),
        ]
        .into_iter()
        .collect();
        let expected = ResponseAction::edit()
            .set_header("x-content-type-options", "nosniff")
            .set_header("referrer-policy", "no-referrer")
            .set_header(
                "strict-transport-security",
                "max-age=63072000; includeSubDomains",
            )
            .set_header("content-security-policy", "default-src 'none'")
            .set_header("permissions-policy", "camera=()");
        assert_eq!(edit_for(config), ResponseAction::from(expected).to_bytes());
    }

    #[test]
    fn bad_configs_are_refused_at_init() {
        let bad: [Config; 5] = [
            [("headers", Value::from("x"))].into_iter().collect(),
            [(
                "headers",
                [("bad name", Value::from("v"))].into_iter().collect(),
            )]
            .into_iter()
            .collect(),
            [(
                "headers",
                [("x-a", Value::from("a\nb"))].into_iter().collect(),
            )]
            .into_iter()
            .collect(),
            [("remove", Value::from(vec![Value::from(1)]))]
                .into_iter()
                .collect(),
            [("extra", Value::from(1))].into_iter().collect(),
        ];
        for c in bad {
            assert!(SecurityHeaders::default().init(&c).is_err(), "{:?}", c);
        }
    }
}
