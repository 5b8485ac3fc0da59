//! API requests counted per account and UTC day, for usage reports. Counting must cost the
//! request path next to nothing and never wait for the database (SQLite has one writer, which
//! the trigger path needs), so a request only adds 1 to a counter in memory; the server flushes
//! every counter to the store in one batch every few seconds and once more on shutdown.
//!
//! A crash (or `kill -9`) loses what was counted since the last flush: at most one flush
//! interval of requests. A flush that fails puts its counts back, to go with the next one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use partnerd_domain::keys::KeyOwner;
use partnerd_domain::ports::{Clock, CountedAccount, InfraError, RequestCount, RequestCountRepository};
use time::{Date, UtcOffset};

type Counters = HashMap<(CountedAccount, Date), u64>;

/// The process's request counters, shared by every HTTP worker thread.
pub struct RequestCounter {
    pending: Mutex<Counters>,
    store: Arc<dyn RequestCountRepository>,
    clock: Arc<dyn Clock>,
}

impl RequestCounter {
    pub fn new(store: Arc<dyn RequestCountRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { pending: Mutex::new(HashMap::new()), store, clock }
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        // A panic elsewhere while the lock was held cannot leave a counter half-written: keep going.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one request of `owner` on today's UTC date. Worker keys are not counted.
    pub fn record(&self, owner: &KeyOwner) {
        let Some(account) = CountedAccount::of(owner) else { return };
        let day = self.clock.now().to_offset(UtcOffset::UTC).date();
        *self.counters().entry((account, day)).or_default() += 1;
    }

    /// Requests counted and not yet flushed.
    pub fn pending(&self) -> u64 {
        self.counters().values().sum()
    }

    /// Hands every counter to the store in one batch and answers how many requests it held.
    /// Requests counted meanwhile wait for the next flush. On failure the batch's counts are
    /// put back, so the next flush offers them again. Do not cancel a flush half-way (drop its
    /// future): the counts it took would be lost.
    pub async fn flush(&self) -> Result<u64, InfraError> {
        let taken = std::mem::take(&mut *self.counters());
        if taken.is_empty() {
            return Ok(0);
        }
        let batch: Vec<RequestCount> =
            taken.into_iter().map(|((account, day), requests)| RequestCount { account, day, requests }).collect();
        let requests = batch.iter().map(|c| c.requests).sum();
        if let Err(error) = self.store.add(&batch).await {
            let mut pending = self.counters();
            for c in batch {
                *pending.entry((c.account, c.day)).or_default() += c.requests;
            }
            return Err(error);
        }
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use partnerd_domain::ids::{DistributorId, PartnerId, WorkerId};
    use partnerd_domain::ports::MockRequestCountRepository;
    use partnerd_domain::testing::{FixedClock, SequentialIds};
    use time::macros::{date, datetime};

    use super::*;

    /// What a store made by [`recording_store`] accepted; it refuses batches while `failing`.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<Vec<RequestCount>>>,
        failing: AtomicBool,
    }

    fn recording_store() -> (MockRequestCountRepository, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let mut store = MockRequestCountRepository::new();
        let seen = recorder.clone();
        store.expect_add().returning(move |batch| {
            if seen.failing.load(Ordering::SeqCst) {
                return Err(InfraError::new("database is down"));
            }
            seen.batches.lock().unwrap().push(batch.to_vec());
            Ok(())
        });
        (store, recorder)
    }

    impl Recorder {
        /// Every accepted count, summed per counter.
        fn sums(&self) -> HashMap<(CountedAccount, Date), u64> {
            let mut sums = HashMap::new();
            for c in self.batches.lock().unwrap().iter().flatten() {
                *sums.entry((c.account.clone(), c.day)).or_default() += c.requests;
            }
            sums
        }
    }

    struct Fixture {
        counter: RequestCounter,
        store: Arc<Recorder>,
        clock: Arc<FixedClock>,
        partner: KeyOwner,
        distributor: KeyOwner,
    }

    fn fixture() -> Fixture {
        let ids = SequentialIds::default();
        let (store, recorder) = recording_store();
        let clock = Arc::new(FixedClock::at(datetime!(2026-04-03 10:00 UTC)));
        Fixture {
            counter: RequestCounter::new(Arc::new(store), clock.clone()),
            store: recorder,
            clock,
            partner: KeyOwner::Partner(PartnerId::generate(&ids)),
            distributor: KeyOwner::Distributor(DistributorId::generate(&ids)),
        }
    }

    fn account(owner: &KeyOwner) -> CountedAccount {
        CountedAccount::of(owner).unwrap()
    }

    #[tokio::test]
    async fn requests_are_counted_per_account_and_flushed_in_one_batch() {
        let f = fixture();
        let worker = KeyOwner::Worker(WorkerId::generate(&SequentialIds::default()));
        for _ in 0..3 {
            f.counter.record(&f.partner);
        }
        f.counter.record(&f.distributor);
        f.counter.record(&worker);
        assert_eq!(f.counter.pending(), 4, "a worker's request is not counted");
        assert_eq!(f.counter.flush().await.unwrap(), 4);
        assert_eq!(f.counter.pending(), 0);
        let batches = f.store.batches.lock().unwrap().clone();
        assert_eq!(batches.len(), 1, "one batch per flush");
        let today = date!(2026 - 04 - 03);
        let sums = f.store.sums();
        assert_eq!(sums.len(), 2, "one counter per account and day: {sums:?}");
        assert_eq!(sums[&(account(&f.partner), today)], 3);
        assert_eq!(sums[&(account(&f.distributor), today)], 1);
        // Nothing pending: a flush sends nothing at all.
        assert_eq!(f.counter.flush().await.unwrap(), 0);
        assert_eq!(f.store.batches.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_request_counts_on_its_utc_day_across_midnight() {
        let f = fixture();
        f.clock.set(datetime!(2026-04-30 23:59:59.999 UTC));
        f.counter.record(&f.partner);
        f.counter.record(&f.partner);
        f.clock.set(datetime!(2026-05-01 00:00 UTC));
        f.counter.record(&f.partner);
        // 01:30 in UTC+2 is still 23:30 on 30 April in UTC.
        f.clock.set(datetime!(2026-05-01 01:30 +02:00));
        f.counter.record(&f.partner);
        f.counter.flush().await.unwrap();
        let sums = f.store.sums();
        assert_eq!(sums[&(account(&f.partner), date!(2026 - 04 - 30))], 3);
        assert_eq!(sums[&(account(&f.partner), date!(2026 - 05 - 01))], 1);
        assert_eq!(sums.len(), 2);
    }

    #[tokio::test]
    async fn a_failed_flush_puts_its_counts_back_for_the_next_one() {
        let f = fixture();
        for _ in 0..5 {
            f.counter.record(&f.partner);
        }
        f.store.failing.store(true, Ordering::SeqCst);
        assert!(f.counter.flush().await.is_err());
        assert_eq!(f.counter.pending(), 5, "nothing lost");
        // Counted while the database was down, on the next day too.
        f.counter.record(&f.partner);
        f.clock.set(datetime!(2026-04-04 00:00 UTC));
        f.counter.record(&f.distributor);
        assert!(f.counter.flush().await.is_err());
        assert_eq!(f.counter.pending(), 7);
        f.store.failing.store(false, Ordering::SeqCst);
        assert_eq!(f.counter.flush().await.unwrap(), 7);
        assert_eq!(f.counter.pending(), 0);
        let sums = f.store.sums();
        assert_eq!(sums[&(account(&f.partner), date!(2026 - 04 - 03))], 6, "each request once, none twice");
        assert_eq!(sums[&(account(&f.distributor), date!(2026 - 04 - 04))], 1);
        assert_eq!(f.store.batches.lock().unwrap().len(), 1, "only the successful flush reached the store");
    }

    #[tokio::test]
    async fn requests_counted_during_a_failing_flush_are_kept_too() {
        let ids = SequentialIds::default();
        let partner = KeyOwner::Partner(PartnerId::generate(&ids));
        let clock = Arc::new(FixedClock::at(datetime!(2026-04-03 10:00 UTC)));
        let counter = Arc::new(std::sync::OnceLock::<Arc<RequestCounter>>::new());
        let mut store = MockRequestCountRepository::new();
        // While the store is failing the first batch, two more requests arrive.
        let (during, owner) = (counter.clone(), partner.clone());
        store.expect_add().times(1).withf(|batch| batch.len() == 1 && batch[0].requests == 1).returning(move |_| {
            let counter = during.get().unwrap();
            counter.record(&owner);
            counter.record(&owner);
            Err(InfraError::new("connection reset"))
        });
        store.expect_add().times(1).withf(|batch| batch.len() == 1 && batch[0].requests == 3).returning(|_| Ok(()));
        let real = Arc::new(RequestCounter::new(Arc::new(store), clock));
        assert!(counter.set(real.clone()).is_ok());
        real.record(&partner);
        assert!(real.flush().await.is_err());
        assert_eq!(real.pending(), 3);
        assert_eq!(real.flush().await.unwrap(), 3, "the put-back count and the new ones merge into one counter");
    }
}
