//! A small msgpack codec: what ABI v1 needs, nothing more.
//!
//! The reader borrows strings and binaries from the input (no copies on the request path)
//! and returns a [`DecodeError`] for every malformed input; it never panics. The writer
//! always picks msgpack's smallest encoding, as Python's `msgpack.packb` does, so encoded
//! messages equal the golden vectors byte for byte.

use std::fmt;

use crate::value::Value;

/// Why a message could not be decoded, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub msg: &'static str,
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.msg, self.offset)
    }
}

impl std::error::Error for DecodeError {}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// Nesting limit for [`Value`]s: deeper input is refused instead of overflowing the stack.
const MAX_DEPTH: usize = 32;

/// An integer as msgpack stores it: unsigned formats may exceed `i64::MAX`.
enum Int {
    Unsigned(u64),
    Signed(i64),
}

/// Reads msgpack values from a byte slice, front to back.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Ok when every byte was consumed: a message is exactly one value.
    pub fn finish(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            self.fail("trailing bytes after the message")
        }
    }

    /// An error at the current position, for checks made by callers.
    pub fn error(&self, msg: &'static str) -> DecodeError {
        DecodeError {
            msg,
            offset: self.pos,
        }
    }

    fn fail<T>(&self, msg: &'static str) -> Result<T> {
        Err(self.error(msg))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail("unexpected end of input"),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return self.fail("unexpected end of input");
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// A big-endian unsigned integer of `n` (1..=8) bytes.
    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A length field of `n` bytes, checked against what is left so that a forged
    /// length can never trigger a huge allocation.
    fn len(&mut self, n: usize) -> Result<usize> {
        let len = self.be(n)?;
        if len > self.remaining() as u64 {
            return self.fail("length exceeds input");
        }
        Ok(len as usize)
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    pub fn read_map_len(&mut self) -> Result<usize> {
        match self.byte()? {
            b @ 0x80..=0x8f => Ok(usize::from(b & 0x0f)),
            0xde => self.len(2),
            0xdf => self.len(4),
            _ => self.wrong("expected a map"),
        }
    }

    pub fn read_array_len(&mut self) -> Result<usize> {
        match self.byte()? {
            b @ 0x90..=0x9f => Ok(usize::from(b & 0x0f)),
            0xdc => self.len(2),
            0xdd => self.len(4),
            _ => self.wrong("expected an array"),
        }
    }

    pub fn read_str(&mut self) -> Result<&'a str> {
        let n = match self.byte()? {
            b @ 0xa0..=0xbf => usize::from(b & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            _ => return self.wrong("expected a str"),
        };
        let start = self.pos;
        utf8(self.take(n)?).ok_or(DecodeError {
            msg: "invalid UTF-8",
            offset: start,
        })
    }

    pub fn read_bin(&mut self) -> Result<&'a [u8]> {
        let n = match self.byte()? {
            0xc4 => self.len(1)?,
            0xc5 => self.len(2)?,
            0xc6 => self.len(4)?,
            _ => return self.wrong("expected a bin"),
        };
        self.take(n)
    }

    /// A body: `bin`, or `str` taken as its UTF-8 bytes.
    pub fn read_bytes(&mut self) -> Result<&'a [u8]> {
        match self.buf.get(self.pos) {
            Some(0xa0..=0xbf) | Some(0xd9..=0xdb) => self.read_str().map(str::as_bytes),
            _ => self.read_bin(),
        }
    }

    pub fn read_bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            _ => self.wrong("expected a bool"),
        }
    }

    fn read_integer(&mut self) -> Result<Int> {
        Ok(match self.byte()? {
            b @ 0x00..=0x7f => Int::Unsigned(u64::from(b)),
            b @ 0xe0..=0xff => Int::Signed(i64::from(b as i8)),
            0xcc => Int::Unsigned(self.be(1)?),
            0xcd => Int::Unsigned(self.be(2)?),
            0xce => Int::Unsigned(self.be(4)?),
            0xcf => Int::Unsigned(self.be(8)?),
            0xd0 => Int::Signed(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Int::Signed(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Int::Signed(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Int::Signed(self.be(8)? as i64),
            _ => return self.wrong("expected an int"),
        })
    }

    pub fn read_int(&mut self) -> Result<i64> {
        match self.read_integer()? {
            Int::Signed(v) => Ok(v),
            Int::Unsigned(v) if v <= i64::MAX as u64 => Ok(v as i64),
            Int::Unsigned(_) => self.fail("int does not fit in i64"),
        }
    }

    pub fn read_uint(&mut self) -> Result<u64> {
        match self.read_integer()? {
            Int::Unsigned(v) => Ok(v),
            Int::Signed(v) if v >= 0 => Ok(v as u64),
            Int::Signed(_) => self.fail("expected a non-negative int"),
        }
    }

    /// Steps back over the type byte so the error points at the offending value.
    fn wrong<T>(&mut self, msg: &'static str) -> Result<T> {
        self.unread();
        self.fail(msg)
    }

    /// Any value, as an owned [`Value`]. Maps must have str keys (ABI v1 configs do).
    pub fn read_value(&mut self) -> Result<Value> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return self.fail("nesting too deep");
        }
        let b = self.byte()?;
        self.unread();
        Ok(match b {
            0xc0 => {
                self.pos += 1;
                Value::Nil
            }
            0xc2 | 0xc3 => Value::Bool(self.read_bool()?),
            0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => Value::Int(self.read_int()?),
            0xca => {
                self.pos += 1;
                Value::Float(f64::from(f32::from_bits(self.be(4)? as u32)))
            }
            0xcb => {
                self.pos += 1;
                Value::Float(f64::from_bits(self.be(8)?))
            }
            0xa0..=0xbf | 0xd9..=0xdb => Value::Str(self.read_str()?.to_owned()),
            0xc4..=0xc6 => Value::Bin(self.read_bin()?.to_vec()),
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = self.read_array_len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value_at(depth + 1)?);
                }
                Value::Array(items)
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let n = self.read_map_len()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.read_str()?.to_owned();
                    entries.push((key, self.value_at(depth + 1)?));
                }
                Value::Map(entries)
            }
            0xc1 => return self.fail("reserved type byte 0xc1"),
            _ => return self.fail("ext types are not supported"),
        })
    }

    /// Skips one value of any type (unknown keys). Iterative, so nesting cannot overflow
    /// the stack.
    pub fn skip(&mut self) -> Result<()> {
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let b = self.byte()?;
            let (fixed, len_bytes, children) = match b {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
                0x80..=0x8f => (0, 0, usize::from(b & 0x0f) * 2),
                0x90..=0x9f => (0, 0, usize::from(b & 0x0f)),
                0xa0..=0xbf => (usize::from(b & 0x1f), 0, 0),
                0xc4 | 0xd9 => (0, 1, 0),
                0xc5 | 0xda => (0, 2, 0),
                0xc6 | 0xdb => (0, 4, 0),
                0xc7 => (1, 1, 0), // ext: length, then type byte + data
                0xc8 => (1, 2, 0),
                0xc9 => (1, 4, 0),
                0xca | 0xce | 0xd2 => (4, 0, 0),
                0xcb | 0xcf | 0xd3 => (8, 0, 0),
                0xcc | 0xd0 => (1, 0, 0),
                0xcd | 0xd1 => (2, 0, 0),
                0xd4..=0xd8 => (1 + (1usize << (b - 0xd4)), 0, 0),
                0xdc => (0, 0, self.len(2)?),
                0xdd => (0, 0, self.len(4)?),
                0xde => (0, 0, self.len(2)?.saturating_mul(2)),
                0xdf => (0, 0, self.len(4)?.saturating_mul(2)),
                0xc1 => return self.wrong("reserved type byte 0xc1"),
            };
            let payload = if len_bytes > 0 {
                self.len(len_bytes)?
            } else {
                0
            };
            self.take(fixed + payload)?;
            // Every pending value needs at least one byte: more than that is a forgery.
            pending = pending.saturating_add(children);
            if pending > self.remaining() {
                return self.fail("unexpected end of input");
            }
        }
        Ok(())
    }
}

/// Appends msgpack values to a byte vector, always in their smallest encoding.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    fn tagged(&mut self, tag: u8, v: u64, bytes: usize) {
        self.out.push(tag);
        self.out.extend_from_slice(&v.to_be_bytes()[8 - bytes..]);
    }

    /// A length header: the fix form when `len < fix_limit`, else the 8/16/32-bit form.
    /// `tag8 == 0` means the type has no 8-bit form (arrays, maps).
    fn header(&mut self, len: usize, fix: u8, fix_limit: usize, tag8: u8, tag16: u8, tag32: u8) {
        if len < fix_limit {
            self.out.push(fix | len as u8);
        } else if tag8 != 0 && len <= 0xff {
            self.tagged(tag8, len as u64, 1);
        } else if len <= 0xffff {
            self.tagged(tag16, len as u64, 2);
        } else {
            self.tagged(tag32, len as u64, 4);
        }
    }

    pub fn nil(&mut self) {
        self.out.push(0xc0);
    }

    pub fn bool(&mut self, v: bool) {
        self.out.push(if v { 0xc3 } else { 0xc2 });
    }

    pub fn uint(&mut self, v: u64) {
        if v < 0x80 {
            self.out.push(v as u8);
        } else if v <= 0xff {
            self.tagged(0xcc, v, 1);
        } else if v <= 0xffff {
            self.tagged(0xcd, v, 2);
        } else if v <= 0xffff_ffff {
            self.tagged(0xce, v, 4);
        } else {
            self.tagged(0xcf, v, 8);
        }
    }

    pub fn int(&mut self, v: i64) {
        if v >= 0 {
            self.uint(v as u64);
        } else if v >= -32 {
            self.out.push(v as u8);
        } else if v >= i64::from(i8::MIN) {
            self.tagged(0xd0, v as u64, 1);
        } else if v >= i64::from(i16::MIN) {
            self.tagged(0xd1, v as u64, 2);
        } else if v >= i64::from(i32::MIN) {
            self.tagged(0xd2, v as u64, 4);
        } else {
            self.tagged(0xd3, v as u64, 8);
        }
    }

    /// Always float64, as Python's msgpack writes floats.
    pub fn float(&mut self, v: f64) {
        self.tagged(0xcb, v.to_bits(), 8);
    }

    pub fn str(&mut self, s: &str) {
        self.header(s.len(), 0xa0, 32, 0xd9, 0xda, 0xdb);
        self.out.extend_from_slice(s.as_bytes());
    }

    pub fn bin(&mut self, b: &[u8]) {
        self.header(b.len(), 0, 0, 0xc4, 0xc5, 0xc6);
        self.out.extend_from_slice(b);
    }

    pub fn array(&mut self, len: usize) {
        self.header(len, 0x90, 16, 0, 0xdc, 0xdd);
    }

    pub fn map(&mut self, len: usize) {
        self.header(len, 0x80, 16, 0, 0xde, 0xdf);
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Nil => self.nil(),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => self.float(*f),
            Value::Str(s) => self.str(s),
            Value::Bin(b) => self.bin(b),
            Value::Array(items) => {
                self.array(items.len());
                items.iter().for_each(|item| self.value(item));
            }
            Value::Map(entries) => {
                self.map(entries.len());
                for (k, v) in entries {
                    self.str(k);
                    self.value(v);
                }
            }
        }
    }
}

/// `bytes` as a str when they are UTF-8.
///
/// PERF: nearly every string the host sends (methods, paths, header names and values) is
/// ASCII, which `is_ascii` checks a word at a time and which is always valid UTF-8; the full
/// validation (byte by byte for short strings) runs only for the others. Measured: the full
/// check was ~45% of an add_header call's instructions (bench/REPORT.md, issue 13 round 6).
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut Writer::new(&mut out));
        out
    }

    fn dec(bytes: &[u8]) -> Result<Value> {
        let mut r = Reader::new(bytes);
        let v = r.read_value()?;
        r.finish()?;
        Ok(v)
    }

    #[test]
    fn unsigned_ints_use_the_smallest_format_at_every_boundary() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (255, &[0xcc, 0xff]),
            (256, &[0xcd, 0x01, 0x00]),
            (65535, &[0xcd, 0xff, 0xff]),
            (65536, &[0xce, 0x00, 0x01, 0x00, 0x00]),
            (0xffff_ffff, &[0xce, 0xff, 0xff, 0xff, 0xff]),
            (1 << 32, &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
            (
                u64::MAX,
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ];
        for &(v, bytes) in cases {
            assert_eq!(enc(|w| w.uint(v)), bytes, "{}", v);
            assert_eq!(Reader::new(bytes).read_uint(), Ok(v));
        }
    }

    #[test]
    fn signed_ints_use_the_smallest_format_at_every_boundary() {
        let cases: &[(i64, &[u8])] = &[
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-128, &[0xd0, 0x80]),
            (-129, &[0xd1, 0xff, 0x7f]),
            (-32768, &[0xd1, 0x80, 0x00]),
            (-32769, &[0xd2, 0xff, 0xff, 0x7f, 0xff]),
            (i64::from(i32::MIN), &[0xd2, 0x80, 0, 0, 0]),
            (
                i64::from(i32::MIN) - 1,
                &[0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff],
            ),
            (i64::MIN, &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            (300, &[0xcd, 0x01, 0x2c]),
        ];
        for &(v, bytes) in cases {
            assert_eq!(enc(|w| w.int(v)), bytes, "{}", v);
            assert_eq!(dec(bytes), Ok(Value::Int(v)));
        }
    }

    #[test]
    fn signed_formats_holding_positive_values_are_read_as_uint() {
        assert_eq!(Reader::new(&[0xd0, 0x05]).read_uint(), Ok(5));
        assert!(Reader::new(&[0xd0, 0xfb]).read_uint().is_err());
        assert!(Reader::new(&[0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0])
            .read_int()
            .is_err());
    }

    #[test]
    fn str_lengths_pick_fix_8_16_and_32_bit_headers() {
        for &(len, header) in &[
            (0usize, &[0xa0][..]),
            (31, &[0xbf]),
            (32, &[0xd9, 32]),
            (255, &[0xd9, 0xff]),
            (256, &[0xda, 0x01, 0x00]),
            (65536, &[0xdb, 0x00, 0x01, 0x00, 0x00]),
        ] {
            let s = "x".repeat(len);
            let bytes = enc(|w| w.str(&s));
            assert_eq!(&bytes[..header.len()], header, "len {}", len);
            assert_eq!(bytes.len(), header.len() + len);
            assert_eq!(Reader::new(&bytes).read_str(), Ok(s.as_str()));
        }
    }

    #[test]
    fn bin_lengths_pick_8_16_and_32_bit_headers() {
        for &(len, header) in &[
            (0usize, &[0xc4, 0][..]),
            (255, &[0xc4, 0xff]),
            (256, &[0xc5, 0x01, 0x00]),
            (65536, &[0xc6, 0x00, 0x01, 0x00, 0x00]),
        ] {
            let b = vec![7u8; len];
            let bytes = enc(|w| w.bin(&b));
            assert_eq!(&bytes[..header.len()], header, "len {}", len);
            assert_eq!(Reader::new(&bytes).read_bin(), Ok(&b[..]));
        }
    }

    #[test]
    fn array_and_map_lengths_pick_fix_16_and_32_bit_headers() {
        for &(len, arr, map) in &[
            (0usize, &[0x90][..], &[0x80][..]),
            (15, &[0x9f], &[0x8f]),
            (16, &[0xdc, 0, 16], &[0xde, 0, 16]),
            (65535, &[0xdc, 0xff, 0xff], &[0xde, 0xff, 0xff]),
            (65536, &[0xdd, 0, 1, 0, 0], &[0xdf, 0, 1, 0, 0]),
        ] {
            let a = Value::Array(vec![Value::Nil; len]);
            let bytes = enc(|w| w.value(&a));
            assert_eq!(&bytes[..arr.len()], arr);
            assert_eq!(dec(&bytes), Ok(a));
            let m = Value::Map(
                (0..len)
                    .map(|i| (i.to_string(), Value::Bool(true)))
                    .collect(),
            );
            let bytes = enc(|w| w.value(&m));
            assert_eq!(&bytes[..map.len()], map);
            assert_eq!(dec(&bytes), Ok(m));
        }
    }

    #[test]
    fn floats_nil_and_bools_round_trip() {
        assert_eq!(enc(|w| w.float(0.5)), [0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(dec(&[0xca, 0x3f, 0x00, 0x00, 0x00]), Ok(Value::Float(0.5)));
        assert_eq!(dec(&[0xc0]), Ok(Value::Nil));
        assert_eq!(dec(&[0xc2]), Ok(Value::Bool(false)));
        assert_eq!(dec(&[0xc3]), Ok(Value::Bool(true)));
    }

    #[test]
    fn truncated_input_is_an_error_at_every_cut() {
        let v = Value::Map(vec![
            ("s".into(), Value::Str("hello".into())),
            ("b".into(), Value::Bin(vec![1, 2, 3])),
            (
                "a".into(),
                Value::Array(vec![Value::Int(-200), Value::Int(70000), Value::Float(1.5)]),
            ),
        ]);
        let bytes = enc(|w| w.value(&v));
        assert_eq!(dec(&bytes), Ok(v));
        for cut in 0..bytes.len() {
            assert!(dec(&bytes[..cut]).is_err(), "cut at {}", cut);
            let mut r = Reader::new(&bytes[..cut]);
            assert!(r.skip().is_err(), "skip cut at {}", cut);
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let cases: &[&[u8]] = &[
            &[],
            &[0xc1],
            &[0xa2, 0xff, 0xfe],             // invalid UTF-8
            &[0xdd, 0xff, 0xff, 0xff, 0xff], // forged array length
            &[0xdf, 0xff, 0xff, 0xff, 0xff], // forged map length
            &[0x81, 0x01, 0x02],             // int key
            &[0xd4, 0x01, 0x02],             // ext is not a Value
            &[0xc0, 0xc0],                   // trailing byte
        ];
        for bytes in cases {
            assert!(dec(bytes).is_err(), "{:?}", bytes);
        }
        let deep = [vec![0x91u8; 1000], vec![0xc0]].concat();
        assert!(dec(&deep).is_err());
        assert!(Reader::new(&deep).skip().is_ok(), "skip handles any depth");
    }

    #[test]
    fn strings_are_utf8_checked_on_both_paths() {
        // ASCII (the word-at-a-time check), non-ASCII UTF-8 and invalid bytes at every
        // position of a long string, so each lands in the head, a word or the tail
        assert_eq!(utf8(b""), Some(""));
        assert_eq!(utf8(b"x-request-id: 0123456789abcdef"), Some("x-request-id: 0123456789abcdef"));
        assert_eq!(utf8("J\u{fc}rgen \u{2603}".as_bytes()), Some("J\u{fc}rgen \u{2603}"));
        for at in 0..40 {
            let mut bytes = vec![b'a'; 40];
            bytes[at] = 0xff;
            assert_eq!(utf8(&bytes), None, "0xff at {}", at);
            bytes[at] = 0xc3; // a lead byte without its continuation
            assert_eq!(utf8(&bytes), None, "0xc3 at {}", at);
        }
        let mut r = Reader::new(&[0xa3, b'a', 0xc3, 0xbc]);
        assert_eq!(r.read_str(), Ok("a\u{fc}"));
    }

    #[test]
    fn skip_steps_over_every_type() {
        let mut bytes = Vec::new();
        let mut w = Writer::new(&mut bytes);
        w.value(&Value::Map(vec![(
            "k".into(),
            Value::Array(vec![Value::Float(1.0), Value::Bin(vec![0; 300])]),
        )]));
        w.str(&"y".repeat(40));
        bytes.extend_from_slice(&[0xd6, 0x01, 0, 0, 0, 0]); // fixext 4
        bytes.extend_from_slice(&[0xc7, 0x02, 0x05, 0xaa, 0xbb]); // ext 8
        bytes.extend_from_slice(&[0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xd1, 0, 1]);
        let mut r = Reader::new(&bytes);
        for _ in 0..6 {
            r.skip().unwrap();
        }
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn errors_name_the_offset() {
        let err = Reader::new(&[0x92, 0x01]).read_str().unwrap_err();
        assert_eq!(
            err,
            DecodeError {
                msg: "expected a str",
                offset: 0
            }
        );
        assert_eq!(err.to_string(), "expected a str at byte 0");
    }
}
