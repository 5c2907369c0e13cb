//! The host's header rules (ABI.md "Validation"), so middleware can check its config at
//! `init` instead of having every answer refused at request time.

/// An HTTP token (RFC 9110 `tchar`), as the host requires of header names.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What a WSGI server can send: tab, visible ASCII, space and Latin-1 (U+0080..U+00FF);
/// the host refuses control characters (CR, LF, NUL: header injection; DEL) and anything
/// outside Latin-1.
pub fn is_valid_header_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_tokens_and_values_sendable_latin1() {
        assert!(is_valid_header_name("x-request-id"));
        assert!(!is_valid_header_name("bad name"));
        assert!(!is_valid_header_name(""));
        assert!(!is_valid_header_name("x:y"));
        assert!(is_valid_header_value("a b; c=\"d\""));
        assert!(!is_valid_header_value("a\r\nset-cookie: b"));
        assert!(!is_valid_header_value("a\0"));
        assert!(!is_valid_header_value("a\u{1}b") && !is_valid_header_value("\u{7f}"));
        assert!(!is_valid_header_value("snow \u{2603}"));
        assert!(is_valid_header_value("J\u{fc}rgen\tx"));
    }
}
