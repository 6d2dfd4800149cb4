//! The three runtimes, and the raw baseline on each: tokio-tungstenite on tokio, async-tungstenite on
//! smol (async-net) and on async-std. Every run, Tether's and raw's, is a task on the runtime's own
//! executor (tokio: one current-thread runtime; smol and async-std: their executors, one thread each when
//! pinned to one CPU).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use futures::{FutureExt, Sink, Stream};
use tether::{Client, ClientConfig, Events};

/// A WebSocket as the raw runs use it.
pub trait WsIo: Sink<WsMessage, Error = WsError> + Stream<Item = Result<WsMessage, WsError>> + Unpin + Send {}
impl<T: Sink<WsMessage, Error = WsError> + Stream<Item = Result<WsMessage, WsError>> + Unpin + Send> WsIo for T {}

pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Tokio,
    Smol,
    AsyncStd,
}

impl Rt {
    pub const ALL: [Rt; 3] = [Rt::Tokio, Rt::Smol, Rt::AsyncStd];

    pub fn name(self) -> &'static str {
        match self {
            Rt::Tokio => "tokio",
            Rt::Smol => "smol",
            Rt::AsyncStd => "async-std",
        }
    }

    pub fn raw_name(self) -> &'static str {
        match self {
            Rt::Tokio => "tokio-tungstenite",
            Rt::Smol | Rt::AsyncStd => "async-tungstenite",
        }
    }

    /// Runs `fut` to completion as a task of this runtime's executor.
    pub fn block_on<T: Send + 'static>(self, fut: impl Future<Output = T> + Send + 'static) -> T {
        match self {
            Rt::Tokio => {
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(fut)
            }
            Rt::Smol => smol::block_on(smol::spawn(fut)),
            Rt::AsyncStd => async_std::task::block_on(async_std::task::spawn(fut)),
        }
    }

    pub fn spawn<T: Send + 'static>(self, fut: impl Future<Output = T> + Send + 'static) -> BoxFut<T> {
        match self {
            Rt::Tokio => Box::pin(tokio::spawn(fut).map(|r| r.expect("task panicked"))),
            Rt::Smol => Box::pin(smol::spawn(fut)),
            Rt::AsyncStd => Box::pin(async_std::task::spawn(fut)),
        }
    }

    pub async fn sleep(self, d: Duration) {
        match self {
            Rt::Tokio => tokio::time::sleep(d).await,
            Rt::Smol => {
                smol::Timer::after(d).await;
            }
            Rt::AsyncStd => async_std::task::sleep(d).await,
        }
    }

    /// A Tether client on this runtime.
    pub fn tether(self, cfg: ClientConfig) -> (Client, Events) {
        let started = match self {
            Rt::Tokio => tether_tokio::connect(cfg),
            Rt::Smol => tether_smol::connect(cfg),
            Rt::AsyncStd => tether_async_std::connect(cfg),
        };
        started.expect("called inside the runtime")
    }
}

/// Raw tokio-tungstenite, `TCP_NODELAY` on (as Tether sets it).
pub async fn raw_tokio(url: &str, cfg: Option<WebSocketConfig>) -> impl WsIo + use<> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, cfg, true).await.expect("raw connect");
    ws
}

fn addr(url: &str) -> String {
    let rest = url.strip_prefix("ws://").expect("ws:// URL");
    rest.split('/').next().expect("host").to_owned()
}

/// Raw async-tungstenite over async-net (smol's networking).
pub async fn raw_smol(url: &str, cfg: Option<WebSocketConfig>) -> impl WsIo + use<> {
    let tcp = async_net::TcpStream::connect(addr(url)).await.expect("tcp connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (ws, _) = async_tungstenite::client_async_with_config(url, tcp, cfg).await.expect("raw connect");
    ws
}

/// Raw async-tungstenite over async-std's TCP.
pub async fn raw_async_std(url: &str, cfg: Option<WebSocketConfig>) -> impl WsIo + use<> {
    let tcp = async_std::net::TcpStream::connect(addr(url)).await.expect("tcp connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (ws, _) = async_tungstenite::client_async_with_config(url, tcp, cfg).await.expect("raw connect");
    ws
}

/// Connects the raw baseline of `$rt` to `$url` as `$ws` and evaluates `$body` (generic code,
/// monomorphised per runtime: no dynamic dispatch in the raw runs).
macro_rules! with_raw {
    ($rt:expr, $url:expr, |$ws:ident| $body:expr) => {
        match $rt {
            $crate::rt::Rt::Tokio => {
                let $ws = $crate::rt::raw_tokio(&$url, None).await;
                $body
            }
            $crate::rt::Rt::Smol => {
                let $ws = $crate::rt::raw_smol(&$url, None).await;
                $body
            }
            $crate::rt::Rt::AsyncStd => {
                let $ws = $crate::rt::raw_async_std(&$url, None).await;
                $body
            }
        }
    };
}
pub(crate) use with_raw;
