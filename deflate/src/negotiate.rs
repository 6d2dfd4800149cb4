//! The handshake half of RFC 7692: the offer the client sends in `Sec-WebSocket-Extensions`, and the
//! strict check of the server's answer.
//!
//! Rules applied to the answer (RFC 6455 section 9.1, RFC 7692 section 7.1):
//! - no `Sec-WebSocket-Extensions` (or only empty list elements): the server declined; messages go
//!   uncompressed;
//! - any extension other than `permessage-deflate`, or `permessage-deflate` twice: fail (we offered one
//!   element of one extension);
//! - parameters: only the four of RFC 7692, each at most once; `*_no_context_takeover` take no value;
//!   `*_max_window_bits` take a decimal 8 to 15 (token or quoted string, no leading zero);
//! - `server_max_window_bits` must be answered if it was asked for, with a value no larger;
//! - `server_no_context_takeover` must be answered if it was asked for;
//! - `client_max_window_bits` must carry a value, no larger than the one offered (we always offer the
//!   parameter, so a server may always send it);
//! - `client_no_context_takeover` may be answered unasked: the client then resets its compressor
//!   after every message.
//!
//! Names are compared ASCII case-insensitively. A violation is a [`NegotiationError`] that names the
//! offending parameter or extension.

use tether_core::DeflateParams;

use crate::config::DeflateConfig;

/// The extension's registered name.
pub const EXTENSION: &str = "permessage-deflate";

/// Why the server's answer to the offer is refused. The connection must be failed: the server would
/// compress in a way the client cannot follow, or not at all where it said it would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The server answered with an extension the client did not offer.
    #[error("the server enabled extension {0:?}, which was not offered (only permessage-deflate was)")]
    NotOffered(String),
    /// `permessage-deflate` appears more than once in the answer.
    #[error("the server answered permessage-deflate more than once")]
    Repeated,
    /// A parameter RFC 7692 does not define.
    #[error("unknown permessage-deflate parameter {0:?} in the server's answer")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("permessage-deflate parameter {0} given twice in the server's answer")]
    DuplicateParameter(&'static str),
    /// A parameter with a value it must not have, without one it needs, or with one out of range.
    #[error("invalid value {value:?} for permessage-deflate parameter {param} (expected {expected})")]
    InvalidValue {
        /// The parameter.
        param: &'static str,
        /// The value as received (empty when missing).
        value: String,
        /// What RFC 7692 allows there.
        expected: &'static str,
    },
    /// A parameter the client asked for is missing from the answer (the server should have declined).
    #[error("the server accepted permessage-deflate without the requested {0}")]
    MissingParameter(&'static str),
    /// The header is not a valid extension list.
    #[error("malformed Sec-WebSocket-Extensions header: {0}")]
    Syntax(String),
}

/// The `Sec-WebSocket-Extensions` value offering permessage-deflate with `cfg`.
pub fn offer(cfg: &DeflateConfig) -> String {
    let mut s = String::from(EXTENSION);
    if cfg.client_max_window_bits < 15 {
        s.push_str(&format!("; client_max_window_bits={}", cfg.client_max_window_bits));
    } else {
        s.push_str("; client_max_window_bits");
    }
    if let Some(bits) = cfg.server_max_window_bits {
        s.push_str(&format!("; server_max_window_bits={bits}"));
    }
    if cfg.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if cfg.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    s
}

/// Checks the server's `Sec-WebSocket-Extensions` answer (every header line, in order) to the offer
/// made from `cfg`. `Ok(None)`: declined, no compression. `Ok(Some(params))`: what both sides use.
pub fn negotiate<'a>(
    cfg: &DeflateConfig,
    answer: impl IntoIterator<Item = &'a str>,
) -> Result<Option<DeflateParams>, NegotiationError> {
    let mut accepted = None;
    for line in answer {
        for ext in parse_list(line)? {
            if !ext.name.eq_ignore_ascii_case(EXTENSION) {
                return Err(NegotiationError::NotOffered(ext.name.to_owned()));
            }
            if accepted.is_some() {
                return Err(NegotiationError::Repeated);
            }
            accepted = Some(check(cfg, &ext.params)?);
        }
    }
    Ok(accepted)
}

/// The answer's parameters, checked against the offer.
fn check(cfg: &DeflateConfig, params: &[(&str, Option<String>)]) -> Result<DeflateParams, NegotiationError> {
    const SERVER_BITS: &str = "server_max_window_bits";
    const CLIENT_BITS: &str = "client_max_window_bits";
    const SERVER_NCT: &str = "server_no_context_takeover";
    const CLIENT_NCT: &str = "client_no_context_takeover";
    let (mut server_bits, mut client_bits, mut server_nct, mut client_nct) = (None, None, false, false);
    let mut seen = [false; 4];
    for (name, value) in params {
        let (index, param) = [SERVER_BITS, CLIENT_BITS, SERVER_NCT, CLIENT_NCT]
            .into_iter()
            .enumerate()
            .find(|(_, p)| name.eq_ignore_ascii_case(p))
            .ok_or_else(|| NegotiationError::UnknownParameter((*name).to_owned()))?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(NegotiationError::DuplicateParameter(param));
        }
        match index {
            0 | 1 => {
                let bits = window_bits(param, value.as_deref())?;
                if index == 0 {
                    server_bits = Some(bits);
                } else {
                    client_bits = Some(bits);
                }
            }
            _ => {
                if let Some(v) = value {
                    return Err(NegotiationError::InvalidValue { param, value: v.clone(), expected: "no value" });
                }
                if index == 2 {
                    server_nct = true;
                } else {
                    client_nct = true;
                }
            }
        }
    }
    if let Some(asked) = cfg.server_max_window_bits {
        match server_bits {
            None => return Err(NegotiationError::MissingParameter(SERVER_BITS)),
            Some(b) if b > asked => {
                return Err(NegotiationError::InvalidValue {
                    param: SERVER_BITS,
                    value: b.to_string(),
                    expected: "at most the offered value",
                });
            }
            Some(_) => {}
        }
    }
    if cfg.server_no_context_takeover && !server_nct {
        return Err(NegotiationError::MissingParameter(SERVER_NCT));
    }
    if let Some(b) = client_bits
        && b > cfg.client_max_window_bits
    {
        return Err(NegotiationError::InvalidValue {
            param: CLIENT_BITS,
            value: b.to_string(),
            expected: "at most the offered value",
        });
    }
    Ok(DeflateParams::new(
        server_bits.unwrap_or(15),
        client_bits.unwrap_or(cfg.client_max_window_bits),
        server_nct,
        client_nct || cfg.client_no_context_takeover,
    ))
}

/// A `*_max_window_bits` value: 1*DIGIT, 8 to 15, no leading zero (RFC 7692 section 7.1.2).
fn window_bits(param: &'static str, value: Option<&str>) -> Result<u8, NegotiationError> {
    let invalid =
        || NegotiationError::InvalidValue { param, value: value.unwrap_or_default().to_owned(), expected: "8 to 15" };
    let v = value.ok_or_else(invalid)?;
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) || v.starts_with('0') {
        return Err(invalid());
    }
    match v.parse::<u8>() {
        Ok(b @ 8..=15) => Ok(b),
        _ => Err(invalid()),
    }
}

/// One element of an extension list: a name and its parameters (values unquoted).
#[derive(Debug, PartialEq, Eq)]
struct Ext<'a> {
    name: &'a str,
    params: Vec<(&'a str, Option<String>)>,
}

/// Parses `1#extension` (RFC 6455 section 9.1, with RFC 7230's list rules: empty elements allowed),
/// `extension = token *( OWS ";" OWS param )`, `param = token [ OWS "=" OWS (token | quoted-string) ]`.
fn parse_list(line: &str) -> Result<Vec<Ext<'_>>, NegotiationError> {
    let mut p = Parser { s: line, i: 0 };
    let mut out = Vec::new();
    loop {
        p.ows();
        if p.eat(b',') {
            continue; // an empty element
        }
        if p.done() {
            return Ok(out);
        }
        let name = p.token("an extension name")?;
        let mut params = Vec::new();
        loop {
            p.ows();
            if p.done() || p.eat(b',') {
                break;
            }
            if !p.eat(b';') {
                return Err(p.error("';' or ',' after an extension or parameter"));
            }
            p.ows();
            let param = p.token("a parameter name")?;
            p.ows();
            let value = if p.eat(b'=') {
                p.ows();
                Some(if p.peek() == Some(b'"') { p.quoted()? } else { p.token("a parameter value")?.to_owned() })
            } else {
                None
            };
            params.push((param, value));
        }
        out.push(Ext { name, params });
    }
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self, what: &str) -> Result<&'a str, NegotiationError> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.error(&format!("{what} (a token)")));
        }
        Ok(&self.s[start..self.i])
    }

    /// A quoted-string, unescaped.
    fn quoted(&mut self) -> Result<String, NegotiationError> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("a closing '\"'")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(c) = self.s[self.i..].chars().next() else {
                        return Err(self.error("a character after '\\'"));
                    };
                    out.push(c);
                    self.i += c.len_utf8();
                }
                Some(_) => {
                    let Some(c) = self.s[self.i..].chars().next() else {
                        return Err(self.error("a character"));
                    };
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn error(&self, expected: &str) -> NegotiationError {
        NegotiationError::Syntax(format!("expected {expected} at byte {} of {:?}", self.i, self.s))
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: u8, c: u8, snct: bool, cnct: bool) -> DeflateParams {
        DeflateParams::new(s, c, snct, cnct)
    }

    fn answer(cfg: &DeflateConfig, lines: &[&str]) -> Result<Option<DeflateParams>, NegotiationError> {
        negotiate(cfg, lines.iter().copied())
    }

    #[test]
    fn offer_says_what_is_configured() {
        assert_eq!(offer(&DeflateConfig::default()), "permessage-deflate; client_max_window_bits");
        let c = DeflateConfig {
            client_max_window_bits: 12,
            server_max_window_bits: Some(10),
            client_no_context_takeover: true,
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            offer(&c),
            "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10; client_no_context_takeover; \
             server_no_context_takeover"
        );
        // The offer parses back as one element of our extension.
        let offered = offer(&c);
        let parsed = parse_list(&offered).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].params.len(), 4);
    }

    #[test]
    fn declined_means_uncompressed() {
        let c = DeflateConfig::default();
        assert_eq!(answer(&c, &[]), Ok(None));
        assert_eq!(answer(&c, &[""]), Ok(None));
        assert_eq!(answer(&c, &[" , ,"]), Ok(None));
    }

    #[test]
    fn accepted_answers() {
        let c = DeflateConfig::default();
        assert_eq!(answer(&c, &["permessage-deflate"]), Ok(Some(params(15, 15, false, false))));
        assert_eq!(
            answer(&c, &["Permessage-Deflate ;server_max_window_bits=10;  client_max_window_bits = \"9\""]),
            Ok(Some(params(10, 9, false, false)))
        );
        assert_eq!(
            answer(&c, &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]),
            Ok(Some(params(15, 15, true, true)))
        );
        // Split over two header lines, with empty list elements.
        assert_eq!(
            answer(&c, &["", ", permessage-deflate; server_max_window_bits=8,"]),
            Ok(Some(params(8, 15, false, false)))
        );
        // What was asked for, answered.
        let asked = DeflateConfig {
            server_max_window_bits: Some(12),
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            client_max_window_bits: 11,
            ..DeflateConfig::default()
        };
        assert_eq!(
            answer(&asked, &["permessage-deflate; server_max_window_bits=11; server_no_context_takeover"]),
            Ok(Some(params(11, 11, true, true)))
        );
    }

    #[test]
    fn refused_answers_name_the_problem() {
        use NegotiationError::*;
        let c = DeflateConfig::default();
        assert_eq!(answer(&c, &["x-webkit-deflate-frame"]), Err(NotOffered("x-webkit-deflate-frame".into())));
        assert_eq!(answer(&c, &["permessage-deflate, foo"]), Err(NotOffered("foo".into())));
        assert_eq!(answer(&c, &["permessage-deflate", "permessage-deflate"]), Err(Repeated));
        assert_eq!(answer(&c, &["permessage-deflate; mode=fast"]), Err(UnknownParameter("mode".into())));
        assert_eq!(
            answer(&c, &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"]),
            Err(DuplicateParameter("server_no_context_takeover"))
        );
        assert_eq!(
            answer(&c, &["permessage-deflate; server_max_window_bits=10; SERVER_MAX_WINDOW_BITS=10"]),
            Err(DuplicateParameter("server_max_window_bits"))
        );
        for bad in ["7", "16", "08", "", "1x", "-9", "100", "\"16\""] {
            let line = format!("permessage-deflate; server_max_window_bits={bad}");
            let line = if bad.is_empty() { "permessage-deflate; server_max_window_bits".to_owned() } else { line };
            assert!(
                matches!(answer(&c, &[&line]), Err(InvalidValue { param: "server_max_window_bits", .. })),
                "{line}: {:?}",
                answer(&c, &[&line])
            );
        }
        assert!(matches!(
            answer(&c, &["permessage-deflate; client_max_window_bits"]),
            Err(InvalidValue { param: "client_max_window_bits", .. })
        ));
        assert!(matches!(
            answer(&c, &["permessage-deflate; server_no_context_takeover=1"]),
            Err(InvalidValue { param: "server_no_context_takeover", .. })
        ));
        // Larger than offered.
        let small = DeflateConfig { client_max_window_bits: 10, ..DeflateConfig::default() };
        assert!(matches!(
            answer(&small, &["permessage-deflate; client_max_window_bits=11"]),
            Err(InvalidValue { param: "client_max_window_bits", .. })
        ));
        let asked = DeflateConfig { server_max_window_bits: Some(10), ..DeflateConfig::default() };
        assert_eq!(answer(&asked, &["permessage-deflate"]), Err(MissingParameter("server_max_window_bits")));
        assert!(matches!(
            answer(&asked, &["permessage-deflate; server_max_window_bits=12"]),
            Err(InvalidValue { param: "server_max_window_bits", .. })
        ));
        let nct = DeflateConfig { server_no_context_takeover: true, ..DeflateConfig::default() };
        assert_eq!(answer(&nct, &["permessage-deflate"]), Err(MissingParameter("server_no_context_takeover")));
        // Syntax.
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; =3",
            "permessage-deflate x",
            "permessage-deflate; a=\"1",
            "permessage-deflate; a=b c",
            "\"quoted\"",
        ] {
            assert!(matches!(answer(&c, &[bad]), Err(Syntax(_))), "{bad}: {:?}", answer(&c, &[bad]));
        }
    }

    #[test]
    fn any_input_is_an_answer_or_an_error() {
        // Arbitrary bytes never panic the parser (the fuzz target covers more).
        let c = DeflateConfig::default();
        for s in ["\u{0}", "p\"", "permessage-deflate; a=\"\\", "permessage-deflate; a=\"é\\é\"", ";;;", "=,=", "\\"]
        {
            let _ = answer(&c, &[s]);
        }
    }
}
