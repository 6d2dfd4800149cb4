//! Just enough JSON to print one flat object per line: string escaping and a field writer. Hand-rolled
//! to avoid a serialisation dependency for a dozen event shapes.

use std::fmt::Write;

/// Appends `s` as a JSON string literal (RFC 8259: quotes, backslash and control characters escaped).
pub(crate) fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object being written, one field at a time.
pub(crate) struct Obj {
    buf: String,
    first: bool,
}

impl Obj {
    /// `{"event":NAME` plus the elapsed time `t` in seconds.
    pub(crate) fn event(name: &str, t: f64) -> Self {
        let mut o = Self { buf: String::with_capacity(96), first: true };
        o.buf.push('{');
        o.num("t", (t * 1e6).round() / 1e6);
        o.str("event", name);
        o
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        escape_into(&mut self.buf, k);
        self.buf.push(':');
    }

    /// A string field.
    pub(crate) fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        escape_into(&mut self.buf, v);
        self
    }

    /// A number field (non-finite numbers become `null`, which JSON has instead).
    pub(crate) fn num(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.buf, "{v}");
        } else {
            self.buf.push_str("null");
        }
        self
    }

    /// An integer field.
    pub(crate) fn int(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.buf, "{v}");
        self
    }

    /// A boolean field.
    pub(crate) fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.buf.push_str(if v { "true" } else { "false" });
        self
    }

    /// A `null` field.
    pub(crate) fn null(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.buf.push_str("null");
        self
    }

    /// An optional number field: the number or `null`.
    pub(crate) fn opt_num(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => self.null(k),
        }
    }

    /// An optional string field: the string or `null`.
    pub(crate) fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    /// The finished object, without a newline.
    pub(crate) fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.buf);
        s.push('}');
        s
    }
}

/// Lower-case hex of `bytes`, for binary payloads.
pub(crate) fn hex(bytes: &[u8]) -> String {
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
    fn escapes_what_json_requires() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\nd\te\u{1}f\u{7f}é😀");
        assert_eq!(s, r#""a\"b\\c\nd\te\u0001f\u007fé😀""#);
    }

    #[test]
    fn objects() {
        let line = Obj::event("x", 1.5).str("s", "q\"").int("n", 3).bool("b", false).num("f", f64::NAN).finish();
        assert_eq!(line, r#"{"t":1.5,"event":"x","s":"q\"","n":3,"b":false,"f":null}"#);
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
