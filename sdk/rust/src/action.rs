//! What a middleware answers: [`Action`] (request phase) and [`ResponseAction`]
//! (response phase), with builders and their canonical encoding.
//!
//! Keys are written in the canonical order of ABI.md and empty fields are left out, so
//! the bytes equal the golden vectors. Header names are lower-cased by the builders, since
//! the ABI's header names are lower case.

use std::fmt;
use std::rc::Rc;

use crate::check::{
    check_body, check_ctx, check_headers, check_names, check_path, check_status,
};
use crate::msgpack::Writer;

/// An owned `(name, value)` pair: a header or a ctx entry.
pub type OwnedPair = (String, String);

/// The request-phase answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Let the request through, optionally edited.
    Continue(Continue),
    /// Answer now: later stages and the app are skipped.
    Respond(Respond),
    /// Bytes encoded once (see [`Continue::prebuild`]): a constant answer costs a copy.
    Prebuilt(Prebuilt),
}

/// `{"action": "continue", ...}`; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Continue {
    pub set_headers: Vec<OwnedPair>,
    pub remove_headers: Vec<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub ctx: Vec<OwnedPair>,
    pub response_headers: Vec<OwnedPair>,
}

/// `{"action": "respond", "status": ..., ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Respond {
    pub status: u16,
    pub headers: Vec<OwnedPair>,
    pub body: Option<Vec<u8>>,
}

/// The response-phase answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseAction {
    Edit(ResponseEdit),
    Prebuilt(Prebuilt),
}

/// Changes to the response; the empty edit leaves it unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseEdit {
    pub status: Option<u16>,
    pub set_headers: Vec<OwnedPair>,
    pub remove_headers: Vec<String>,
    pub body: Option<Vec<u8>>,
}

/// An encoded message, shared: cloning is a reference-count increment. It keeps the
/// result of [`Action::check`] from when it was built, so returning it costs no check.
#[derive(Clone, PartialEq, Eq)]
pub struct Prebuilt(Rc<[u8]>, Option<Rc<str>>);

impl Prebuilt {
    fn encode_with(checked: Result<(), String>, f: impl FnOnce(&mut Vec<u8>)) -> Prebuilt {
        let mut out = Vec::new();
        f(&mut out);
        Prebuilt(out.into(), checked.err().map(Rc::from))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The check made when it was built.
    pub fn check(&self) -> Result<(), String> {
        match &self.1 {
            None => Ok(()),
            Some(e) => Err(e.to_string()),
        }
    }
}

impl fmt::Debug for Prebuilt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prebuilt({} bytes)", self.0.len())
    }
}

impl Action {
    /// Start a continue action: `Action::next().set_header("x-a", "1").into()`.
    pub fn next() -> Continue {
        Continue::default()
    }

    /// Start a respond action: `Action::respond(403).body("no").into()`.
    pub fn respond(status: u16) -> Respond {
        Respond {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Appends the canonical msgpack encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Action::Continue(c) => c.encode(out),
            Action::Respond(r) => r.encode(out),
            Action::Prebuilt(p) => out.extend_from_slice(p.as_bytes()),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Encode once now; returning a clone later skips the encoding (and the check).
    pub fn prebuild(self) -> Action {
        match self {
            Action::Prebuilt(_) => self,
            _ => Action::Prebuilt(Prebuilt::encode_with(self.check(), |out| self.encode(out))),
        }
    }

    /// Whether the host can use this answer (ABI.md "Validation"): header names and values
    /// it can send, a final status (200..599), no body on 204/304, a path starting with `/`,
    /// at most [`MAX_ENTRIES`](crate::MAX_ENTRIES) entries and
    /// [`MAX_FIELD_BYTES`](crate::MAX_FIELD_BYTES) per list. The SDK checks every answer
    /// before encoding it; call it yourself to refuse a bad config in `init`.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Action::Continue(c) => c.check(),
            Action::Respond(r) => r.check(),
            Action::Prebuilt(p) => p.check(),
        }
    }
}

impl Default for Action {
    /// Continue, unchanged.
    fn default() -> Action {
        Action::Continue(Continue::default())
    }
}

impl Continue {
    /// Replace every request header `name` with this value (repeat to add several).
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_headers.push(pair(name, value));
        self
    }

    /// Remove request header `name` (applied before `set_header`).
    pub fn remove_header(mut self, name: impl Into<String>) -> Self {
        self.remove_headers.push(lower(name));
        self
    }

    /// Rewrite the path; it must start with `/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Rewrite the raw query string (no `?`).
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// Set a ctx value for later stages and the response phase; a repeated key replaces.
    pub fn ctx(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        match self.ctx.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.ctx.push((key, value)),
        }
        self
    }

    /// Set a header on the response once the app has answered.
    pub fn response_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.response_headers.push(pair(name, value));
        self
    }

    pub fn prebuild(self) -> Action {
        Action::from(self).prebuild()
    }

    fn check(&self) -> Result<(), String> {
        check_headers("set_headers", &self.set_headers)?;
        check_names("remove_headers", &self.remove_headers)?;
        check_path(&self.path)?;
        check_ctx(&self.ctx)?;
        check_headers("response_headers", &self.response_headers)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        let fields = 1
            + usize::from(!self.set_headers.is_empty())
            + usize::from(!self.remove_headers.is_empty())
            + usize::from(self.path.is_some())
            + usize::from(self.query.is_some())
            + usize::from(!self.ctx.is_empty())
            + usize::from(!self.response_headers.is_empty());
        w.map(fields);
        w.str("action");
        w.str("continue");
        write_pairs(&mut w, "set_headers", &self.set_headers);
        write_strs(&mut w, "remove_headers", &self.remove_headers);
        write_opt_str(&mut w, "path", &self.path);
        write_opt_str(&mut w, "query", &self.query);
        if !self.ctx.is_empty() {
            w.str("ctx");
            w.map(self.ctx.len());
            for (k, v) in &self.ctx {
                w.str(k);
                w.str(v);
            }
        }
        write_pairs(&mut w, "response_headers", &self.response_headers);
    }
}

impl Respond {
    /// Add a response header (repeats kept).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(pair(name, value));
        self
    }

    /// The response body; text or bytes. Encoded as msgpack `bin`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn prebuild(self) -> Action {
        Action::from(self).prebuild()
    }

    fn check(&self) -> Result<(), String> {
        check_status(self.status)?;
        check_headers("headers", &self.headers)?;
        check_body(Some(self.status), &self.body)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.map(2 + usize::from(!self.headers.is_empty()) + usize::from(self.body.is_some()));
        w.str("action");
        w.str("respond");
        w.str("status");
        w.uint(u64::from(self.status));
        write_pairs(&mut w, "headers", &self.headers);
        write_opt_bin(&mut w, "body", &self.body);
    }
}

impl From<Continue> for Action {
    fn from(c: Continue) -> Action {
        Action::Continue(c)
    }
}

impl From<Respond> for Action {
    fn from(r: Respond) -> Action {
        Action::Respond(r)
    }
}

impl ResponseAction {
    /// Start an edit: `ResponseAction::edit().set_header("x-a", "1").into()`.
    pub fn edit() -> ResponseEdit {
        ResponseEdit::default()
    }

    /// Leave the response as it is.
    pub fn unchanged() -> ResponseAction {
        ResponseAction::Edit(ResponseEdit::default())
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ResponseAction::Edit(e) => e.encode(out),
            ResponseAction::Prebuilt(p) => out.extend_from_slice(p.as_bytes()),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Encode once now; returning a clone later skips the encoding (and the check).
    pub fn prebuild(self) -> ResponseAction {
        match self {
            ResponseAction::Prebuilt(_) => self,
            _ => ResponseAction::Prebuilt(Prebuilt::encode_with(self.check(), |out| self.encode(out))),
        }
    }

    /// The same rules as [`Action::check`].
    pub fn check(&self) -> Result<(), String> {
        match self {
            ResponseAction::Edit(e) => e.check(),
            ResponseAction::Prebuilt(p) => p.check(),
        }
    }
}

impl Default for ResponseAction {
    fn default() -> ResponseAction {
        ResponseAction::unchanged()
    }
}

impl ResponseEdit {
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Replace every response header `name` with this value (repeat to add several).
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_headers.push(pair(name, value));
        self
    }

    /// Remove response header `name` (applied before `set_header`).
    pub fn remove_header(mut self, name: impl Into<String>) -> Self {
        self.remove_headers.push(lower(name));
        self
    }

    /// Replace the body; text or bytes. Encoded as msgpack `bin`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn prebuild(self) -> ResponseAction {
        ResponseAction::from(self).prebuild()
    }

    fn check(&self) -> Result<(), String> {
        if let Some(status) = self.status {
            check_status(status)?;
        }
        check_headers("set_headers", &self.set_headers)?;
        check_names("remove_headers", &self.remove_headers)?;
        check_body(self.status, &self.body)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.map(
            usize::from(self.status.is_some())
                + usize::from(!self.set_headers.is_empty())
                + usize::from(!self.remove_headers.is_empty())
                + usize::from(self.body.is_some()),
        );
        if let Some(status) = self.status {
            w.str("status");
            w.uint(u64::from(status));
        }
        write_pairs(&mut w, "set_headers", &self.set_headers);
        write_strs(&mut w, "remove_headers", &self.remove_headers);
        write_opt_bin(&mut w, "body", &self.body);
    }
}

impl From<ResponseEdit> for ResponseAction {
    fn from(e: ResponseEdit) -> ResponseAction {
        ResponseAction::Edit(e)
    }
}

fn lower(name: impl Into<String>) -> String {
    let mut name = name.into();
    name.make_ascii_lowercase();
    name
}

fn pair(name: impl Into<String>, value: impl Into<String>) -> OwnedPair {
    (lower(name), value.into())
}

fn write_pairs(w: &mut Writer, key: &str, pairs: &[OwnedPair]) {
    if pairs.is_empty() {
        return;
    }
    w.str(key);
    w.array(pairs.len());
    for (name, value) in pairs {
        w.array(2);
        w.str(name);
        w.str(value);
    }
}

fn write_strs(w: &mut Writer, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    w.str(key);
    w.array(items.len());
    items.iter().for_each(|s| w.str(s));
}

fn write_opt_str(w: &mut Writer, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        w.str(key);
        w.str(v);
    }
}

fn write_opt_bin(w: &mut Writer, key: &str, value: &Option<Vec<u8>>) {
    if let Some(v) = value {
        w.str(key);
        w.bin(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_lower_case_header_names() {
        let c = Action::next()
            .set_header("X-User", "Alice")
            .remove_header("Cookie");
        assert_eq!(
            c.set_headers,
            vec![("x-user".to_string(), "Alice".to_string())]
        );
        assert_eq!(c.remove_headers, vec!["cookie".to_string()]);
    }

    #[test]
    fn repeated_ctx_keys_replace_the_value() {
        let c = Action::next().ctx("k", "1").ctx("j", "2").ctx("k", "3");
        assert_eq!(
            c.ctx,
            vec![("k".into(), "3".into()), ("j".into(), "2".into())]
        );
    }

    #[test]
    fn prebuilt_actions_encode_to_the_same_bytes() {
        let action: Action = Action::respond(403).header("a", "b").body("no").into();
        let prebuilt = action.clone().prebuild();
        assert_eq!(prebuilt.to_bytes(), action.to_bytes());
        assert!(matches!(prebuilt, Action::Prebuilt(_)));
        let edit: ResponseAction = ResponseAction::edit().status(500).into();
        assert_eq!(edit.clone().prebuild().to_bytes(), edit.to_bytes());
    }
}
