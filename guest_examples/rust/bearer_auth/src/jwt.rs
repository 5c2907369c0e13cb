//! HS256 JWT verification (RFC 7519 / 7515 / 7518), compact serialization only.
//!
//! Order matters: the header is checked first (only `HS256`, no `crit`), then the
//! signature, and only then are the claims parsed, so unauthenticated claims never
//! influence anything.

use crate::base64url;
use crate::json::{self, Json};
use crate::sha256::HmacKey;

/// Why a token was refused; the text goes into `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    Algorithm,
    Signature,
    Claims,
    MissingExp,
    Expired,
    NotYetValid,
}

impl JwtError {
    /// Fixed text, safe inside a quoted-string (no `"` or `\`).
    pub fn description(self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed token",
            JwtError::Algorithm => "unsupported algorithm",
            JwtError::Signature => "invalid signature",
            JwtError::Claims => "invalid claims",
            JwtError::MissingExp => "exp claim required",
            JwtError::Expired => "token expired",
            JwtError::NotYetValid => "token not yet valid",
        }
    }
}

/// The verified claims this middleware uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub sub: Option<String>,
}

/// What a token is checked against.
pub struct Verifier {
    pub key: HmacKey,
    pub leeway_s: u64,
}

impl Verifier {
    /// Verifies `token` at Unix time `now` (seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (header, payload, signature) =
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(h), Some(p), Some(s), None) => (h, p, s),
                _ => return Err(JwtError::Malformed),
            };
        check_header(header)?;
        let signature = base64url::decode(signature).ok_or(JwtError::Malformed)?;
        // The signing input is the token's own text up to the second dot.
        let signed = &token[..header.len() + 1 + payload.len()];
        if !constant_time_eq(&self.key.mac(signed.as_bytes()), &signature) {
            return Err(JwtError::Signature);
        }
        let claims = base64url::decode(payload).ok_or(JwtError::Malformed)?;
        let claims = json::parse_object(&claims).ok_or(JwtError::Claims)?;
        self.check_times(&claims, now as f64)?;
        let sub = match json::get(&claims, "sub") {
            Some(Json::Str(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(Claims { sub })
    }

    /// `exp` is required and must be after `now - leeway`; `nbf`, when present, must be
    /// at or before `now + leeway`.
    fn check_times(&self, claims: &json::Object, now: f64) -> Result<(), JwtError> {
        let leeway = self.leeway_s as f64;
        match json::get(claims, "exp") {
            None => return Err(JwtError::MissingExp),
            Some(Json::Num(exp)) if *exp > now - leeway => {}
            Some(Json::Num(_)) => return Err(JwtError::Expired),
            Some(_) => return Err(JwtError::Claims),
        }
        match json::get(claims, "nbf") {
            None => Ok(()),
            Some(Json::Num(nbf)) if *nbf <= now + leeway => Ok(()),
            Some(Json::Num(_)) => Err(JwtError::NotYetValid),
            Some(_) => Err(JwtError::Claims),
        }
    }
}

/// `alg` must be exactly `HS256` (never `none`); any `crit` extension is refused because
/// none is understood here (RFC 7515 section 4.1.11).
fn check_header(header: &str) -> Result<(), JwtError> {
    let header = base64url::decode(header).ok_or(JwtError::Malformed)?;
    let header = json::parse_object(&header).ok_or(JwtError::Malformed)?;
    match json::get(&header, "alg") {
        Some(Json::Str(alg)) if alg == "HS256" => {}
        _ => return Err(JwtError::Algorithm),
    }
    if json::get(&header, "crit").is_some() {
        return Err(JwtError::Algorithm);
    }
    Ok(())
}

/// Compares without an early exit, so timing does not reveal how many bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::base64url::encode;

    pub const SECRET: &[u8] = b"test-secret-of-at-least-32-bytes!!";
    pub const NOW: u64 = 1_700_000_000;

    /// Signs `claims` (JSON text) with `secret` under header `header` (JSON text).
    pub fn sign(header: &str, claims: &str, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            encode(header.as_bytes()),
            encode(claims.as_bytes())
        );
        format!(
            "{}.{}",
            input,
            encode(&HmacKey::new(secret).mac(input.as_bytes()))
        )
    }

    pub fn token(claims: &str) -> String {
        sign(r#"{"alg":"HS256","typ":"JWT"}"#, claims, SECRET)
    }

    fn verifier(leeway_s: u64) -> Verifier {
        Verifier {
            key: HmacKey::new(SECRET),
            leeway_s,
        }
    }

    #[test]
    fn the_jwt_io_example_has_a_valid_signature() {
        // From jwt.io; no exp, so the signature passes and the claim check fails.
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
            eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
            SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let v = Verifier {
            key: HmacKey::new(b"your-256-bit-secret"),
            leeway_s: 0,
        };
        assert_eq!(v.verify(token, NOW), Err(JwtError::MissingExp));
        let v = Verifier {
            key: HmacKey::new(b"another-secret"),
            leeway_s: 0,
        };
        assert_eq!(v.verify(token, NOW), Err(JwtError::Signature));
    }

    #[test]
    fn a_token_signed_by_pyjwt_verifies() {
        // jwt.encode({"sub": "alice", "exp": 4102444800}, SECRET, algorithm="HS256")
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
            eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.\
            wMV2JPxNwi86yKHy6XL3o7_O-zJsFrxaohFvnsA4rxs";
        assert_eq!(
            verifier(0).verify(token, NOW),
            Ok(Claims {
                sub: Some("alice".into())
            })
        );
    }

    #[test]
    fn exp_is_required_and_checked_with_leeway() {
        let claims = format!(r#"{{"sub":"bob","exp":{}}}"#, NOW);
        assert_eq!(
            verifier(0).verify(&token(&claims), NOW),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verifier(0).verify(&token(&claims), NOW - 1).map(|c| c.sub),
            Ok(Some("bob".into()))
        );
        assert!(verifier(5).verify(&token(&claims), NOW + 4).is_ok());
        assert_eq!(
            verifier(5).verify(&token(&claims), NOW + 5),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verifier(0).verify(&token(r#"{"sub":"bob"}"#), NOW),
            Err(JwtError::MissingExp)
        );
        assert_eq!(
            verifier(0).verify(&token(r#"{"exp":"soon"}"#), NOW),
            Err(JwtError::Claims)
        );
    }

    #[test]
    fn nbf_is_honoured_when_present() {
        let claims = format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 100, NOW + 10);
        assert_eq!(
            verifier(0).verify(&token(&claims), NOW),
            Err(JwtError::NotYetValid)
        );
        assert!(verifier(10).verify(&token(&claims), NOW).is_ok());
        assert!(verifier(0).verify(&token(&claims), NOW + 10).is_ok());
    }

    #[test]
    fn sub_is_optional_and_only_a_string_counts() {
        let claims = format!(r#"{{"exp":{},"sub":42}}"#, NOW + 1);
        assert_eq!(
            verifier(0).verify(&token(&claims), NOW),
            Ok(Claims { sub: None })
        );
    }

    #[test]
    fn other_algorithms_crit_and_forgeries_are_refused() {
        let claims = format!(r#"{{"exp":{}}}"#, NOW + 60);
        let none = sign(r#"{"alg":"none"}"#, &claims, SECRET);
        assert_eq!(verifier(0).verify(&none, NOW), Err(JwtError::Algorithm));
        let hs512 = sign(r#"{"alg":"HS512"}"#, &claims, SECRET);
        assert_eq!(verifier(0).verify(&hs512, NOW), Err(JwtError::Algorithm));
        let crit = sign(
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            &claims,
            SECRET,
        );
        assert_eq!(verifier(0).verify(&crit, NOW), Err(JwtError::Algorithm));
        let forged = sign(r#"{"alg":"HS256"}"#, &claims, b"wrong-secret");
        assert_eq!(verifier(0).verify(&forged, NOW), Err(JwtError::Signature));

        // Swapping in other claims under a valid signature breaks it.
        let good = token(&claims);
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            encode(br#"{"exp":9999999999}"#),
            parts[2]
        );
        assert_eq!(verifier(0).verify(&tampered, NOW), Err(JwtError::Signature));
        let truncated = &good[..good.len() - 1];
        assert!(verifier(0).verify(truncated, NOW).is_err());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "a", "a.b", "a.b.c.d", "...", "e30.e30.", "!!.e30.AAAA"] {
            assert!(verifier(0).verify(bad, NOW).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn constant_time_eq_compares_lengths_and_every_byte() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
