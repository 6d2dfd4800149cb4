//! `tether connect --rpc-id FIELD`: request/response mode. Each stdin line is a JSON request, sent with
//! `Client::request_json` and matched to its response by FIELD (the client's JSON correlation); the
//! answers go to the printer in request order, each with its latency, while later requests are already
//! on their way.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::FuturesOrdered;
use futures::{Future, StreamExt};
use serde_json::{Map, Value};
use tether_tokio::Client;
use tokio::sync::mpsc;

use crate::connect::Input;

/// Requests in flight at most: stdin is read no further while this many wait for their response. Below
/// the default ack window (1024) and queue (4096), so every request is accepted when it is made, in
/// stdin order.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// The end of one request, for the printer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The request's line number (1-based).
    pub(crate) line: u64,
    /// The request's id (the value at the field path), if it has one.
    pub(crate) id: Value,
    /// From the request being made to its response (or failure).
    pub(crate) latency: Duration,
    /// The response, or why there is none.
    pub(crate) result: Result<Value, String>,
}

/// The id's field path (`--rpc-id`): `id`, or `a.b` for field `b` of object `a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath {
    /// As given: what `ClientBuilder::correlate_json` takes.
    pub(crate) text: String,
    pub(crate) fields: Vec<String>,
}

impl FieldPath {
    /// `None` if a segment is empty.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let fields: Vec<String> = s.split('.').map(str::to_owned).collect();
        fields.iter().all(|f| !f.is_empty()).then(|| Self { text: s.to_owned(), fields })
    }
}

/// The value at `path` in `v`.
fn at<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, f| v.as_object()?.get(f))
}

/// Puts `id` at `path` when nothing is there (creating the objects on the way); false if `v` (or a
/// parent on the way) is not an object.
fn put_id(v: &mut Value, path: &[String], id: u64) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut v = v;
    for f in parents {
        let Some(obj) = v.as_object_mut() else { return false };
        v = obj.entry(f.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    let Some(obj) = v.as_object_mut() else { return false };
    obj.entry(last.clone()).or_insert(Value::from(id));
    true
}

type Pending<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// One stdin line as a request: its future, which resolves to its answer.
fn make<'a>(
    client: &'a Client,
    path: &[String],
    line: u64,
    bytes: Vec<u8>,
    next_id: &mut u64,
    retry: bool,
) -> Pending<'a> {
    let t0 = Instant::now();
    let parsed = serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("line {line} is not JSON: {e}"));
    let mut value = match parsed {
        Ok(v) if v.is_object() => v,
        Ok(_) => return ready(line, Value::Null, t0, format!("line {line} is not a JSON object")),
        Err(e) => return ready(line, Value::Null, t0, e),
    };
    if at(&value, path).is_none() {
        *next_id += 1;
        if !put_id(&mut value, path, *next_id) {
            return ready(line, Value::Null, t0, format!("line {line}: no object at the id's path"));
        }
    }
    let id = at(&value, path).cloned().unwrap_or(Value::Null);
    let request = client.request_json(value);
    let request = if retry { request.idempotent() } else { request };
    Box::pin(async move {
        let result = request.await.map_err(|e| e.to_string());
        Answer { line, id, latency: t0.elapsed(), result }
    })
}

fn ready<'a>(line: u64, id: Value, t0: Instant, why: String) -> Pending<'a> {
    let a = Answer { line, id, latency: t0.elapsed(), result: Err(why) };
    Box::pin(std::future::ready(a))
}

/// Reads stdin lines from `lines`, makes each a request, and sends the answers to `answers` in request
/// order; once stdin has ended and every request has its answer, the end of stdin to `end`. Stops
/// reading while [`MAX_IN_FLIGHT`] requests wait.
pub(crate) async fn run(
    client: Client,
    path: Vec<String>,
    retry: bool,
    mut lines: mpsc::Receiver<Input>,
    answers: mpsc::Sender<Answer>,
    end: mpsc::Sender<Option<std::io::Error>>,
) {
    let mut pending: FuturesOrdered<Pending<'_>> = FuturesOrdered::new();
    let (mut line_no, mut next_id) = (0u64, 0u64);
    let mut ended: Option<Option<std::io::Error>> = None;
    loop {
        if pending.is_empty()
            && let Some(e) = ended.take()
        {
            let _ = end.send(e).await;
            return;
        }
        tokio::select! {
            input = lines.recv(), if ended.is_none() && pending.len() < MAX_IN_FLIGHT => match input {
                Some(Input::Line(bytes)) => {
                    line_no += 1;
                    pending.push_back(make(&client, &path, line_no, bytes, &mut next_id, retry));
                }
                Some(Input::End(e)) => ended = Some(e),
                None => ended = Some(None),
            },
            Some(answer) = pending.next(), if !pending.is_empty() => {
                if answers.send(answer).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_ids() {
        assert_eq!(FieldPath::parse("id").map(|p| p.fields), Some(vec!["id".to_owned()]));
        assert_eq!(FieldPath::parse("a.b").map(|p| p.fields), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(FieldPath::parse(""), None);
        assert_eq!(FieldPath::parse("a..b"), None);
        let p = FieldPath::parse("a.b").expect("valid").fields;
        let mut v = json!({"method": "m"});
        assert!(put_id(&mut v, &p, 7));
        assert_eq!(at(&v, &p), Some(&json!(7)));
        let mut v = json!({"a": {"b": "x"}});
        assert!(put_id(&mut v, &p, 7), "already there: kept");
        assert_eq!(at(&v, &p), Some(&json!("x")));
        assert!(!put_id(&mut json!({"a": 1}), &p, 7), "a is not an object");
    }
}
