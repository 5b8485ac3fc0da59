//! The load generator: a fixed number of operations, run by a fixed number of concurrent tasks,
//! stopped early by a deadline. Every operation's latency is kept; percentiles come from the
//! sorted list (nearest rank), so no histogram crate is needed.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// How much work one workload does: at most `requests` operations, `concurrency` at a time,
/// and none started after `max_time`.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub requests: usize,
    pub concurrency: usize,
    pub max_time: Duration,
}

/// What one operation ended with.
#[derive(Debug)]
pub enum Outcome {
    /// The expected answer (HTTP status, or a committed transaction), with the bytes of body
    /// received (0 for a transaction).
    Ok { bytes: usize },
    /// Anything else: a short kind used to group failures (`HTTP 500`, `transport`) and a detail
    /// (the body or the error chain) kept for the first failure of each kind.
    Failed { kind: String, detail: String },
}

/// The measurements of one workload.
#[derive(Debug, Default)]
pub struct Sample {
    /// Operations that finished (successfully or not).
    pub done: usize,
    /// Operations that were asked for.
    pub planned: usize,
    /// `true` when the deadline stopped the workload before `planned`.
    pub timed_out: bool,
    /// From the first operation's start to the last one's end.
    pub wall: Duration,
    /// Every finished operation's latency, sorted.
    pub latencies: Vec<Duration>,
    /// Failures by kind: (count, first detail).
    pub failures: BTreeMap<String, (usize, String)>,
    /// Body bytes received by the successful operations.
    pub bytes: u64,
}

impl Sample {
    /// Mean body size of a successful answer.
    pub fn mean_bytes(&self) -> u64 {
        let ok = self.done - self.failed();
        if ok == 0 { 0 } else { self.bytes / ok as u64 }
    }

    pub fn failed(&self) -> usize {
        self.failures.values().map(|(n, _)| n).sum()
    }

    /// Finished operations per second of wall time.
    pub fn rate(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 { self.done as f64 / secs } else { 0.0 }
    }

    /// Nearest-rank percentile, `p` in (0, 100].
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        Some(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }
}

#[derive(Default)]
struct Local {
    latencies: Vec<Duration>,
    bytes: u64,
    failures: BTreeMap<String, (usize, String)>,
    timed_out: bool,
}

fn record_failure(failures: &mut BTreeMap<String, (usize, String)>, kind: String, detail: String) {
    failures.entry(kind).and_modify(|(n, _)| *n += 1).or_insert((1, detail));
}

/// Runs `op(0)`, `op(1)`, … `op(plan.requests - 1)` on `plan.concurrency` tasks, each task taking
/// the next index as soon as its previous operation finished.
pub async fn run<F, Fut>(plan: Plan, op: F) -> Sample
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + plan.max_time;
    let mut tasks = JoinSet::new();
    for _ in 0..plan.concurrency.clamp(1, plan.requests.max(1)) {
        let (op, next) = (Arc::clone(&op), Arc::clone(&next));
        let requests = plan.requests;
        tasks.spawn(async move {
            let mut local =
                Local { latencies: Vec::with_capacity((requests / 8 + 1).min(1 << 16)), ..Local::default() };
            loop {
                if Instant::now() >= deadline {
                    local.timed_out = next.load(Ordering::Relaxed) < requests;
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let began = Instant::now();
                let outcome = op(i).await;
                local.latencies.push(began.elapsed());
                match outcome {
                    Outcome::Ok { bytes } => local.bytes += bytes as u64,
                    Outcome::Failed { kind, detail } => record_failure(&mut local.failures, kind, detail),
                }
            }
            local
        });
    }
    let mut sample = Sample { planned: plan.requests, ..Sample::default() };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(local) => {
                sample.latencies.extend(local.latencies);
                sample.timed_out |= local.timed_out;
                sample.bytes += local.bytes;
                for (kind, (n, detail)) in local.failures {
                    sample.failures.entry(kind).and_modify(|(m, _)| *m += n).or_insert((n, detail));
                }
            }
            Err(e) => record_failure(&mut sample.failures, "load task panicked".into(), e.to_string()),
        }
    }
    sample.wall = start.elapsed();
    sample.done = sample.latencies.len();
    sample.latencies.sort_unstable();
    sample
}

/// Sends one HTTP request and reads the whole body; `Ok` when the status is `expect`.
pub async fn http(request: reqwest::RequestBuilder, expect: u16) -> Outcome {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(body) if status == expect => Outcome::Ok { bytes: body.len() },
                Ok(body) => Outcome::Failed {
                    kind: format!("HTTP {status}"),
                    detail: String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned(),
                },
                Err(e) => Outcome::Failed { kind: "reading the body failed".into(), detail: chain(&e) },
            }
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect error"
            } else {
                "transport error"
            };
            Outcome::Failed { kind: kind.into(), detail: chain(&e) }
        }
    }
}

/// An error with its sources, `a: b: c`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: &[u64]) -> Sample {
        let mut latencies: Vec<Duration> = ms.iter().map(|m| Duration::from_millis(*m)).collect();
        latencies.sort_unstable();
        Sample { done: latencies.len(), latencies, ..Sample::default() }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = sample(&(1..=100).collect::<Vec<_>>());
        assert_eq!(s.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(s.percentile(95.0), Some(Duration::from_millis(95)));
        assert_eq!(s.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(s.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(sample(&[7]).percentile(50.0), Some(Duration::from_millis(7)));
        assert_eq!(sample(&[]).percentile(50.0), None);
    }

    #[tokio::test]
    async fn runs_every_index_once_and_counts_failures() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let plan = Plan { requests: 50, concurrency: 4, max_time: Duration::from_secs(30) };
        let s = run(plan, move |i| {
            log.lock().unwrap().push(i);
            async move {
                if i % 10 == 0 {
                    Outcome::Failed { kind: "odd".into(), detail: i.to_string() }
                } else {
                    Outcome::Ok { bytes: 2 }
                }
            }
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert_eq!((s.done, s.failed(), s.timed_out, s.mean_bytes()), (50, 5, false, 2));
    }

    #[tokio::test]
    async fn the_deadline_stops_new_operations() {
        let plan = Plan { requests: 1_000_000, concurrency: 2, max_time: Duration::from_millis(50) };
        let s = run(plan, |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Outcome::Ok { bytes: 0 }
        })
        .await;
        assert!(s.timed_out && s.done < 1_000, "{} done", s.done);
    }
}
