//! The host's output rules (ABI.md "Validation"), applied to every answer before it is
//! encoded: a middleware bug becomes a clear guest error naming the rule, never bytes the
//! host would refuse.

use crate::action::OwnedPair;
use crate::header::{is_valid_header_name, is_valid_header_value};

/// Most entries one header list, `remove_headers` or `ctx` may hold.
pub const MAX_ENTRIES: usize = 100;
/// Most characters of names and values (keys and values for `ctx`) in one such field.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A final status the host and a WSGI server can send: 200..=599 (1xx are interim).
pub fn check_status(status: u16) -> Result<(), String> {
    if (200..=599).contains(&status) {
        Ok(())
    } else {
        Err(format!("status {} is not a final status within 200..599", status))
    }
}

/// 204 and 304 responses carry no body.
pub fn check_body(status: Option<u16>, body: &Option<Vec<u8>>) -> Result<(), String> {
    match (status, body) {
        (Some(s @ (204 | 304)), Some(b)) if !b.is_empty() => {
            Err(format!("a {} response has no body; got {} bytes", s, b.len()))
        }
        _ => Ok(()),
    }
}

fn check_size(field: &str, entries: usize, size: usize) -> Result<(), String> {
    if entries > MAX_ENTRIES {
        return Err(format!(
            "{} holds {} entries; at most {} are allowed",
            field, entries, MAX_ENTRIES
        ));
    }
    if size > MAX_FIELD_BYTES {
        return Err(format!(
            "{} holds {} bytes; at most {} are allowed",
            field, size, MAX_FIELD_BYTES
        ));
    }
    Ok(())
}

fn chars(s: &str) -> usize {
    // PERF: ASCII (the common case) needs no decoding
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// Token names, sendable values, a decimal content-length, within the caps.
pub fn check_headers(field: &str, pairs: &[OwnedPair]) -> Result<(), String> {
    check_size(field, pairs.len(), 0)?;
    let mut size = 0;
    for (name, value) in pairs {
        if !is_valid_header_name(name) {
            return Err(format!("{}: {:?} is not a valid header name", field, name));
        }
        if !is_valid_header_value(value) {
            return Err(format!(
                "{}: the value of {:?} contains a control character or a character outside Latin-1",
                field, name
            ));
        }
        if name.eq_ignore_ascii_case("content-length")
            && (value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("{}: content-length must be decimal digits", field));
        }
        size += name.len() + chars(value);
    }
    check_size(field, 0, size)
}

pub fn check_names(field: &str, names: &[String]) -> Result<(), String> {
    check_size(field, names.len(), names.iter().map(|n| chars(n)).sum())
}

pub fn check_ctx(pairs: &[OwnedPair]) -> Result<(), String> {
    let size = pairs.iter().map(|(k, v)| chars(k) + chars(v)).sum();
    check_size("ctx", pairs.len(), size)
}

pub fn check_path(path: &Option<String>) -> Result<(), String> {
    match path {
        Some(p) if !p.starts_with('/') => Err(format!("path {:?} must start with '/'", p)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize, value: &str) -> Vec<OwnedPair> {
        (0..n).map(|_| ("x-a".to_string(), value.to_string())).collect()
    }

    #[test]
    fn caps_are_inclusive() {
        assert!(check_headers("set_headers", &pairs(MAX_ENTRIES, "1")).is_ok());
        assert!(check_headers("set_headers", &pairs(MAX_ENTRIES + 1, "1")).is_err());
        assert!(check_headers("h", &pairs(1, &"v".repeat(MAX_FIELD_BYTES - 3))).is_ok());
        assert!(check_headers("h", &pairs(1, &"v".repeat(MAX_FIELD_BYTES - 2))).is_err());
        // Latin-1 characters count once, as on the wire
        assert!(check_headers("h", &pairs(1, &"\u{e9}".repeat(MAX_FIELD_BYTES - 3))).is_ok());
    }

    #[test]
    fn statuses_bodies_and_content_length() {
        assert!(check_status(200).is_ok() && check_status(599).is_ok());
        assert!(check_status(100).is_err() && check_status(199).is_err() && check_status(600).is_err());
        assert!(check_body(Some(204), &Some(b"x".to_vec())).is_err());
        assert!(check_body(Some(304), &Some(Vec::new())).is_ok());
        assert!(check_body(Some(200), &Some(b"x".to_vec())).is_ok());
        let cl = |v: &str| check_headers("h", &[("content-length".into(), v.into())]);
        assert!(cl("12").is_ok() && cl("").is_err() && cl("1a").is_err() && cl("\u{b2}").is_err());
    }
}
