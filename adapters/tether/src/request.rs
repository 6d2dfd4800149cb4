//! Request/response over the resilient connection, built on tracked messages: a request is a tracked
//! message ([`tether_core::acks`]) whose acknowledgement is its response. The rules are on [`Request`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use tether_core::{AckKey, Message, MessageId, Outcome, SendError, State, Tracking};

use crate::client::Client;
use crate::runtime::BoxTimer;
use crate::waiters::Slot;

/// The end of a request: its response, or why there is none.
pub(crate) type Answer = Result<Message, RequestError>;

/// Pending requests, by message id: where each one's response goes.
pub(crate) type Pending = HashMap<MessageId, oneshot::Sender<Answer>>;

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request was not accepted: a key already pending, too large, or the client is closed. The
    /// message is in the [`SendError`].
    #[error("request refused: {0}")]
    Refused(SendError),
    /// No response within [`AckConfig::timeout`](tether_core::AckConfig::timeout), or within the
    /// request's own [`Request::timeout`]. The server may or may not have processed the request.
    #[error("no response within the ack timeout; the server may or may not have processed the request")]
    TimedOut,
    /// The connection was lost after the request was sent, and the request is not idempotent: the
    /// server may or may not have processed it. Retry only if that is safe (or mark such requests
    /// [`Request::idempotent`], and they are sent again by themselves).
    #[error(
        "the connection was lost after the request was sent; the server may or may not have processed it (mark idempotent requests to have them sent again)"
    )]
    ConnectionLost,
    /// The client closed or failed before the response arrived.
    #[error("the client closed or failed before the response arrived")]
    Closed,
    /// The request ended before it was ever sent, by a queue policy (`Dropped` by `DropOldest`,
    /// `Expired` by the TTL).
    #[error("the request was never sent: {0:?}")]
    NotSent(Outcome),
    /// It was acknowledged by hand ([`Client::ack`](crate::Client::ack)) with its key: done, but without
    /// a response.
    #[error("the request was acknowledged by hand with its key, so it has no response")]
    NoResponse,
    /// A JSON request (`Client::request_json`) could not be made or its response read: the client has
    /// no JSON correlation, the request's id is neither a string nor a non-negative integer, or the
    /// response is not JSON.
    #[error("JSON request: {0}")]
    Json(String),
}

impl RequestError {
    /// The error for a request that ended with `outcome` (not with a response), the session then
    /// being in `state`.
    pub(crate) fn from_outcome(outcome: Outcome, state: State) -> Self {
        let over = matches!(state, State::Closing | State::Closed | State::Failed);
        match outcome {
            Outcome::TimedOut => RequestError::TimedOut,
            Outcome::Abandoned if over => RequestError::Closed,
            Outcome::Abandoned => RequestError::ConnectionLost,
            Outcome::Acked => RequestError::NoResponse,
            Outcome::Dropped | Outcome::Expired => RequestError::NotSent(outcome),
            _ => RequestError::Closed,
        }
    }
}

enum Stage {
    /// Not accepted yet (waiting for room, or not polled yet); the message is in `slot`.
    Unsent {
        key: AckKey,
        slot: Option<Message>,
    },
    /// Accepted: waiting for the response.
    Sent {
        key: AckKey,
        id: MessageId,
        rx: oneshot::Receiver<Answer>,
    },
    Done,
}

/// The future of [`Client::request`]: the response, or why there is none. The request is queued when the
/// future is first polled.
///
/// # The rules
///
/// * **Matching.** The application installs a correlation function
///   ([`ClientBuilder::correlate`](crate::ClientBuilder::correlate); for JSON,
///   `ClientBuilder::correlate_json` with the `json` feature): inbound data message → the key it
///   answers, if any. The driver applies it to every inbound data message. One whose key belongs to a
///   pending request completes that request: the future resolves with the message, which is not put on
///   the event stream. One whose key belongs to a plain tracked message
///   ([`Client::send_tracked`](crate::Client::send_tracked)) acknowledges it ([`Event::Response`](tether_core::Event::Response), then its `Acked` outcome).
///   Anything else is an ordinary [`Event::Message`](tether_core::Event::Message) (a key nobody waits
///   for, a late response, is also counted in [`Stats::acks_unknown`](tether_core::Stats::acks_unknown)).
/// * **Keys.** The caller gives each request's key ([`Client::request`](crate::Client::request)), or the
///   JSON correlation generates one (`Client::request_json`, `json` feature). A key already pending is
///   refused ([`RequestError::Refused`] with [`SendError::DuplicateKey`]).
/// * **Timeout**: [`AckConfig::timeout`](tether_core::AckConfig::timeout) (off by default) for every
///   request, from the call (its outcome is then [`Outcome::TimedOut`]), and a request's own
///   [`Request::timeout`], from its first poll, on the runtime's clock (it then ends as if dropped: see
///   below); the first to pass ends it with [`RequestError::TimedOut`]. A response that has arrived
///   wins over a deadline passed at the same poll. Or put the future under your runtime's timeout:
///   dropping it cancels the request.
/// * **Bound**: requests are tracked messages, so the window
///   ([`AckConfig::max_messages`](tether_core::AckConfig::max_messages), `max_bytes`) bounds how many
///   are pending: `request` waits for room like `send`.
/// * **A lost connection.** A request marked [`Request::idempotent`] is sent again first on the next
///   connection (the server may see it twice). Any other request that had been sent ends with
///   [`RequestError::ConnectionLost`]: the server may or may not have processed it, and only the caller
///   knows whether retrying is safe. A request not yet sent just waits for the connection.
/// * **Dropping the future** cancels the request
///   ([`Session::cancel`](tether_core::Session::cancel)): it leaves the queue if it was not sent
///   ([`Outcome::Aborted`]), is abandoned if it was ([`Outcome::Abandoned`]; a late response is then an
///   ordinary message), and its entry is removed at once.
///
/// Every request still has an id and exactly one outcome on the event stream, like every message.
#[must_use = "a request is sent when its future is first polled"]
pub struct Request<'a> {
    client: &'a Client,
    stage: Stage,
    idempotent: bool,
    wait: Slot<'a>,
    /// The request's own timeout, until its first poll starts `timer`.
    timeout: Option<Duration>,
    /// In a mutex only to keep `Request` `Sync` (a runtime's timer need not be); it is reached through
    /// `&mut` (`Mutex::get_mut`), never locked.
    timer: Option<Mutex<BoxTimer>>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (stage, id) = match &self.stage {
            Stage::Unsent { .. } => ("unsent", None),
            Stage::Sent { id, .. } => ("sent", Some(*id)),
            Stage::Done => ("done", None),
        };
        f.debug_struct("Request")
            .field("stage", &stage)
            .field("id", &id)
            .field("idempotent", &self.idempotent)
            .field("timeout", &self.timeout)
            .field("timer_running", &self.timer.is_some())
            .finish()
    }
}

impl<'a> Request<'a> {
    pub(crate) fn new(client: &'a Client, key: AckKey, message: Message, wait: Slot<'a>) -> Self {
        Self {
            client,
            stage: Stage::Unsent { key, slot: Some(message) },
            idempotent: false,
            wait,
            timeout: None,
            timer: None,
        }
    }

    /// Gives up on the request if no response has arrived `timeout` after its first poll (when it is
    /// made): it resolves to [`RequestError::TimedOut`] and ends as if the future were dropped (a
    /// request still queued is withdrawn, [`Outcome::Aborted`]; one sent is [`Outcome::Abandoned`], and a
    /// late response is an ordinary message). Measured on the runtime's clock; for this request only,
    /// beside [`AckConfig::timeout`](tether_core::AckConfig::timeout) for every request. Default: none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks the request idempotent: after a lost connection it is sent again (first, on the next
    /// connection) instead of failing with [`RequestError::ConnectionLost`]. The server may then
    /// process it twice.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The request's message id, once it has been accepted.
    pub fn id(&self) -> Option<MessageId> {
        match &self.stage {
            Stage::Sent { id, .. } => Some(*id),
            _ => None,
        }
    }
}

impl Request<'_> {
    /// The request's own timeout passed: it ends as if dropped, unless its answer came meanwhile.
    fn time_out(&mut self) -> Result<Message, RequestError> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Sent { key, id, mut rx } => {
                self.client.cancel_request(&key, id);
                // Answered between the poll and the cancel: the answer stands.
                if let Ok(Some(answer)) = rx.try_recv() {
                    return answer;
                }
            }
            Stage::Unsent { .. } => self.wait.release(),
            Stage::Done => {}
        }
        Err(RequestError::TimedOut)
    }

    fn poll_stage(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, RequestError>> {
        let this = self;
        loop {
            match std::mem::replace(&mut this.stage, Stage::Done) {
                Stage::Unsent { key, mut slot } => {
                    let tracking = Tracking::new(key.clone()).redeliver(this.idempotent);
                    match this.client.start_request(cx, &mut slot, tracking, &mut this.wait) {
                        Poll::Ready(Ok((id, rx))) => this.stage = Stage::Sent { key, id, rx },
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(RequestError::Refused(e))),
                        Poll::Pending => {
                            // Not accepted yet: the message is back in the slot.
                            this.stage = Stage::Unsent { key, slot };
                            return Poll::Pending;
                        }
                    }
                }
                Stage::Sent { key, id, mut rx } => {
                    return match Pin::new(&mut rx).poll(cx) {
                        Poll::Pending => {
                            this.stage = Stage::Sent { key, id, rx };
                            Poll::Pending
                        }
                        Poll::Ready(Ok(r)) => Poll::Ready(r),
                        // The driver stopped: the client is gone.
                        Poll::Ready(Err(_)) => Poll::Ready(Err(RequestError::Closed)),
                    };
                }
                Stage::Done => unreachable!("a request future is not polled after it completed"),
            }
        }
    }
}

impl Future for Request<'_> {
    type Output = Result<Message, RequestError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(d) = this.timeout.take() {
            // The clock starts when the request is made (a deadline past the clock's range: none).
            let shared = &this.client.shared;
            this.timer = shared.now().checked_add(d).map(|at| Mutex::new(shared.timer(at)));
        }
        let answer = this.poll_stage(cx);
        if answer.is_pending()
            && let Some(timer) = this.timer.as_mut()
            && timer.get_mut().unwrap_or_else(PoisonError::into_inner).as_mut().poll(cx).is_ready()
        {
            this.timer = None;
            return Poll::Ready(this.time_out());
        }
        answer
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if let Stage::Sent { key, id, .. } = &self.stage {
            self.client.cancel_request(key, *id);
        }
    }
}
