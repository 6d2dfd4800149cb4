//! Racing the addresses of a host (see `eyeballs.rs` for the schedule): the connects run side by
//! side in the attempt's future, the first to succeed wins and the others are dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::poll_fn;
use futures::stream::FuturesUnordered;

use super::eyeballs::Eyeballs;
use crate::runtime::Runtime;

/// Connects to the first of `addrs` that answers; on failure, every address's error.
pub(crate) async fn race<R: Runtime>(
    rt: &R,
    addrs: Vec<SocketAddr>,
    delay: Duration,
) -> Result<(R::Tcp, SocketAddr), String> {
    if let [one] = addrs[..] {
        // The common case costs nothing more than a connect.
        return rt.connect(one).await.map(|s| (s, one)).map_err(|e| format!("{one}: {e}"));
    }
    let mut schedule = Eyeballs::new(addrs, delay, rt.now());
    let mut attempts = FuturesUnordered::new();
    let mut timer: Option<(R::Timer, Instant)> = None;
    let mut fired: Option<Instant> = None;
    let mut errors: Vec<String> = Vec::new();
    poll_fn(|cx| {
        loop {
            // A timer that fired means its deadline has come, whatever the clock's rounding says.
            let now = fired.take().map_or_else(|| rt.now(), |at| rt.now().max(at));
            while let Some(addr) = schedule.poll_start(now) {
                tracing::debug!(%addr, "TCP attempt");
                let connect = rt.connect(addr);
                attempts.push(async move { (addr, connect.await) });
            }
            match attempts.poll_next_unpin(cx) {
                Poll::Ready(Some((addr, Ok(tcp)))) => return Poll::Ready(Ok((tcp, addr))),
                Poll::Ready(Some((addr, Err(e)))) => {
                    tracing::debug!(%addr, error = %e, "TCP attempt failed");
                    errors.push(format!("{addr}: {e}"));
                    schedule.on_failed(rt.now());
                    continue;
                }
                Poll::Ready(None) | Poll::Pending => {}
            }
            if schedule.is_lost() {
                return Poll::Ready(Err(errors.join("; ")));
            }
            let Some(at) = schedule.poll_timeout() else { return Poll::Pending };
            match &mut timer {
                Some((t, armed)) if *armed != at => {
                    R::reset_timer(t, at);
                    *armed = at;
                }
                Some(_) => {}
                None => timer = Some((rt.timer(at), at)),
            }
            if let Some((t, _)) = &mut timer
                && Pin::new(t).poll(cx).is_ready()
            {
                fired = Some(at);
                continue;
            }
            return Poll::Pending;
        }
    })
    .await
}
