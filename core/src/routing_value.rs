//! Scalar values of CEL routing: the caller's routing context and the
//! manifest's categorical `routing_values`.
//!
//! Both arrive as JSON. Bytes have no JSON form, so they travel as
//! `{"__bytes_hex__": "<hex>"}` (the reference writer's encoding).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde_json::Value as Json;

use crate::error::{Error, Result};

/// The JSON key that marks an encoded byte string.
pub const BYTES_HEX_KEY: &str = "__bytes_hex__";

/// One scalar routing value.
#[derive(Debug, Clone, PartialEq)]
pub enum RoutingValue {
    /// Signed integer.
    Int(i64),
    /// Unsigned integer (JSON integers above `i64::MAX`).
    UInt(u64),
    /// Float.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Byte string.
    Bytes(Vec<u8>),
}

impl RoutingValue {
    /// Decodes one JSON scalar (or the bytes object).
    pub fn from_json(v: &Json) -> Option<RoutingValue> {
        Some(match v {
            Json::Bool(b) => RoutingValue::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    RoutingValue::Int(i)
                } else if let Some(u) = n.as_u64() {
                    RoutingValue::UInt(u)
                } else {
                    RoutingValue::Double(n.as_f64()?)
                }
            }
            Json::String(s) => RoutingValue::Str(s.clone()),
            Json::Object(m) if m.len() == 1 => {
                let hex_str = m.get(BYTES_HEX_KEY)?.as_str()?;
                RoutingValue::Bytes(hex::decode(hex_str).ok()?)
            }
            _ => return None,
        })
    }

    /// Encodes the value as JSON (bytes as `{"__bytes_hex__": ...}`).
    pub fn to_json(&self) -> Json {
        match self {
            RoutingValue::Int(i) => Json::from(*i),
            RoutingValue::UInt(u) => Json::from(*u),
            RoutingValue::Double(d) => Json::from(*d),
            RoutingValue::Bool(b) => Json::Bool(*b),
            RoutingValue::Str(s) => Json::String(s.clone()),
            RoutingValue::Bytes(b) => {
                let mut m = serde_json::Map::new();
                m.insert(BYTES_HEX_KEY.to_string(), Json::String(hex::encode(b)));
                Json::Object(m)
            }
        }
    }

    /// Name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            RoutingValue::Int(_) => "int",
            RoutingValue::UInt(_) => "uint",
            RoutingValue::Double(_) => "double",
            RoutingValue::Bool(_) => "bool",
            RoutingValue::Str(_) => "string",
            RoutingValue::Bytes(_) => "bytes",
        }
    }

    /// Equality as the reference (Python) compares a CEL result with a
    /// `routing_values` entry: numbers exactly by value across int, uint,
    /// double and bool (`True == 1` in Python); strings and bytes exactly; a
    /// string never equals bytes.
    pub fn matches(&self, other: &RoutingValue) -> bool {
        use RoutingValue::*;
        match (self, other) {
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Double(x), Double(y)) => x == y,
            (Double(d), n) | (n, Double(d)) => match n.as_i128() {
                Some(i) => double_equals_int(*d, i),
                None => false,
            },
            (a, b) => match (a.as_i128(), b.as_i128()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }

    fn as_i128(&self) -> Option<i128> {
        match self {
            RoutingValue::Int(i) => Some(i128::from(*i)),
            RoutingValue::UInt(u) => Some(i128::from(*u)),
            RoutingValue::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }
}

/// Exact comparison of a float with an integer (no rounding of the integer).
fn double_equals_int(d: f64, i: i128) -> bool {
    // Every integer-valued f64 within ±2^127 converts to i128 exactly.
    d.is_finite() && d == libm::trunc(d) && libm::fabs(d) < 1.7e38 && d as i128 == i
}

impl serde::Serialize for RoutingValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for RoutingValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let v = Json::deserialize(d)?;
        RoutingValue::from_json(&v).ok_or_else(|| {
            serde::de::Error::custom("expected a scalar or {\"__bytes_hex__\": \"...\"}")
        })
    }
}

impl fmt::Display for RoutingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutingValue::Int(i) => write!(f, "{i}"),
            RoutingValue::UInt(u) => write!(f, "{u}u"),
            RoutingValue::Double(d) => write!(f, "{d:?}"),
            RoutingValue::Bool(b) => write!(f, "{b}"),
            RoutingValue::Str(s) => write!(f, "{s:?}"),
            RoutingValue::Bytes(b) => write!(f, "b\"{}\"", hex::encode(b)),
        }
    }
}

/// `shard_hash(x)` of CEL routing: xxh3-64 (seed 0) of an int or uint as 8
/// little-endian bytes, a string as UTF-8, bytes as is. `None` for doubles
/// and bools, which the function does not accept.
pub fn shard_hash(value: &RoutingValue) -> Option<u64> {
    use xxhash_rust::xxh3::xxh3_64;
    Some(match value {
        RoutingValue::Int(i) => xxh3_64(&i.to_le_bytes()),
        RoutingValue::UInt(u) => xxh3_64(&u.to_le_bytes()),
        RoutingValue::Str(s) => xxh3_64(s.as_bytes()),
        RoutingValue::Bytes(b) => xxh3_64(b),
        RoutingValue::Double(_) | RoutingValue::Bool(_) => return None,
    })
}

/// The metadata of one request that a CEL expression routes on, e.g.
/// `{"tenant": "acme", "region": "eu"}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingContext {
    values: BTreeMap<String, RoutingValue>,
}

impl RoutingContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a variable.
    pub fn with(mut self, name: impl Into<String>, value: RoutingValue) -> Self {
        self.values.insert(name.into(), value);
        self
    }

    /// Adds or replaces a variable.
    pub fn insert(&mut self, name: impl Into<String>, value: RoutingValue) {
        self.values.insert(name.into(), value);
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&RoutingValue> {
        self.values.get(name)
    }

    /// Variables in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RoutingValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the context has no variables.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Builds a context from a JSON object of scalars.
    pub fn from_json(v: &Json) -> Result<RoutingContext> {
        let obj = v.as_object().ok_or_else(|| Error::CelVariableType {
            name: "routing_context".to_string(),
            expected: "a JSON object",
            got: json_kind(v).to_string(),
        })?;
        let mut ctx = RoutingContext::new();
        for (k, v) in obj {
            let value = RoutingValue::from_json(v).ok_or_else(|| Error::CelVariableType {
                name: k.clone(),
                expected: "a scalar (int, uint, double, bool, string or bytes)",
                got: json_kind(v).to_string(),
            })?;
            ctx.insert(k.clone(), value);
        }
        Ok(ctx)
    }

    /// The context as a JSON object.
    pub fn to_json(&self) -> Json {
        Json::Object(
            self.values
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }
}

impl<K: Into<String>> FromIterator<(K, RoutingValue)> for RoutingContext {
    fn from_iter<I: IntoIterator<Item = (K, RoutingValue)>>(iter: I) -> Self {
        RoutingContext {
            values: iter.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

pub(crate) fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::RoutingValue::*;

    #[test]
    fn matches_like_python_equality() {
        assert!(Int(7).matches(&UInt(7)));
        assert!(UInt(7).matches(&Double(7.0)));
        assert!(Bool(true).matches(&Int(1)));
        assert!(!Int((1 << 53) + 1).matches(&Double((1u64 << 53) as f64)));
        assert!(!Double(0.5).matches(&Int(0)));
        assert!(!Str("1".into()).matches(&Int(1)));
        assert!(!Str("a".into()).matches(&Bytes(b"a".to_vec())));
        assert!(Bytes(b"a".to_vec()).matches(&Bytes(b"a".to_vec())));
    }
}
