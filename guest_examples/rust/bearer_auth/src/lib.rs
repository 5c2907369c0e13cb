//! bearer_auth: lets a request through only with a valid HS256 JWT
//! (`authorization: Bearer <token>`), and passes the token's `sub` on as ctx `sub`.
//! Refusals are 401s with an RFC 6750 `www-authenticate` challenge.

mod base64url;
mod json;
mod jwt;
mod sha256;

use mwhost_guest::{debug, error, now_unix_seconds, warn, Action, Config, Middleware, Request};

use jwt::{JwtError, Verifier};
use sha256::HmacKey;

const DEFAULT_REALM: &str = "mwhost";

#[derive(Default)]
struct BearerAuth {
    /// None until `init` accepted a secret (the SDK never calls on_request before that).
    verifier: Option<Verifier>,
    realm: String,
    /// The answer to a request without a token: constant, so encoded once.
    missing: Action,
}

impl Middleware for BearerAuth {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        config.reject_unknown_keys(&["secret", "realm", "leeway_s"])?;
        let secret = match config.get_str("secret") {
            Some(s) if !s.is_empty() => s,
            _ => return Err("secret is required (a non-empty string)".into()),
        };
        if secret.len() < 32 {
            warn("bearer_auth: secret shorter than 32 bytes; RFC 7518 asks for at least 256 bits");
        }
        self.realm = realm(config)?;
        let leeway_s = leeway(config)?;
        self.verifier = Some(Verifier {
            key: HmacKey::new(secret.as_bytes()),
            leeway_s,
        });
        self.missing = challenge(&self.realm, None).prebuild();
        Ok(())
    }

    fn on_request(&mut self, req: &Request) -> Action {
        let (verifier, token) = match (&self.verifier, bearer_token(req.header("authorization"))) {
            (Some(v), Some(t)) => (v, t),
            _ => return self.missing.clone(),
        };
        let now = now_unix_seconds();
        if now == 0 {
            error("bearer_auth: clock unavailable, refusing tokens");
            return Action::respond(500)
                .header("content-type", "text/plain")
                .body("clock unavailable\n")
                .into();
        }
        match verifier.verify(token, now) {
            Ok(claims) => match claims.sub {
                Some(sub) => Action::next().ctx("sub", sub).into(),
                None => Action::default(),
            },
            Err(e) => {
                debug(&format!(
                    "bearer_auth: {} {}: {}",
                    req.method,
                    req.path,
                    e.description()
                ));
                challenge(&self.realm, Some(e))
            }
        }
    }
}

mwhost_guest::register!(BearerAuth, request_only);

fn realm(config: &Config) -> Result<String, String> {
    let realm = match config.get("realm") {
        None => DEFAULT_REALM,
        Some(v) => v.as_str().ok_or("realm must be a string")?,
    };
    // It goes inside a quoted-string: printable ASCII without `"` or `\`.
    if realm
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        Ok(realm.to_string())
    } else {
        Err("realm must be printable ASCII without quotes or backslashes".into())
    }
}

fn leeway(config: &Config) -> Result<u64, String> {
    match config.get("leeway_s") {
        None => Ok(0),
        Some(v) => v
            .as_int()
            .and_then(|s| u64::try_from(s).ok())
            .ok_or_else(|| "leeway_s must be a non-negative integer".into()),
    }
}

/// The token of an `authorization: Bearer <token>` header (scheme in any case).
fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim_start();
    if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
        Some(token)
    } else {
        None
    }
}

/// 401 with an RFC 6750 challenge: without `error` when no token came, else
/// `invalid_token` with the reason.
fn challenge(realm: &str, err: Option<JwtError>) -> Action {
    let (www_authenticate, body) = match err {
        None => (
            format!("Bearer realm=\"{}\"", realm),
            r#"{"error":"unauthorized","error_description":"bearer token required"}"#.to_string(),
        ),
        Some(e) => (
            format!(
                "Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{}\"",
                realm,
                e.description()
            ),
            format!(
                r#"{{"error":"invalid_token","error_description":"{}"}}"#,
                e.description()
            ),
        ),
    };
    Action::respond(401)
        .header("www-authenticate", www_authenticate)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt::tests::{token, SECRET};
    use mwhost_guest::{Respond, Value};

    fn configured(leeway_s: i64) -> BearerAuth {
        let mut mw = BearerAuth::default();
        let config: Config = vec![
            ("secret", Value::from(std::str::from_utf8(SECRET).unwrap())),
            ("leeway_s", Value::from(leeway_s)),
        ]
        .into_iter()
        .collect();
        mw.init(&config).unwrap();
        mw
    }

    fn request(authorization: Option<&str>) -> Request<'_> {
        Request {
            path: "/",
            headers: authorization
                .map(|a| ("authorization", a))
                .into_iter()
                .collect(),
            ..Request::default()
        }
    }

    fn respond(action: Action) -> Respond {
        match action {
            Action::Respond(r) => r,
            other => panic!("expected respond, got {:?}", other),
        }
    }

    fn header<'r>(r: &'r Respond, name: &str) -> &'r str {
        &r.headers.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn a_valid_token_continues_with_sub_in_ctx() {
        let now = now_unix_seconds();
        let bearer = format!(
            "Bearer {}",
            token(&format!(r#"{{"sub":"alice","exp":{}}}"#, now + 60))
        );
        let action = configured(0).on_request(&request(Some(&bearer)));
        assert_eq!(action, Action::next().ctx("sub", "alice").into());
        let lower = bearer.replacen("Bearer", "bearer", 1);
        assert!(matches!(
            configured(0).on_request(&request(Some(&lower))),
            Action::Continue(_)
        ));
    }

    #[test]
    fn a_missing_token_gets_a_challenge_without_error() {
        let mut mw = configured(0);
        for auth in [
            None,
            Some("Basic dXNlcjpwdw=="),
            Some("Bearer "),
            Some("Bearer"),
        ] {
            let action = mw.on_request(&request(auth));
            assert_eq!(
                action.to_bytes(),
                challenge("mwhost", None).to_bytes(),
                "{:?}",
                auth
            );
        }
        let r = respond(challenge("mwhost", None));
        assert_eq!(r.status, 401);
        assert_eq!(header(&r, "www-authenticate"), "Bearer realm=\"mwhost\"");
    }

    #[test]
    fn an_expired_token_gets_invalid_token_with_a_reason() {
        let now = now_unix_seconds();
        let bearer = format!("Bearer {}", token(&format!(r#"{{"exp":{}}}"#, now - 30)));
        let r = respond(configured(0).on_request(&request(Some(&bearer))));
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            "Bearer realm=\"mwhost\", error=\"invalid_token\", error_description=\"token expired\""
        );
        assert_eq!(
            r.body.as_deref(),
            Some(&br#"{"error":"invalid_token","error_description":"token expired"}"#[..])
        );
        assert!(matches!(
            configured(60).on_request(&request(Some(&bearer))),
            Action::Continue(_)
        ));
    }

    #[test]
    fn init_requires_a_secret_and_checks_the_options() {
        let bad: Vec<Vec<(&str, Value)>> = vec![
            vec![],
            vec![("secret", Value::from(""))],
            vec![("secret", Value::from(1))],
            vec![("secret", Value::from("s")), ("realm", Value::from("a\"b"))],
            vec![("secret", Value::from("s")), ("leeway_s", Value::from(-1))],
            vec![("secret", Value::from("s")), ("leeway", Value::from(1))],
        ];
        for config in bad {
            let config: Config = config.into_iter().collect();
            assert!(BearerAuth::default().init(&config).is_err(), "{:?}", config);
        }
        let config: Config = vec![
            ("secret", Value::from("short")),
            ("realm", Value::from("api")),
        ]
        .into_iter()
        .collect();
        let mut mw = BearerAuth::default();
        assert_eq!(mw.init(&config), Ok(()));
        assert_eq!(mw.missing.to_bytes(), challenge("api", None).to_bytes());
    }

    #[test]
    fn bearer_token_takes_the_credentials_after_the_scheme() {
        assert_eq!(
            bearer_token(Some("Bearer abc.def.ghi")),
            Some("abc.def.ghi")
        );
        assert_eq!(bearer_token(Some("BEARER   abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Bearerabc")), None);
        assert_eq!(bearer_token(None), None);
    }
}
