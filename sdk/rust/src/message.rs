//! The messages the host sends: [`Request`] and [`Response`].
//!
//! Strings borrow from the input buffer, so decoding copies nothing but the header and ctx
//! lists. Unknown keys are skipped; missing keys keep their empty default.

use crate::msgpack::{DecodeError, Reader};

/// A `[name, value]` header pair or a ctx entry, borrowed from the input.
pub type Pair<'a> = (&'a str, &'a str);

/// Request phase input (ABI.md "Request").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request<'a> {
    pub v: u32,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// In arrival order, repeats kept, names lower case.
    pub headers: Vec<Pair<'a>>,
    pub remote_addr: &'a str,
    pub scheme: &'a str,
    /// Values set by earlier stages.
    pub ctx: Vec<Pair<'a>>,
    /// Present only when the stage asked for bodies.
    pub body: Option<&'a [u8]>,
}

/// The request as the app saw it, inside a [`Response`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

/// Response phase input (ABI.md "Response").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response<'a> {
    pub v: u32,
    pub status: u16,
    pub headers: Vec<Pair<'a>>,
    /// The request's ctx after every request-phase stage.
    pub ctx: Vec<Pair<'a>>,
    pub request: RequestInfo<'a>,
    pub body: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut req = Request::default();
        decode_map(bytes, |key, r| {
            match key {
                "v" => req.v = read_u32(r)?,
                "method" => req.method = r.read_str()?,
                "path" => req.path = r.read_str()?,
                "query" => req.query = r.read_str()?,
                "headers" => req.headers = read_pairs(r)?,
                "remote_addr" => req.remote_addr = r.read_str()?,
                "scheme" => req.scheme = r.read_str()?,
                "ctx" => req.ctx = read_str_map(r)?,
                "body" => req.body = Some(r.read_bytes()?),
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(req)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        find(&self.headers, name)
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        find_all(&self.headers, name)
    }

    /// The ctx value an earlier stage set under `key`.
    pub fn ctx_value(&self, key: &str) -> Option<&'a str> {
        self.ctx.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<'a> Response<'a> {
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut resp = Response::default();
        decode_map(bytes, |key, r| {
            match key {
                "v" => resp.v = read_u32(r)?,
                "status" => resp.status = read_u16(r)?,
                "headers" => resp.headers = read_pairs(r)?,
                "ctx" => resp.ctx = read_str_map(r)?,
                "request" => resp.request = read_request_info(r)?,
                "body" => resp.body = Some(r.read_bytes()?),
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(resp)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        find(&self.headers, name)
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        find_all(&self.headers, name)
    }

    pub fn ctx_value(&self, key: &str) -> Option<&'a str> {
        self.ctx.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Reads one whole message: a map with str keys, each value handed to `field`.
fn decode_map<'a, F>(bytes: &'a [u8], mut field: F) -> Result<(), DecodeError>
where
    F: FnMut(&'a str, &mut Reader<'a>) -> Result<(), DecodeError>,
{
    let mut r = Reader::new(bytes);
    for _ in 0..r.read_map_len()? {
        let key = r.read_str()?;
        field(key, &mut r)?;
    }
    r.finish()
}

fn read_request_info<'a>(r: &mut Reader<'a>) -> Result<RequestInfo<'a>, DecodeError> {
    let mut info = RequestInfo::default();
    for _ in 0..r.read_map_len()? {
        match r.read_str()? {
            "method" => info.method = r.read_str()?,
            "path" => info.path = r.read_str()?,
            _ => r.skip()?,
        }
    }
    Ok(info)
}

/// `[[name, value], ...]`: each pair must have exactly two strs.
fn read_pairs<'a>(r: &mut Reader<'a>) -> Result<Vec<Pair<'a>>, DecodeError> {
    let n = r.read_array_len()?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        if r.read_array_len()? != 2 {
            return Err(r.error("header pair must have two items"));
        }
        pairs.push((r.read_str()?, r.read_str()?));
    }
    Ok(pairs)
}

fn read_str_map<'a>(r: &mut Reader<'a>) -> Result<Vec<Pair<'a>>, DecodeError> {
    let n = r.read_map_len()?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push((r.read_str()?, r.read_str()?));
    }
    Ok(entries)
}

fn read_u32(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let v = r.read_uint()?;
    u32::try_from(v).map_err(|_| r.error("int out of range"))
}

fn read_u16(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let v = r.read_uint()?;
    u16::try_from(v).map_err(|_| r.error("status out of range"))
}

fn find<'a>(headers: &[Pair<'a>], name: &str) -> Option<&'a str> {
    find_all(headers, name).next()
}

fn find_all<'a, 's>(headers: &'s [Pair<'a>], name: &'s str) -> impl Iterator<Item = &'a str> + 's {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}
