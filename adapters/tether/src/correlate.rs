//! The application's correlation function: which inbound message answers (acknowledges) which tracked
//! message or request. Set on the builder ([`ClientBuilder::correlate`], or
//! [`ClientBuilder::correlate_json`] with the `json` feature); the driver applies it to every inbound
//! data message, outside the session lock, and reports a match to the core as
//! [`Frame::Correlated`]. The rules are on [`Request`](crate::Request).

use std::sync::Arc;

use tether_core::{AckConfig, AckKey, Frame, Message};

use crate::builder::ClientBuilder;

/// The application's function: the key an inbound message answers, if any.
pub(crate) type CorrelateFn = dyn Fn(&Message) -> Option<AckKey> + Send + Sync;

/// The correlation function, shared by the builder, the configuration, the driver and the client.
#[derive(Clone)]
pub(crate) struct Correlation {
    f: Arc<CorrelateFn>,
    /// With the JSON correlation: the field path, where `request_json` puts the ids it generates.
    pub(crate) json_path: Option<Arc<[String]>>,
}

impl std::fmt::Debug for Correlation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlation").field("json_path", &self.json_path).finish_non_exhaustive()
    }
}

impl Correlation {
    pub(crate) fn new(f: Arc<CorrelateFn>, json_path: Option<Arc<[String]>>) -> Self {
        Self { f, json_path }
    }

    /// The frame for inbound data message `m`: [`Frame::Correlated`] if `correlation` finds a key in it.
    #[inline]
    pub(crate) fn frame(correlation: Option<&Correlation>, m: Message) -> Frame {
        match correlation.and_then(|c| (c.f)(&m)) {
            Some(key) => Frame::Correlated { key, message: m },
            None => Frame::Message(m),
        }
    }
}

impl ClientBuilder {
    /// Tracked messages and requests: the window (how many may wait for their acknowledgement: `send_tracked`
    /// and `request` wait for room beyond it) and the ack timeout (the per-request timeout). Default:
    /// [`AckConfig::default`] (1024 messages, 1 MiB, no timeout).
    pub fn acks(mut self, acks: AckConfig) -> Self {
        self.core.acks = acks;
        self
    }

    /// Installs the correlation function: for an inbound data message, the key of the tracked message
    /// or request it answers, if any (a JSON-RPC response's `id`, an ack's order id). It runs on the
    /// driver task for every inbound data message, so keep it cheap and never block. Default: none
    /// (tracked messages are then acknowledged only by [`Client::ack`](crate::Client::ack)).
    ///
    /// ```
    /// use tether::{AckKey, ClientBuilder, Message};
    /// // The server answers "ack 17" for message 17.
    /// let builder = ClientBuilder::new("wss://example.com/orders").correlate(|m: &Message| {
    ///     let id = m.as_text()?.strip_prefix("ack ")?;
    ///     Some(AckKey::from(id.parse::<u64>().ok()?))
    /// });
    /// ```
    pub fn correlate<F>(mut self, f: F) -> Self
    where
        F: Fn(&Message) -> Option<AckKey> + Send + Sync + 'static,
    {
        self.correlation = Some(Correlation::new(Arc::new(f), None));
        self
    }
}
