//! The application's handle on a connection: send (tracked or not), request, acknowledge, close, state,
//! stats.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::channel::oneshot;
use futures::future::poll_fn;
use futures::task::AtomicWaker;
use tether_core::{
    AckKey, CloseMode, CommandError, Message, MessageId, NetworkHint, Outcome, SendError, Session, State, Stats,
    Tracking,
};
use tracing::Instrument;

use crate::correlate::Correlation;
use crate::driver::Driver;
use crate::events::{EventQueue, Events};
use crate::request::{Answer, Pending, Request};
use crate::runtime::Clock;
use crate::waiters::{Slot, Waiters};
use crate::{ClientConfig, Runtime};

/// State shared by the client handles, the event stream and the driver task.
pub(crate) struct Shared {
    session: Mutex<Session>,
    driver: AtomicWaker,
    /// The driver has been woken and not yet started its next round: no need to wake it again.
    notified: AtomicBool,
    /// Tasks waiting for queue room or for the end of the session.
    waiters: Waiters,
    /// The runtime's clock.
    clock: Box<dyn Clock>,
    /// The `now` a send passes when the configuration sets no TTL: the client's start. The session
    /// uses a send's time only for expiry and counts an earlier time as the latest it saw, so this
    /// changes nothing and spares a clock read per message (a measurable share of a send's cost).
    /// `None` with a TTL: sends read the clock.
    send_epoch: Option<Instant>,
    pub(crate) events: EventQueue,
    receipts: Mutex<HashMap<MessageId, oneshot::Sender<Outcome>>>,
    receipts_pending: AtomicUsize,
    /// Requests waiting for their response (see `request`), and how many.
    requests: Mutex<Pending>,
    requests_pending: AtomicUsize,
    /// An ack timeout is configured: tracked sends read the clock (their deadline runs from it).
    ack_clock: bool,
    /// The correlation function, for `request_json` (where its ids go; read with the `json` feature).
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) correlation: Option<Correlation>,
    /// The last id `request_json` generated.
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) json_ids: AtomicU64,
    finished: AtomicBool,
}

impl Shared {
    pub(crate) fn session(&self) -> MutexGuard<'_, Session> {
        // The session's methods never leave it inconsistent on a panic elsewhere: keep going.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn receipts(&self) -> MutexGuard<'_, HashMap<MessageId, oneshot::Sender<Outcome>>> {
        self.receipts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the driver unless it is already due to run.
    pub(crate) fn wake_driver(&self) {
        // The plain load first: in a burst the driver is already notified, and a read costs far less
        // than the read-modify-write.
        if !self.notified.load(Ordering::Acquire) && !self.notified.swap(true, Ordering::AcqRel) {
            self.driver.wake();
        }
    }

    pub(crate) fn register_driver(&self, waker: &Waker) {
        self.driver.register(waker);
        self.notified.store(false, Ordering::Release);
    }

    pub(crate) fn wake_waiters(&self) {
        self.waiters.wake_all();
    }

    /// The runtime's current time.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A timer of the runtime that completes at `deadline`.
    pub(crate) fn timer(&self, deadline: Instant) -> crate::runtime::BoxTimer {
        self.clock.timer(deadline)
    }

    pub(crate) fn wants_receipts(&self) -> bool {
        self.receipts_pending.load(Ordering::Acquire) > 0
    }

    /// Whether requests wait for responses: the driver then routes the events (see `driver::run_core`).
    pub(crate) fn wants_requests(&self) -> bool {
        self.requests_pending.load(Ordering::Acquire) > 0
    }

    /// The pending requests. Lock order: the session first, then this, then the event queue.
    pub(crate) fn requests(&self) -> MutexGuard<'_, Pending> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes request `id` out of the table (it ended): where its answer goes.
    pub(crate) fn take_request(&self, requests: &mut Pending, id: MessageId) -> Option<oneshot::Sender<Answer>> {
        let tx = requests.remove(&id)?;
        self.requests_pending.fetch_sub(1, Ordering::AcqRel);
        Some(tx)
    }

    pub(crate) fn deliver_receipt(&self, id: MessageId, outcome: Outcome) {
        if let Some(tx) = self.receipts().remove(&id) {
            self.receipts_pending.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(outcome);
        }
    }

    /// Whether the driver stopped before the session ended (its task was dropped with its runtime):
    /// nothing will move the session any more, and the client behaves as failed.
    #[inline]
    fn orphaned(&self, s: &Session) -> bool {
        self.finished.load(Ordering::Acquire) && !matches!(s.state(), State::Closed | State::Failed)
    }

    /// A send refused because the driver is gone.
    #[cold]
    fn refuse_orphaned(message: Message) -> SendError {
        SendError::Inactive { message, state: State::Failed }
    }

    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.events.finish();
        // Receipts still open belong to messages whose outcome was already reported or never will be
        // (the driver stopped): dropping the senders resolves them as `Aborted`.
        self.receipts().clear();
        // Likewise pending requests end as `RequestError::Closed`.
        self.requests().clear();
        self.requests_pending.store(0, Ordering::Release);
        self.wake_waiters();
    }
}

/// A message accepted by the queue: its id, and the receiving end of its receipt if one was asked for.
type Accepted = (MessageId, Option<oneshot::Receiver<Outcome>>);

/// Messages accepted but not yet taken by the driver after which `send` lets the driver run first.
/// The driver takes up to this many per round (`driver::ACTION_BATCH`), so one yield lets it write a
/// whole round.
const SEND_BURST: usize = crate::driver::ACTION_BATCH;

/// The `now` for a send: see [`Shared::send_epoch`].
fn send_time(shared: &Shared) -> Instant {
    shared.send_epoch.unwrap_or_else(|| shared.now())
}

/// Why a runtime crate's `connect` could not start a client. `tether_tokio::connect`,
/// `tether_smol::connect` and `tether_async_std::connect` all return `Result<(Client, Events),
/// ConnectError>`, so code moves between runtimes unchanged (only tokio's can fail today).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// There is no runtime here to run the client's driver task on.
    #[error("no {runtime} runtime here: {fix}")]
    NoRuntime {
        /// The runtime that was looked for.
        runtime: &'static str,
        /// How to provide one.
        fix: &'static str,
    },
}

/// Starts a client on runtime `rt`: spawns its driver task and returns the handle and the event stream.
///
/// The client starts connecting at once; messages sent before the connection is up are queued.
pub fn connect<R: Runtime>(rt: R, config: ClientConfig) -> (Client, Events) {
    let now = rt.now();
    let inner = config.inner;
    let mut session = match Session::new(inner.core.clone(), now) {
        Ok(s) => s,
        // `ClientConfig` is only made by `ClientBuilder::build`, after `Config::validate`.
        Err(e) => unreachable!("validated configuration refused: {e}"),
    };
    session.set_preamble(inner.preamble.clone());
    if let Err(e) = session.connect(now) {
        unreachable!("a new session is idle: {e}");
    }
    let shared = Arc::new(Shared {
        session: Mutex::new(session),
        driver: AtomicWaker::new(),
        notified: AtomicBool::new(false),
        waiters: Waiters::default(),
        clock: Box::new(rt.clone()),
        events: EventQueue::new(inner.event_capacity),
        receipts: Mutex::new(HashMap::new()),
        receipts_pending: AtomicUsize::new(0),
        requests: Mutex::new(HashMap::new()),
        requests_pending: AtomicUsize::new(0),
        ack_clock: inner.core.acks.timeout.is_some(),
        correlation: inner.correlation.clone(),
        json_ids: AtomicU64::new(0),
        finished: AtomicBool::new(false),
        send_epoch: inner.core.queue.ttl.is_none().then_some(now),
    });
    let span = tracing::info_span!("tether", url = %inner.redacted_url);
    let driver = Driver::new(rt.clone(), inner, shared.clone());
    rt.spawn(driver.instrument(span));
    let guard = Arc::new(HandleGuard(shared.clone()));
    (Client { shared: shared.clone(), _guard: guard }, Events::new(shared))
}

/// Closes the session when the last [`Client`] handle is dropped.
struct HandleGuard(Arc<Shared>);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let mut s = self.0.session();
        if !matches!(s.state(), State::Closing | State::Closed | State::Failed) {
            let _ = s.close(self.0.now(), 1000, "client dropped", CloseMode::Drain);
        }
        drop(s);
        self.0.wake_driver();
    }
}

/// A handle on a resilient WebSocket connection. Cheap to clone, `Send + Sync`; the connection is
/// closed (draining the queue) when the last handle is dropped.
///
/// If the driver task is dropped before the session ends (its runtime shuts down), the client behaves
/// as failed: [`state`](Self::state) is [`State::Failed`], sends are refused with
/// [`SendError::Inactive`], [`finished`](Self::finished) and [`close`](Self::close) return at once, the
/// event stream ends and open [`Receipt`]s resolve as [`Outcome::Aborted`].
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    _guard: Arc<HandleGuard>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("state", &self.state()).finish()
    }
}

/// The future of [`Client::send`]: resolves to the message's id once the queue has accepted it.
#[must_use = "futures do nothing unless awaited"]
pub struct SendMessage<'a> {
    client: &'a Client,
    slot: Option<Message>,
    /// Set for `send_tracked`.
    tracking: Option<Tracking>,
    yielded: bool,
    /// Where it waits for room in the queue; freed when it completes or is dropped.
    wait: Slot<'a>,
}

impl std::fmt::Debug for SendMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMessage").field("queued", &self.slot.is_none()).finish()
    }
}

impl Future for SendMessage<'_> {
    type Output = Result<MessageId, SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let tracking = this.tracking.as_ref();
        this.client
            .poll_send(cx, &mut this.slot, tracking, &mut this.yielded, &mut this.wait, false)
            .map(|r| r.map(|(id, _)| id))
    }
}

/// Resolves to the [`Outcome`] of one message, for callers who want to await it.
#[derive(Debug)]
pub struct Receipt {
    id: MessageId,
    rx: oneshot::Receiver<Outcome>,
}

impl Receipt {
    /// The message's id.
    pub fn id(&self) -> MessageId {
        self.id
    }
}

impl Future for Receipt {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        // A dropped sender means the client stopped before the message could be sent.
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(Outcome::Aborted))
    }
}

impl Client {
    /// Queues a message and returns its id once accepted, waiting while the queue is full
    /// (backpressure). Its [`Outcome`] arrives later as an event. Refused messages are handed back.
    ///
    /// While connected it also pauses once every 512 messages the driver has not taken yet, so that a
    /// loop of sends that never waits (on a single-threaded runtime) lets the driver write as it goes.
    ///
    /// Cancel-safe: if the returned future is dropped before it completes, the message was not queued.
    pub fn send(&self, message: impl Into<Message>) -> SendMessage<'_> {
        SendMessage {
            client: self,
            slot: Some(message.into()),
            tracking: None,
            yielded: false,
            wait: Slot::new(&self.shared.waiters),
        }
    }

    /// Like [`send`](Self::send), and also returns a [`Receipt`] that resolves to the outcome.
    pub async fn send_with_receipt(&self, message: impl Into<Message>) -> Result<Receipt, SendError> {
        let mut slot = Some(message.into());
        let mut yielded = false;
        let mut wait = Slot::new(&self.shared.waiters);
        let (id, rx) = poll_fn(|cx| self.poll_send(cx, &mut slot, None, &mut yielded, &mut wait, true)).await?;
        Ok(Receipt { id, rx: rx.unwrap_or_else(|| oneshot::channel().1) })
    }

    /// Queues a tracked message: sent like any other, then done only when acknowledged (by a message
    /// the [correlation function](crate::ClientBuilder::correlate) matches to `tracking`'s key, or by
    /// [`ack`](Self::ack)), with [`Outcome::Acked`]; a connection lost before that sends it again first
    /// on the next one. `tracking` is the key (anything [`Into<AckKey>`]) or a [`Tracking`]. See
    /// [`tether_core::acks`] for the rules, and what `Acked` promises.
    ///
    /// Waits while the queue or the window of tracked messages is full. Refused, with the message
    /// handed back: a key already waiting for its acknowledgement ([`SendError::DuplicateKey`]), and
    /// whatever [`send`](Self::send) refuses. Cancel-safe, like `send`.
    pub fn send_tracked(&self, message: impl Into<Message>, tracking: impl Into<Tracking>) -> SendMessage<'_> {
        SendMessage {
            client: self,
            slot: Some(message.into()),
            tracking: Some(tracking.into()),
            yielded: false,
            wait: Slot::new(&self.shared.waiters),
        }
    }

    /// Like [`send_tracked`](Self::send_tracked), and also returns a [`Receipt`] that resolves to the
    /// outcome (`Acked`, or the failure).
    pub async fn send_tracked_with_receipt(
        &self,
        message: impl Into<Message>,
        tracking: impl Into<Tracking>,
    ) -> Result<Receipt, SendError> {
        let (mut slot, tracking) = (Some(message.into()), tracking.into());
        let mut yielded = false;
        let mut wait = Slot::new(&self.shared.waiters);
        let (id, rx) =
            poll_fn(|cx| self.poll_send(cx, &mut slot, Some(&tracking), &mut yielded, &mut wait, true)).await?;
        Ok(Receipt { id, rx: rx.unwrap_or_else(|| oneshot::channel().1) })
    }

    /// Queues a tracked message without waiting; a full queue or window hands it back at once in
    /// [`SendError::Full`].
    pub fn try_send_tracked(
        &self,
        message: impl Into<Message>,
        tracking: impl Into<Tracking>,
    ) -> Result<MessageId, SendError> {
        let tracking = tracking.into();
        let now = self.tracked_send_time();
        let mut s = self.shared.session();
        if self.shared.orphaned(&s) {
            return Err(Shared::refuse_orphaned(message.into()));
        }
        let r = s.send_tracked(now, message.into(), tracking);
        drop(s);
        if r.is_ok() {
            self.shared.wake_driver();
        }
        r
    }

    /// Acknowledges the tracked message sent with `key`, for an application that reads acknowledgements
    /// itself: it ends [`Outcome::Acked`]. Returns its id; `None` (counted in
    /// [`Stats::acks_unknown`](tether_core::Stats::acks_unknown)) if no tracked message with this key has
    /// been sent: see [`Session::ack`].
    pub fn ack(&self, key: impl Into<AckKey>) -> Option<MessageId> {
        let now = self.shared.now();
        let id = self.shared.session().ack(now, &key.into());
        // The window (or a draining close) may be waiting for this.
        self.shared.wake_driver();
        id
    }

    /// Gives up on the tracked message sent with `key`: see [`Session::cancel`]. Returns its id.
    pub fn cancel(&self, key: impl Into<AckKey>) -> Option<MessageId> {
        let now = self.shared.now();
        let id = self.shared.session().cancel(now, &key.into());
        self.shared.wake_driver();
        id
    }

    /// Sends a request and resolves to its response: the inbound message the
    /// [correlation function](crate::ClientBuilder::correlate) matches to `key`, routed to this future
    /// instead of the event stream. A request is a tracked message whose acknowledgement is its
    /// response; the rules (timeout, bound, lost connections, cancelling by dropping the future) are in
    /// [`Request`]. Mark it [`idempotent`](Request::idempotent) to have it sent again after a lost
    /// connection.
    ///
    /// ```no_run
    /// # async fn f(client: tether::Client) -> Result<(), tether::RequestError> {
    /// let response = client.request(r#"{"id":7,"method":"get"}"#, 7u64).idempotent().await?;
    /// # Ok(()) }
    /// ```
    pub fn request(&self, message: impl Into<Message>, key: impl Into<AckKey>) -> Request<'_> {
        Request::new(self, key.into(), message.into(), Slot::new(&self.shared.waiters))
    }

    /// One attempt at queueing a request (the message in `slot`) and registering where its response
    /// goes; on `Pending` the message is back in `slot`.
    pub(crate) fn start_request(
        &self,
        cx: &mut Context<'_>,
        slot: &mut Option<Message>,
        tracking: Tracking,
        wait: &mut Slot<'_>,
    ) -> Poll<Result<(MessageId, oneshot::Receiver<Answer>), SendError>> {
        let Some(message) = slot.take() else {
            unreachable!("a request is not queued twice");
        };
        let now = self.tracked_send_time();
        let mut s = self.shared.session();
        if self.shared.orphaned(&s) {
            wait.release();
            return Poll::Ready(Err(Shared::refuse_orphaned(message)));
        }
        match s.send_tracked(now, message, tracking.clone()) {
            Ok(id) => {
                wait.release();
                // Registered under the session lock, before the driver can see the response.
                let (tx, rx) = oneshot::channel();
                self.shared.requests().insert(id, tx);
                self.shared.requests_pending.fetch_add(1, Ordering::AcqRel);
                drop(s);
                self.shared.wake_driver();
                Poll::Ready(Ok((id, rx)))
            }
            Err(SendError::Full(message)) => {
                wait.register(cx);
                *slot = Some(message);
                Poll::Pending
            }
            Err(e) => {
                wait.release();
                Poll::Ready(Err(e))
            }
        }
    }

    /// A request future dropped before its answer: the request ends (`Session::cancel`), and its entry
    /// goes, unless the driver has already answered it.
    pub(crate) fn cancel_request(&self, key: &AckKey, id: MessageId) {
        let now = self.shared.now();
        let mut s = self.shared.session();
        let mut requests = self.shared.requests();
        if self.shared.take_request(&mut requests, id).is_some() {
            s.cancel(now, key);
        }
        drop(requests);
        drop(s);
        self.shared.wake_driver();
    }

    /// Requests waiting for their response.
    pub fn pending_requests(&self) -> usize {
        self.shared.requests_pending.load(Ordering::Acquire)
    }

    /// The `now` of a tracked send: the clock when an ack timeout runs from it.
    fn tracked_send_time(&self) -> Instant {
        if self.shared.ack_clock { self.shared.now() } else { send_time(&self.shared) }
    }

    /// Queues a message without waiting; a full queue hands it back at once in [`SendError::Full`].
    pub fn try_send(&self, message: impl Into<Message>) -> Result<MessageId, SendError> {
        let now = send_time(&self.shared);
        let mut s = self.shared.session();
        if self.shared.orphaned(&s) {
            return Err(Shared::refuse_orphaned(message.into()));
        }
        let r = s.send(now, message.into());
        drop(s);
        if r.is_ok() {
            self.shared.wake_driver();
        }
        r
    }

    /// One attempt at queueing the message in `slot`; on `Pending` the message is back in `slot`.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        slot: &mut Option<Message>,
        tracking: Option<&Tracking>,
        yielded: &mut bool,
        wait: &mut Slot<'_>,
        receipt: bool,
    ) -> Poll<Result<Accepted, SendError>> {
        let mut s = self.shared.session();
        if !*yielded && s.state() == State::Connected {
            // Bounded bursts: once every SEND_BURST messages the driver has not taken yet, let it run
            // before accepting more. On a single-threaded runtime a loop of sends that never wait would
            // otherwise hold back the first write until the queue is full, and the whole burst would
            // fall out of the CPU caches before it is written. Checked before accepting, so a future
            // dropped here has not sent its message.
            let waiting = s.queue_len() - s.in_flight();
            if waiting >= SEND_BURST && waiting % SEND_BURST == 0 {
                *yielded = true;
                drop(s);
                self.shared.wake_driver();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let Some(message) = slot.take() else {
            unreachable!("a send future is not polled after it completed");
        };
        if self.shared.orphaned(&s) {
            wait.release();
            return Poll::Ready(Err(Shared::refuse_orphaned(message)));
        }
        let sent = match tracking {
            None => s.send(send_time(&self.shared), message),
            Some(t) => s.send_tracked(self.tracked_send_time(), message, t.clone()),
        };
        match sent {
            Ok(id) => {
                wait.release();
                // Registered under the session lock, before the driver can see the outcome.
                let rx = receipt.then(|| {
                    let (tx, rx) = oneshot::channel();
                    self.shared.receipts().insert(id, tx);
                    self.shared.receipts_pending.fetch_add(1, Ordering::AcqRel);
                    rx
                });
                drop(s);
                self.shared.wake_driver();
                Poll::Ready(Ok((id, rx)))
            }
            Err(SendError::Full(message)) => {
                // Registered under the session lock, so the room cannot appear unnoticed.
                wait.register(cx);
                *slot = Some(message);
                Poll::Pending
            }
            Err(e) => {
                wait.release();
                Poll::Ready(Err(e))
            }
        }
    }

    /// Closes gracefully: queued messages are sent first, then a close frame with `code` and `reason`;
    /// returns when the session is closed (at most the close timeout later).
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), CommandError> {
        self.close_with(code, reason, CloseMode::Drain).await
    }

    /// Closes with an explicit [`CloseMode`]; returns when the session is closed.
    pub async fn close_with(&self, code: u16, reason: &str, mode: CloseMode) -> Result<(), CommandError> {
        let now = self.shared.now();
        self.shared.session().close(now, code, reason, mode)?;
        self.shared.wake_driver();
        self.finished().await;
        Ok(())
    }

    /// Waits until the client has closed or failed for good.
    pub async fn finished(&self) {
        // Dropped with the future: a `select!` loop over `finished()` leaves no waker behind.
        let mut wait = Slot::new(&self.shared.waiters);
        poll_fn(|cx| {
            if self.shared.finished.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            wait.register(cx);
            if self.shared.finished.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }

    /// Registers messages sent first on every new connection (replacing earlier ones).
    pub fn set_preamble(&self, messages: Vec<Message>) {
        self.shared.session().set_preamble(messages);
    }

    /// Passes a network hint from the platform (online, offline, resumed from sleep).
    pub fn network_hint(&self, hint: NetworkHint) {
        let now = self.shared.now();
        self.shared.session().handle_network(now, hint);
        self.shared.wake_driver();
    }

    /// The current state.
    pub fn state(&self) -> State {
        let s = self.shared.session();
        if self.shared.orphaned(&s) { State::Failed } else { s.state() }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let now = self.shared.now();
        self.shared.session().stats(now)
    }
}
