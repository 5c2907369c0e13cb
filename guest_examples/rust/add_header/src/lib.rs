//! add_header: adds configured headers to every request and its response.
//!
//! The answer never depends on the request, so it is encoded once at `init` and each call
//! only copies it: this is the benchmark stage, and the cheapest an SDK guest can be.

use mwhost_guest::{
    is_valid_header_name, is_valid_header_value, Action, Config, Middleware, Request,
};

#[derive(Default)]
struct AddHeader {
    action: Action,
}

impl Middleware for AddHeader {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.action = build_action(config)?;
        Ok(())
    }

    fn on_request(&mut self, _req: &Request) -> Action {
        // PERF: a clone of a prebuilt action is a reference-count increment.
        self.action.clone()
    }
}

// No response-phase work: the response headers ride on the continue action.
mwhost_guest::register!(AddHeader, request_only);

/// One continue action carrying both tables, encoded once.
fn build_action(config: &Config) -> Result<Action, String> {
    config.reject_unknown_keys(&["request_headers", "response_headers"])?;
    let mut action = Action::next();
    for (name, value) in header_table(config, "request_headers")? {
        action = action.set_header(name, value);
    }
    for (name, value) in header_table(config, "response_headers")? {
        action = action.response_header(name, value);
    }
    Ok(action.prebuild())
}

/// `{name: value, ...}` under `key` (absent = empty), checked against the host's rules.
fn header_table<'c>(config: &'c Config, key: &str) -> Result<Vec<(&'c str, &'c str)>, String> {
    let table = match config.get(key) {
        None => return Ok(Vec::new()),
        Some(v) => v
            .as_map()
            .ok_or_else(|| format!("{} must be a table of name = value", key))?,
    };
    table
        .iter()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .ok_or_else(|| format!("{}.{} must be a string", key, name))?;
            if !is_valid_header_name(name) || !is_valid_header_value(value) {
                return Err(format!("{}.{}: invalid header name or value", key, name));
            }
            Ok((name.as_str(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwhost_guest::Value;

    fn table(pairs: &[(&str, &str)]) -> Value {
        pairs.iter().map(|&(k, v)| (k, Value::from(v))).collect()
    }

    #[test]
    fn both_tables_land_in_one_continue_action() {
        let config: Config = vec![
            (
                "request_headers",
                table(&[("x-request-source", "mwhost"), ("X-Upper", "1")]),
            ),
            ("response_headers", table(&[("x-served-by", "mwhost")])),
        ]
        .into_iter()
        .collect();
        let expected: Action = Action::next()
            .set_header("x-request-source", "mwhost")
            .set_header("x-upper", "1")
            .response_header("x-served-by", "mwhost")
            .into();
        assert_eq!(
            build_action(&config).unwrap().to_bytes(),
            expected.to_bytes()
        );
    }

    #[test]
    fn an_empty_config_continues_unchanged() {
        let action = build_action(&Value::empty_map()).unwrap();
        assert_eq!(action.to_bytes(), Action::default().to_bytes());
    }

    #[test]
    fn bad_configs_are_refused_at_init() {
        let bad = [
            vec![("request_headers", Value::from("x"))],
            vec![(
                "request_headers",
                [("x-a", Value::from(1))].into_iter().collect(),
            )],
            vec![("request_headers", table(&[("bad name", "v")]))],
            vec![("response_headers", table(&[("x-a", "v\r\nset-cookie: a")]))],
            vec![("request_header", table(&[]))],
        ];
        for config in bad {
            let config: Config = config.into_iter().collect();
            assert!(AddHeader::default().init(&config).is_err(), "{:?}", config);
        }
    }
}
