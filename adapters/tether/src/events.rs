//! The bounded hand-off of events from the driver to the application.
//!
//! One lock per batch on each side: the driver pushes what fits, the [`Events`] stream swaps the whole
//! buffer out at once. When the buffer is full the driver stops reading the socket (backpressure), and
//! when the stream is dropped events are discarded instead.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use tether_core::{Event, Session};

use crate::client::Shared;

#[derive(Debug)]
pub(crate) struct EventQueue {
    inner: Mutex<EvInner>,
    capacity: usize,
}

#[derive(Debug)]
struct EvInner {
    buf: VecDeque<Event>,
    finished: bool,
    receiver_alive: bool,
    consumer: Option<Waker>,
    producer: Option<Waker>,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(EvInner {
                // Grown on first use (then kept): preallocating `capacity` events cost ~70 KiB of heap
                // per idle connection.
                buf: VecDeque::new(),
                finished: false,
                receiver_alive: true,
                consumer: None,
                producer: None,
            }),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, EvInner> {
        // A panic elsewhere while holding the lock leaves a consistent queue: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Room for more events; when there is none the driver's waker is registered for when there is.
    pub(crate) fn room(&self, cx: &Context<'_>) -> usize {
        let mut q = self.lock();
        if !q.receiver_alive {
            return usize::MAX;
        }
        let room = self.capacity.saturating_sub(q.buf.len());
        if room == 0 {
            q.producer = Some(cx.waker().clone());
        }
        room
    }

    /// Moves the session's events into the buffer while there is room (all of them at once when the
    /// application has taken everything: the buffers are swapped, no event is copied), then `inspect`s
    /// each moved one by reference. Returns whether the session ran dry.
    pub(crate) fn push_from(&self, s: &mut Session, mut inspect: impl FnMut(&Event)) -> bool {
        let mut q = self.lock();
        if !q.receiver_alive {
            // Nobody listens: the events end here.
            while let Some(e) = s.poll_event() {
                inspect(&e);
            }
            return true;
        }
        let before = q.buf.len();
        let dry = s.drain_events(&mut q.buf, self.capacity.saturating_sub(before));
        if q.buf.len() > before {
            q.buf.range(before..).for_each(&mut inspect);
            if let Some(w) = q.consumer.take() {
                w.wake();
            }
        }
        dry
    }

    /// Like [`push_from`](Self::push_from), each event passing through `route` first: what it keeps goes
    /// to the application, what it takes (a response for a pending request) does not, and takes no room.
    /// One event at a time: used only while requests are pending.
    pub(crate) fn push_routed(
        &self,
        s: &mut Session,
        mut route: impl FnMut(Event) -> Option<Event>,
        mut inspect: impl FnMut(&Event),
    ) -> bool {
        let mut q = self.lock();
        let alive = q.receiver_alive;
        let mut pushed = false;
        let dry = loop {
            if alive && q.buf.len() >= self.capacity {
                break false;
            }
            let Some(e) = s.poll_event() else { break true };
            let Some(e) = route(e) else { continue };
            inspect(&e);
            if alive {
                q.buf.push_back(e);
                pushed = true;
            }
        };
        if pushed && let Some(w) = q.consumer.take() {
            w.wake();
        }
        dry
    }

    pub(crate) fn finish(&self) {
        let mut q = self.lock();
        q.finished = true;
        if let Some(w) = q.consumer.take() {
            w.wake();
        }
    }
}

/// The stream of [`Event`]s of a client: state changes, received messages, message outcomes.
///
/// Keep polling it (or drop it): while its buffer is full the client stops reading from the socket.
/// It ends after the client is closed or has failed.
pub struct Events {
    shared: Arc<Shared>,
    local: VecDeque<Event>,
}

impl Events {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, local: VecDeque::new() }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("buffered", &self.local.len()).finish()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        if let Some(e) = this.local.pop_front() {
            return Poll::Ready(Some(e));
        }
        let mut q = this.shared.events.lock();
        std::mem::swap(&mut q.buf, &mut this.local);
        if let Some(e) = this.local.pop_front() {
            if let Some(w) = q.producer.take() {
                w.wake();
            }
            return Poll::Ready(Some(e));
        }
        if q.finished {
            return Poll::Ready(None);
        }
        q.consumer = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut q = self.shared.events.lock();
        q.receiver_alive = false;
        q.buf.clear();
        if let Some(w) = q.producer.take() {
            w.wake();
        }
    }
}
