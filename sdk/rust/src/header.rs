//! The host's header rules (ABI.md "Validation"), so middleware can check its config at
//! `init` instead of having every answer refused at request time.

/// An HTTP token (RFC 9110 `tchar`), as the host requires of header names.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// No CR, LF or NUL: the host refuses those (header injection).
pub fn is_valid_header_value(value: &str) -> bool {
    !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_tokens_and_values_free_of_cr_lf_nul() {
        assert!(is_valid_header_name("x-request-id"));
        assert!(!is_valid_header_name("bad name"));
        assert!(!is_valid_header_name(""));
        assert!(!is_valid_header_name("x:y"));
        assert!(is_valid_header_value("a b; c=\"d\""));
        assert!(!is_valid_header_value("a\r\nset-cookie: b"));
        assert!(!is_valid_header_value("a\0"));
    }
}
