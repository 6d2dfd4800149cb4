//! The ready-made JSON correlation (the `json` feature): JSON-RPC and every protocol that carries an
//! id field, in one line.
//!
//! ```
//! # #[cfg(feature = "json")] {
//! use tether::ClientBuilder;
//! let config = ClientBuilder::new("wss://example.com/rpc").correlate_json("id").build().unwrap();
//! # }
//! ```
//!
//! An inbound message (text or binary) that holds a JSON object answers the key found at the field
//! path: a non-negative integer is a number key, a string a text key (`7` and `"7"` differ, as JSON-RPC
//! ids do); anything else, or a message that is not JSON, answers nothing and is an ordinary message
//! (a JSON-RPC notification, say). [`Client::request_json`] sends a JSON value as a request: it puts a
//! fresh id at the path when the value has none (1, 2, 3, ... per client) and parses the response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use serde_json::{Map, Value};
use tether_core::{AckKey, Message};

use crate::builder::ClientBuilder;
use crate::client::Client;
use crate::correlate::Correlation;
use crate::request::{Request, RequestError};

/// Splits a field path: `"id"`, or `"a.b"` for a field `b` inside object `a`.
fn split(path: &str) -> Arc<[String]> {
    path.split('.').map(str::to_owned).collect()
}

/// The key at `path` in `value`, if it is a string or a non-negative integer.
pub fn json_key(value: &Value, path: &[String]) -> Option<AckKey> {
    let mut v = value;
    for field in path {
        v = v.as_object()?.get(field)?;
    }
    match v {
        Value::String(s) => Some(AckKey::from(s.as_str())),
        Value::Number(n) => n.as_u64().map(AckKey::from),
        _ => None,
    }
}

/// The key at `path` of the JSON object in `m`, if any.
fn message_key(m: &Message, path: &[String]) -> Option<AckKey> {
    // Not an object: not a response (and no need to parse a large array or string to find out).
    let first = m.payload().iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let value: Value = serde_json::from_slice(m.payload()).ok()?;
    json_key(&value, path)
}

impl ClientBuilder {
    /// Installs the JSON correlation: an inbound message answers the key at field `path` of the JSON
    /// object it holds (`"id"` for JSON-RPC; `"a.b"` for a nested field). See the [`json`](crate::json)
    /// module. Replaces any other correlation function.
    pub fn correlate_json(mut self, path: &str) -> Self {
        let fields = split(path);
        let at = fields.clone();
        let f = move |m: &Message| message_key(m, &at);
        self.correlation = Some(Correlation::new(Arc::new(f), Some(fields)));
        self
    }
}

impl Client {
    /// Sends JSON `value` as a request and resolves to the JSON response, with the client's JSON
    /// correlation ([`ClientBuilder::correlate_json`]): the request's id is the value at its path, or a
    /// fresh one put there (1, 2, 3, ...) when the value has none. A request as [`Client::request`]
    /// makes it otherwise (mark it [`idempotent`](JsonRequest::idempotent) to have it sent again after
    /// a lost connection).
    ///
    /// ```no_run
    /// # async fn f(client: tether::Client) -> Result<(), tether::RequestError> {
    /// use serde_json::json;
    /// let sum = client.request_json(json!({"jsonrpc": "2.0", "method": "add", "params": [1, 2]})).await?;
    /// assert_eq!(sum["result"], 3);
    /// # Ok(()) }
    /// ```
    pub fn request_json(&self, mut value: Value) -> JsonRequest<'_> {
        let Some(path) = self.shared.correlation.as_ref().and_then(|c| c.json_path.clone()) else {
            return JsonRequest::failed("the client has no JSON correlation: use ClientBuilder::correlate_json");
        };
        if json_key(&value, &path).is_none() && !set_id(&mut value, &path, || self.next_json_id()) {
            return JsonRequest::failed("the request is not a JSON object, or its id is neither a string nor a number");
        }
        let Some(key) = json_key(&value, &path) else {
            return JsonRequest::failed("the request's id is neither a string nor a non-negative integer");
        };
        let message = Message::text(value.to_string());
        JsonRequest(Stage::Made(self.request(message, key)))
    }

    fn next_json_id(&self) -> u64 {
        self.shared.json_ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Puts a fresh id at `path` in `value` if nothing is there (creating the objects on the way); false if
/// `value` is not an object, or something that is not an id is already there.
fn set_id(value: &mut Value, path: &[String], id: impl FnOnce() -> u64) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut v = value;
    for field in parents {
        let Some(obj) = v.as_object_mut() else { return false };
        v = obj.entry(field.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    let Some(obj) = v.as_object_mut() else { return false };
    if obj.contains_key(last) {
        return false;
    }
    obj.insert(last.clone(), Value::from(id()));
    true
}

/// The future of [`Client::request_json`]: the JSON response, or why there is none.
#[must_use = "a request is sent when its future is first polled"]
#[derive(Debug)]
pub struct JsonRequest<'a>(Stage<'a>);

#[derive(Debug)]
enum Stage<'a> {
    /// It could not be made (the error is taken when polled).
    Failed(Option<RequestError>),
    Made(Request<'a>),
}

impl<'a> JsonRequest<'a> {
    fn failed(why: &str) -> Self {
        Self(Stage::Failed(Some(RequestError::Json(why.to_owned()))))
    }

    /// Marks the request idempotent: see [`Request::idempotent`].
    pub fn idempotent(self) -> Self {
        match self.0 {
            Stage::Made(r) => Self(Stage::Made(r.idempotent())),
            failed => Self(failed),
        }
    }

    /// Gives up on the request if no response arrives in time: see [`Request::timeout`].
    pub fn timeout(self, timeout: std::time::Duration) -> Self {
        match self.0 {
            Stage::Made(r) => Self(Stage::Made(r.timeout(timeout))),
            failed => Self(failed),
        }
    }
}

impl Future for JsonRequest<'_> {
    type Output = Result<Value, RequestError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Stage::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(RequestError::Closed))),
            Stage::Made(request) => Pin::new(request).poll(cx).map(|r| {
                let m = r?;
                serde_json::from_slice(m.payload())
                    .map_err(|e| RequestError::Json(format!("the response is not JSON: {e}")))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_strings_and_non_negative_integers_at_the_path() {
        let p = split("id");
        assert_eq!(json_key(&json!({"id": 7}), &p), Some(AckKey::from(7u64)));
        assert_eq!(json_key(&json!({"id": "7"}), &p), Some(AckKey::from("7")));
        assert_eq!(json_key(&json!({"id": -1}), &p), None);
        assert_eq!(json_key(&json!({"id": 1.5}), &p), None);
        assert_eq!(json_key(&json!({"id": null}), &p), None);
        assert_eq!(json_key(&json!([1]), &p), None);
        assert_eq!(json_key(&json!({"a": {"b": 3}}), &split("a.b")), Some(AckKey::from(3u64)));
        let m = |s: &str| Message::text(s.to_owned());
        assert_eq!(message_key(&m(r#" {"jsonrpc":"2.0","id":3,"result":1}"#), &p), Some(AckKey::from(3u64)));
        assert_eq!(message_key(&m(r#"{"method":"notify"}"#), &p), None);
        assert_eq!(message_key(&m("not json"), &p), None);
        assert_eq!(message_key(&Message::binary(br#"{"id":"x"}"#.to_vec()), &p), Some(AckKey::from("x")));
    }

    #[test]
    fn ids_are_put_where_there_is_none() {
        let mut v = json!({"method": "m"});
        assert!(set_id(&mut v, &split("id"), || 5));
        assert_eq!(v, json!({"method": "m", "id": 5}));
        let mut v = json!({});
        assert!(set_id(&mut v, &split("a.b"), || 1));
        assert_eq!(v, json!({"a": {"b": 1}}));
        assert!(!set_id(&mut json!({"id": null}), &split("id"), || 1), "something is there");
        assert!(!set_id(&mut json!([1]), &split("id"), || 1), "not an object");
    }
}
