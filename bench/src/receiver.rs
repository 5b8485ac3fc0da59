//! A minimal webhook receiver on a free loopback port: HTTP/1.1 (keep-alive) through hyper on
//! the bench's own runtime. It reads each body, answers `200` with no body, and counts the
//! distinct `webhook-id`s, keeping each id's first arrival time and body. No signature check:
//! it stands for the fastest receiver there could be, so that the time measured is the sender's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// One delivery as received: the headers (all of them) and the body.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What arrived since the last [`Receiver::reset`].
#[derive(Debug, Default)]
pub struct Tally {
    /// Each distinct `webhook-id`: when it first arrived (body read) and its body.
    pub first_arrival: HashMap<String, (Instant, Bytes)>,
    /// Every request, repeats included.
    pub requests: u64,
    /// Requests without a `webhook-id` header.
    pub without_id: u64,
    /// The first request, kept whole (the baseline copies its headers and body).
    pub sample: Option<Received>,
}

impl Tally {
    pub fn distinct(&self) -> usize {
        self.first_arrival.len()
    }

    /// Requests that repeated an id already seen.
    pub fn repeats(&self) -> u64 {
        self.requests - self.without_id - self.distinct() as u64
    }

    /// The first and the last first-arrival.
    pub fn span(&self) -> Option<(Instant, Instant)> {
        let mut times = self.first_arrival.values().map(|(at, _)| *at);
        let first = times.next()?;
        Some(times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t))))
    }

    /// Mean body size over the distinct deliveries.
    pub fn mean_body(&self) -> u64 {
        let total: u64 = self.first_arrival.values().map(|(_, b)| b.len() as u64).sum();
        total.checked_div(self.first_arrival.len() as u64).unwrap_or(0)
    }
}

struct State {
    tally: Mutex<Tally>,
    /// The number of distinct ids, for waiters.
    distinct: watch::Sender<usize>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, headers: HeaderMap, body: Bytes, arrived: Instant) {
        let mut tally = self.lock();
        tally.requests += 1;
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if tally.sample.is_none() {
            tally.sample = Some(Received { headers, body: body.clone() });
        }
        match id {
            None => tally.without_id += 1,
            Some(id) => {
                tally.first_arrival.entry(id).or_insert((arrived, body));
            }
        }
        // Published under the lock: two requests publishing after it could do so out of order.
        self.distinct.send_replace(tally.distinct());
    }
}

/// The running receiver; stops (connections included) when dropped.
pub struct Receiver {
    pub url: String,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Result<Self> {
        let listener =
            TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.context("binding the receiver")?;
        let addr = listener.local_addr().context("the receiver's address")?;
        let state = Arc::new(State { tally: Mutex::new(Tally::default()), distinct: watch::channel(0).0 });
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            // Dropped with this task when the receiver is: every connection ends with it.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors or the like: let connections end before trying again.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            state.record(parts.headers, body, Instant::now());
                            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                        }
                    });
                    let _ =
                        http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
                });
                // Reap finished connections so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self { url: format!("http://{addr}/hook"), state, accept })
    }

    /// Forgets everything received so far.
    pub fn reset(&self) {
        let mut tally = self.state.lock();
        *tally = Tally::default();
        self.state.distinct.send_replace(0);
    }

    /// Waits until `n` distinct ids have arrived or `timeout` passed; answers whether they did.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut distinct = self.state.distinct.subscribe();
        matches!(tokio::time::timeout(timeout, distinct.wait_for(|d| *d >= n)).await, Ok(Ok(_)))
    }

    /// What arrived since the last reset (and resets).
    pub fn take(&self) -> Tally {
        let mut tally = self.state.lock();
        self.state.distinct.send_replace(0);
        std::mem::take(&mut *tally)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_distinct_ids_and_repeats() {
        let receiver = Receiver::start().await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for id in [Some("evt_1"), Some("evt_2"), Some("evt_1"), None] {
            let mut request = client.post(&receiver.url).body("{\"a\":1}");
            if let Some(id) = id {
                request = request.header("webhook-id", id);
            }
            assert_eq!(request.send().await.unwrap().status(), 200);
        }
        assert!(receiver.wait_for(2, Duration::from_secs(5)).await);
        let tally = receiver.take();
        assert_eq!((tally.distinct(), tally.requests, tally.repeats(), tally.without_id), (2, 4, 1, 1));
        assert_eq!(tally.mean_body(), 7);
        assert!(!receiver.wait_for(1, Duration::from_millis(50)).await, "take() starts the count again");
    }
}
