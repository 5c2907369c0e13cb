//! Just enough JSON (RFC 8259) for JWT headers and claims: one object whose top-level
//! strings and numbers are kept; nested values are validated and skipped. The whole text
//! must be valid JSON; duplicate top-level names are refused (RFC 7519 section 4 allows it,
//! and it closes the "which `exp` wins" ambiguity).

/// A top-level member's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Str(String),
    Num(f64),
    /// true, false, null, an array or an object: present, but not needed here.
    Other,
}

/// The members of a JSON object, in order.
pub type Object = Vec<(String, Json)>;

const MAX_DEPTH: usize = 16;

pub fn parse_object(text: &[u8]) -> Option<Object> {
    let mut p = Parser { text, pos: 0 };
    p.ws();
    p.eat(b'{')?;
    let mut members = Object::new();
    p.ws();
    if !p.try_eat(b'}') {
        loop {
            p.ws();
            let name = p.string()?;
            if members.iter().any(|(n, _)| *n == name) {
                return None;
            }
            p.ws();
            p.eat(b':')?;
            p.ws();
            let value = p.value(1)?;
            members.push((name, value));
            p.ws();
            if p.try_eat(b'}') {
                break;
            }
            p.eat(b',')?;
        }
    }
    p.ws();
    if p.pos == text.len() {
        Some(members)
    } else {
        None
    }
}

/// The value of member `name`.
pub fn get<'o>(object: &'o Object, name: &str) -> Option<&'o Json> {
    object.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        if self.next()? == b {
            Some(())
        } else {
            None
        }
    }

    fn try_eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<Json> {
        let end = self.pos.checked_add(word.len())?;
        if self.text.get(self.pos..end)? != word {
            return None;
        }
        self.pos = end;
        Some(Json::Other)
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(Json::Str),
            b'-' | b'0'..=b'9' => self.number().map(Json::Num),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'[' => self.container(b']', depth, false),
            b'{' => self.container(b'}', depth, true),
            _ => None,
        }
    }

    /// An array or object, checked and dropped.
    fn container(&mut self, close: u8, depth: usize, object: bool) -> Option<Json> {
        self.pos += 1;
        self.ws();
        if self.try_eat(close) {
            return Some(Json::Other);
        }
        loop {
            self.ws();
            if object {
                self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
            }
            self.value(depth + 1)?;
            self.ws();
            if self.try_eat(close) {
                return Some(Json::Other);
            }
            self.eat(b',')?;
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            match self.next()? {
                b'"' => return Some(out),
                b'\\' => out.push(self.escape()?),
                0x00..=0x1f => return None,
                b if b < 0x80 => out.push(char::from(b)),
                _ => {
                    // A multi-byte UTF-8 sequence: copy it whole once validated.
                    let start = self.pos - 1;
                    let len = utf8_len(self.text[start])?;
                    let bytes = self.text.get(start..start + len)?;
                    out.push_str(std::str::from_utf8(bytes).ok()?);
                    self.pos = start + len;
                }
            }
        }
    }

    fn escape(&mut self) -> Option<char> {
        Some(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return None,
        })
    }

    /// `\uXXXX`, joining a surrogate pair into one char; lone surrogates are refused.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if !(0xd800..0xdc00).contains(&hi) {
            return char::from_u32(hi);
        }
        self.eat(b'\\')?;
        self.eat(b'u')?;
        let lo = self.hex4()?;
        if !(0xdc00..0xe000).contains(&lo) {
            return None;
        }
        char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
    }

    fn hex4(&mut self) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, _| {
            Some(acc * 16 + char::from(self.next()?).to_digit(16)?)
        })
    }

    /// `-? int frac? exp?`, checked against the grammar, then evaluated.
    fn number(&mut self) -> Option<f64> {
        let start = self.pos;
        self.try_eat(b'-');
        if !self.try_eat(b'0') {
            self.digits()?;
        }
        if self.try_eat(b'.') {
            self.digits()?;
        }
        if self.try_eat(b'e') || self.try_eat(b'E') {
            if !self.try_eat(b'+') {
                self.try_eat(b'-');
            }
            self.digits()?;
        }
        Some(number_value(&self.text[start..self.pos]))
    }

    /// One or more ASCII digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if self.pos > start {
            Some(())
        } else {
            None
        }
    }
}

/// The value of a number already checked against the grammar. Exact for integers up to
/// 2^53 (every realistic NumericDate), within a few ulps otherwise: enough to compare
/// times, and 18 KB smaller in wasm than `str::parse::<f64>`.
fn number_value(text: &[u8]) -> f64 {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mut mantissa, mut scale, mut exponent) = (0f64, 0i32, 0i32);
    let (mut in_fraction, mut in_exponent, mut exponent_negative) = (false, false, false);
    for &b in text {
        match b {
            b'.' => in_fraction = true,
            b'e' | b'E' => in_exponent = true,
            b'-' => exponent_negative = true,
            b'0'..=b'9' if in_exponent => {
                exponent = (exponent * 10 + i32::from(b - b'0')).min(1000);
            }
            b'0'..=b'9' => {
                mantissa = mantissa * 10.0 + f64::from(b - b'0');
                scale -= i32::from(in_fraction);
            }
            _ => {}
        }
    }
    if exponent_negative {
        exponent = -exponent;
    }
    let value = if mantissa == 0.0 {
        0.0
    } else {
        mantissa * 10f64.powi(scale + exponent)
    };
    if negative {
        -value
    } else {
        value
    }
}

fn utf8_len(first: u8) -> Option<usize> {
    match first {
        0xc2..=0xdf => Some(2),
        0xe0..=0xef => Some(3),
        0xf0..=0xf4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Object> {
        parse_object(text.as_bytes())
    }

    #[test]
    fn keeps_top_level_strings_and_numbers() {
        let obj = parse(
            r#" {"alg":"HS256","exp":1700000000,"f":-1.5e2,"n":null,"a":[1,{"x":[]}],"o":{}} "#,
        )
        .unwrap();
        assert_eq!(get(&obj, "alg"), Some(&Json::Str("HS256".into())));
        assert_eq!(get(&obj, "exp"), Some(&Json::Num(1_700_000_000.0)));
        assert_eq!(get(&obj, "f"), Some(&Json::Num(-150.0)));
        assert_eq!(get(&obj, "n"), Some(&Json::Other));
        assert_eq!(get(&obj, "a"), Some(&Json::Other));
        assert_eq!(get(&obj, "missing"), None);
        assert_eq!(parse("{}"), Some(vec![]));
    }

    #[test]
    fn numbers_evaluate_in_every_form() {
        let cases = [
            ("0", 0.0),
            ("-0", 0.0),
            ("4102444800", 4_102_444_800.0),
            ("9007199254740992", 9_007_199_254_740_992.0),
            ("1700000000.5", 1_700_000_000.5),
            ("1.7e9", 1.7e9),
            ("17E+8", 1.7e9),
            ("-2.5e-3", -0.0025),
            ("0e999", 0.0),
        ];
        for (text, expected) in cases {
            let obj = parse(&format!("{{\"n\":{}}}", text)).unwrap();
            match get(&obj, "n") {
                Some(Json::Num(n)) => assert!(
                    (n - expected).abs() <= expected.abs() * 1e-15,
                    "{} -> {}",
                    text,
                    n
                ),
                other => panic!("{}: {:?}", text, other),
            }
        }
        assert_eq!(number_value(b"1e999"), f64::INFINITY);
    }

    #[test]
    fn decodes_escapes_surrogate_pairs_and_utf8() {
        let obj = parse(r#"{"s":"a\"\\\/\n\u00e9\ud83d\ude00","u":"élodie"}"#).unwrap();
        assert_eq!(
            get(&obj, "s"),
            Some(&Json::Str("a\"\\/\n\u{e9}\u{1f600}".into()))
        );
        assert_eq!(get(&obj, "u"), Some(&Json::Str("élodie".into())));
    }

    #[test]
    fn refuses_invalid_json_and_duplicate_names() {
        let bad = [
            "",
            "[]",
            "{",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":tru}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":1} x",
            "{\"a\":1,\"a\":2}",
            "{'a':1}",
        ];
        for text in bad {
            assert_eq!(parse(text), None, "{:?}", text);
        }
        assert_eq!(parse_object(b"{\"a\":\"\xff\"}"), None);
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse(&deep), None);
    }
}
