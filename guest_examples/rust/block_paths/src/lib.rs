//! block_paths: answers a fixed status (403 by default) for paths under configured
//! prefixes. Matching is by whole path segments: `/admin` blocks `/admin` and `/admin/x`,
//! not `/administrator`.

use mwhost_guest::{Action, Config, Middleware, Request};

#[derive(Default)]
struct BlockPaths {
    /// Each prefix as its segments: `/admin/x` -> ["admin", "x"]; `/` -> [] (everything).
    prefixes: Vec<Vec<String>>,
    /// The refusal is constant, so it is encoded once.
    deny: Action,
}

impl Middleware for BlockPaths {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        config.reject_unknown_keys(&["prefixes", "status"])?;
        self.prefixes = prefixes(config)?;
        let status = status(config)?;
        self.deny = Action::respond(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body("blocked\n")
            .prebuild();
        Ok(())
    }

    fn on_request(&mut self, req: &Request) -> Action {
        if is_blocked(&self.prefixes, req.path) {
            self.deny.clone()
        } else {
            Action::default()
        }
    }
}

mwhost_guest::register!(BlockPaths, request_only);

fn prefixes(config: &Config) -> Result<Vec<Vec<String>>, String> {
    let items = config
        .get_array("prefixes")
        .ok_or("prefixes is required (a list of paths)")?;
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(p) if p.starts_with('/') => {
                Ok(segments(p).into_iter().map(str::to_owned).collect())
            }
            Some(p) => Err(format!("prefixes: \"{}\" does not start with /", p)),
            None => Err(format!(
                "prefixes: items must be strings, not {}",
                item.kind()
            )),
        })
        .collect()
}

fn status(config: &Config) -> Result<u16, String> {
    match config.get("status") {
        None => Ok(403),
        Some(v) => v
            .as_int()
            .filter(|s| (100..=599).contains(s))
            .map(|s| s as u16)
            .ok_or_else(|| "status must be an integer in 100..599".into()),
    }
}

/// The path's segments after resolving `.`, `..` and empty segments, so `//admin` or
/// `/x/../admin` cannot slip past a prefix.
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out
}

fn is_blocked(prefixes: &[Vec<String>], path: &str) -> bool {
    let path = segments(path);
    prefixes
        .iter()
        .any(|prefix| prefix.len() <= path.len() && prefix.iter().zip(&path).all(|(a, b)| a == b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwhost_guest::Value;

    fn config(prefixes: &[&str], status: Option<i64>) -> Config {
        let mut entries = vec![(
            "prefixes",
            Value::from(prefixes.iter().map(|&p| Value::from(p)).collect::<Vec<_>>()),
        )];
        entries.extend(status.map(|s| ("status", Value::from(s))));
        entries.into_iter().collect()
    }

    fn blocks(prefixes: &[&str], path: &str) -> bool {
        is_blocked(&super::prefixes(&config(prefixes, None)).unwrap(), path)
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(blocks(&["/admin"], "/admin"));
        assert!(blocks(&["/admin"], "/admin/"));
        assert!(blocks(&["/admin"], "/admin/users/1"));
        assert!(!blocks(&["/admin"], "/administrator"));
        assert!(!blocks(&["/admin"], "/"));
        assert!(!blocks(&["/admin"], "/public/admin"));
        assert!(blocks(&["/api/internal"], "/api/internal/x"));
        assert!(!blocks(&["/api/internal"], "/api/internals"));
        assert!(
            blocks(&["/admin/"], "/admin"),
            "a trailing slash in the config does not matter"
        );
        assert!(blocks(&["/"], "/anything"));
    }

    #[test]
    fn dot_segments_and_doubled_slashes_cannot_bypass() {
        assert!(blocks(&["/admin"], "//admin"));
        assert!(blocks(&["/admin"], "/./admin/x"));
        assert!(blocks(&["/admin"], "/public/../admin"));
        assert!(blocks(&["/admin"], "/../admin"));
    }

    #[test]
    fn blocked_requests_get_the_configured_status_and_others_continue() {
        let mut mw = BlockPaths::default();
        mw.init(&config(&["/admin", "/internal"], Some(404)))
            .unwrap();
        let blocked = Request {
            path: "/internal/metrics",
            ..Request::default()
        };
        let expected: Action = Action::respond(404)
            .header("content-type", "text/plain; charset=utf-8")
            .body("blocked\n")
            .into();
        assert_eq!(mw.on_request(&blocked).to_bytes(), expected.to_bytes());
        let open = Request {
            path: "/index.html",
            ..Request::default()
        };
        assert_eq!(mw.on_request(&open), Action::default());
    }

    #[test]
    fn bad_configs_are_refused_at_init() {
        let bad = [
            Value::empty_map(),
            config(&["admin"], None),
            config(&["/admin"], Some(600)),
            config(&["/admin"], Some(99)),
            [("prefixes", Value::from("/admin"))].into_iter().collect(),
            [("prefixes", Value::from(vec![Value::from(1)]))]
                .into_iter()
                .collect(),
        ];
        for c in bad {
            assert!(BlockPaths::default().init(&c).is_err(), "{:?}", c);
        }
    }
}
