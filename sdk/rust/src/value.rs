//! [`Value`]: a decoded msgpack value, used for the stage's config.

use crate::msgpack::{DecodeError, Reader, Writer};

/// The config `mw_init` receives: the stage's `config` table, always a [`Value::Map`].
pub type Config = Value;

/// A msgpack value. Map keys are strings, as in every ABI v1 message and config.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    /// Entries in their encoded order.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// Decodes exactly one value; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = r.read_value()?;
        r.finish()?;
        Ok(value)
    }

    /// Appends the msgpack encoding (smallest forms, floats as float64).
    pub fn encode(&self, out: &mut Vec<u8>) {
        Writer::new(out).value(self)
    }

    /// The msgpack type's name, for error messages (cheaper than `{:?}` in a module).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bin(_) => "bin",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// An empty map: the config a stage without a `config` table gets.
    pub fn empty_map() -> Value {
        Value::Map(Vec::new())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Floats, and ints converted to float (TOML writes `1` and `1.0` differently).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key` when `self` is a map (the first one if a key repeats).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_int()
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    pub fn get_array(&self, key: &str) -> Option<&[Value]> {
        self.get(key)?.as_array()
    }

    pub fn get_map(&self, key: &str) -> Option<&[(String, Value)]> {
        self.get(key)?.as_map()
    }

    /// Err naming the first key not in `allowed`: catches config typos at `init`.
    pub fn reject_unknown_keys(&self, allowed: &[&str]) -> Result<(), String> {
        let entries = self.as_map().unwrap_or(&[]);
        match entries.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(format!(
                "unknown config key \"{}\" (expected: {})",
                k,
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    }
}

/// An empty map, so `Config::default()` is the config of a stage without a `config` table
/// (what `init` gets then); handy in native unit tests.
impl Default for Value {
    fn default() -> Value {
        Value::empty_map()
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::Array(items)
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Value {
    /// Builds a map, e.g. for configs in tests.
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(entries: I) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_the_empty_map_a_stage_without_config_gets() {
        assert_eq!(Config::default(), Value::empty_map());
        assert_eq!(Config::default().get_str("missing"), None);
        assert!(Config::default().reject_unknown_keys(&["a"]).is_ok());
    }

    #[test]
    fn getters_look_up_typed_values_and_refuse_other_types() {
        let config: Value = vec![
            ("name", Value::from("x")),
            ("n", Value::from(3)),
            ("on", Value::from(true)),
            ("list", Value::from(vec![Value::from("a")])),
            ("sub", [("k", Value::from("v"))].into_iter().collect()),
        ]
        .into_iter()
        .collect();
        assert_eq!(config.get_str("name"), Some("x"));
        assert_eq!(config.get_int("n"), Some(3));
        assert_eq!(config.get_f64("n"), Some(3.0));
        assert_eq!(config.get_bool("on"), Some(true));
        assert_eq!(config.get_array("list").map(<[Value]>::len), Some(1));
        assert_eq!(config.get_map("sub").unwrap()[0].1.as_str(), Some("v"));
        assert_eq!(config.get_str("n"), None);
        assert_eq!(config.get("missing"), None);
        assert_eq!(Value::from(1).get("k"), None);
        assert_eq!(
            config.reject_unknown_keys(&["name", "n", "on", "list", "sub"]),
            Ok(())
        );
        assert!(config
            .reject_unknown_keys(&["name"])
            .unwrap_err()
            .contains("\"n\""));
    }
}
