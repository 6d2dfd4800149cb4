//! `tether connect --json`: one JSON object per line, serialised by serde_json. The fields stay in the
//! order they are added (`t` and `event` first, as people read them), which a `serde_json::Map` would
//! sort; so the object is a list of fields serialised as a map.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// One line being built.
pub(crate) struct Line {
    fields: Vec<(String, Value)>,
}

impl Line {
    /// `{"t":T,"event":NAME`: the elapsed time `t` in seconds (to the microsecond) and the event's name.
    pub(crate) fn event(name: &str, t: f64) -> Self {
        let mut line = Self { fields: Vec::with_capacity(12) };
        line.num("t", (t * 1e6).round() / 1e6);
        line.str("event", name);
        line
    }

    /// Any field.
    pub(crate) fn field(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.fields.push((key.to_owned(), value.into()));
        self
    }

    /// A string field.
    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.field(key, value)
    }

    /// A number field; a non-finite number becomes `null` (JSON has no NaN).
    pub(crate) fn num(&mut self, key: &str, value: f64) -> &mut Self {
        self.field(key, value)
    }

    /// An integer field.
    pub(crate) fn int(&mut self, key: &str, value: u64) -> &mut Self {
        self.field(key, value)
    }

    /// A boolean field.
    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.field(key, value)
    }

    /// The string, or `null`.
    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        self.field(key, value)
    }

    /// The number, or `null`.
    pub(crate) fn opt_num(&mut self, key: &str, value: Option<f64>) -> &mut Self {
        self.field(key, value)
    }

    /// The finished object, without a newline.
    pub(crate) fn finish(&mut self) -> String {
        match serde_json::to_string(self) {
            Ok(s) => s,
            // String keys and `Value`s always serialise.
            Err(e) => unreachable!("a JSON line failed to serialise: {e}"),
        }
    }
}

impl Serialize for Line {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Lower-case hex of `bytes`, for binary payloads.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_in_order_values_by_serde_json() {
        let line = Line::event("x", 1.5)
            .str("s", "q\"\n\u{1}é")
            .int("n", 3)
            .bool("b", false)
            .num("f", f64::NAN)
            .opt_str("none", None)
            .finish();
        assert_eq!(line, r#"{"t":1.5,"event":"x","s":"q\"\n\u0001é","n":3,"b":false,"f":null,"none":null}"#);
        let back: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back["s"], "q\"\n\u{1}é");
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
