//! Webhook endpoints, the outbox's deliveries and the dispatchers' queue, on both back-ends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use partnerd_domain::account::AccountStatus;
use partnerd_domain::event::{Event, EventType};
use partnerd_domain::ids::{DistributorId, EventId, PartnerId};
use partnerd_domain::ports::{
    ClaimedDelivery, CustomerRepository, DeliveryQueue, ManagedPartnerRepository, Page, PartnerTransition, Resend,
    WebhookRepository,
};
use partnerd_domain::webhook::{
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, Recipient, WebhookEndpoint, WebhookSecret, WebhookUrl,
};
use partnerd_store::{DbConfig, Store};
use time::{Duration, OffsetDateTime};

use crate::runs::customer;
use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    the_outbox_queues_a_delivery_for_each_enabled_endpoint_an_event_is_addressed_to,
    an_event_whose_change_fails_queues_no_delivery,
    a_claim_carries_everything_an_attempt_needs_and_hides_the_delivery_until_its_lease_ends,
    concurrent_claimers_never_share_a_delivery_and_together_take_them_all,
    finish_records_only_under_the_claims_own_lease,
    an_expired_lease_makes_the_delivery_due_again_and_numbering_goes_on,
    a_gone_endpoint_is_disabled_its_open_deliveries_fail_and_nothing_more_is_claimed,
    resend_restarts_the_schedule_and_creates_missing_deliveries,
    a_resend_takes_a_claimed_delivery_over,
    upsert_keeps_the_secret_and_creation_time_and_rotation_keeps_the_previous_secret,
    concurrent_first_puts_create_one_endpoint,
    the_log_pages_newest_first_with_filters_a_cursor_and_attempts,
    deleting_an_endpoint_removes_its_deliveries_and_attempts_only,
);

const URL: &str = "https://hooks.acmemsp.example/partnerd";

fn at(minutes: i64) -> OffsetDateTime {
    NOW + Duration::minutes(minutes)
}

fn partner_of(p: &PartnerId) -> Recipient {
    Recipient::Partner(p.clone())
}

fn secret(tag: &str) -> WebhookSecret {
    WebhookSecret::from_stored(format!("whsec_{tag}"))
}

async fn configure(ctx: &Ctx, recipient: &Recipient, tag: &str) -> WebhookEndpoint {
    let url = WebhookUrl::parse(URL, false).unwrap();
    ctx.store.upsert_endpoint(recipient, &url, &secret(tag), NOW).await.unwrap()
}

/// An event of `kind` at `when`, addressed to the partner and (optionally) the distributor.
fn event(
    ctx: &Ctx,
    kind: EventType,
    partner: Option<&PartnerId>,
    dist: Option<&DistributorId>,
    when: OffsetDateTime,
) -> Event {
    let mut e = Event::new(EventId::generate(ctx.ids()), kind, when).with("n", 1).with("name", "Contoso \"Ltd\"");
    e.to_partner = partner.cloned();
    e.to_distributor = dist.cloned();
    e
}

/// Records `events` in the outbox the way a change does: in the transaction of a customer insert
/// (of a throwaway customer of `owner`).
async fn record(ctx: &Ctx, owner: &PartnerId, events: &[Event]) {
    let c = customer(ctx, owner, "Outbox Carrier");
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), events).await.unwrap();
}

async fn log(ctx: &Ctx, recipient: &Recipient) -> Vec<Delivery> {
    let page = ctx.store.deliveries(recipient, &DeliveryFilter::default(), &Page::default()).await.unwrap();
    assert!(!page.has_more);
    page.items
}

fn ids_of(deliveries: &[Delivery]) -> Vec<EventId> {
    deliveries.iter().map(|d| d.event_id.clone()).collect()
}

fn sorted(mut ids: Vec<EventId>) -> Vec<EventId> {
    ids.sort();
    ids
}

/// What a dispatcher records after an attempt made at `when`.
fn attempt(
    n: u32,
    when: OffsetDateTime,
    http: Option<u16>,
    status: DeliveryStatus,
    next: Option<OffsetDateTime>,
) -> DeliveryAttempt {
    DeliveryAttempt {
        attempt: n,
        attempted_at: when,
        http_status: http,
        latency_ms: 40 + n,
        error: (status != DeliveryStatus::Delivered).then(|| format!("attempt {n} failed")),
        status,
        next_retry_at: next,
    }
}

async fn claim(ctx: &Ctx, lease: &str, now: OffsetDateTime, max: u32) -> Vec<ClaimedDelivery> {
    ctx.store.claim(lease, now, now + Duration::minutes(5), max).await.unwrap()
}

/// Rows of `table` for `recipient`, read past the repository.
async fn count_rows(ctx: &Ctx, table: &str, recipient: &Recipient) -> i64 {
    use sea_orm::ConnectionTrait;
    let raw = sea_orm::Database::connect(ctx.db.url()).await.unwrap();
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE recipient = '{}'", recipient.id());
    let row = raw.query_one_raw(sea_orm::Statement::from_string(raw.get_database_backend(), sql)).await.unwrap();
    let n: i64 = row.unwrap().try_get_by_index(0).unwrap();
    raw.close().await.unwrap();
    n
}

async fn the_outbox_queues_a_delivery_for_each_enabled_endpoint_an_event_is_addressed_to(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let a = ctx.partner(Some(&d.id)).await;
    let quiet = ctx.partner(Some(&d.id)).await;
    let (ra, rd, rq) = (partner_of(&a.id), Recipient::Distributor(d.id.clone()), partner_of(&quiet.id));
    configure(ctx, &ra, "a").await;
    configure(ctx, &rd, "d").await;
    let created = event(ctx, EventType::CustomerCreated, Some(&a.id), None, at(0));
    let threshold = event(ctx, EventType::UsageThresholdReached, Some(&a.id), Some(&d.id), at(1));
    let not_configured = event(ctx, EventType::CustomerCreated, Some(&quiet.id), None, at(2));
    let quiet_threshold = event(ctx, EventType::UsageThresholdReached, Some(&quiet.id), Some(&d.id), at(3));
    record(ctx, &a.id, &[created.clone(), threshold.clone(), not_configured.clone(), quiet_threshold.clone()]).await;
    // A suspension records its event for the distributor in the transition's transaction.
    let suspended = event(ctx, EventType::PartnerSuspended, None, Some(&d.id), at(4));
    let transition = PartnerTransition {
        partner: a.id.clone(),
        from: AccountStatus::Active,
        to: AccountStatus::Suspended,
        at: at(4),
        reason: None,
        revoke_keys: true,
        issue_key: None,
        key_events: Default::default(),
        event: suspended.clone(),
    };
    assert!(ManagedPartnerRepository::transition(&*ctx.store, &transition).await.unwrap());

    let mine = log(ctx, &ra).await;
    assert_eq!(ids_of(&mine), [threshold.id.clone(), created.id.clone()], "newest first");
    assert_eq!(
        mine[1],
        Delivery {
            event_id: created.id.clone(),
            event_type: EventType::CustomerCreated,
            occurred_at: at(0),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(at(0)),
            attempts: vec![],
        }
    );
    assert_eq!(ids_of(&log(ctx, &rd).await), [suspended.id.clone(), quiet_threshold.id, threshold.id]);
    assert!(log(ctx, &rq).await.is_empty(), "no endpoint, no delivery");
    assert_eq!(count_rows(ctx, "webhook_deliveries", &rq).await, 0);

    // A disabled endpoint gets nothing new; enabled again, it does.
    let claimed = claim(ctx, "l", at(10), 10).await;
    let first = claimed.iter().find(|c| c.recipient == ra).unwrap();
    let gone = attempt(first.attempt, at(10), Some(410), DeliveryStatus::Failed, None);
    assert!(ctx.store.finish(first, &gone, true).await.unwrap());
    let while_disabled = event(ctx, EventType::CustomerUpdated, Some(&a.id), None, at(11));
    record(ctx, &a.id, std::slice::from_ref(&while_disabled)).await;
    assert!(!ids_of(&log(ctx, &ra).await).contains(&while_disabled.id));
    configure(ctx, &ra, "ignored").await;
    let after = event(ctx, EventType::CustomerUpdated, Some(&a.id), None, at(12));
    record(ctx, &a.id, std::slice::from_ref(&after)).await;
    assert_eq!(log(ctx, &ra).await[0].event_id, after.id);
}

async fn an_event_whose_change_fails_queues_no_delivery(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    configure(ctx, &me, "p").await;
    // An update of a customer that does not exist changes nothing, so records nothing.
    let ghost = customer(ctx, &p.id, "Ghost Pty");
    let updated = event(ctx, EventType::CustomerUpdated, Some(&p.id), None, at(0));
    assert!(!ctx.store.update(&ghost, &updated).await.unwrap());
    // A batch whose second event cannot be written (its id is taken) rolls back whole.
    let first = event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(1));
    record(ctx, &p.id, std::slice::from_ref(&first)).await;
    let fresh = event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(2));
    let c = customer(ctx, &p.id, "Fabrikam Inc");
    let failed =
        CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), &[fresh.clone(), first.clone()]).await;
    assert!(failed.is_err());
    assert_eq!(ids_of(&log(ctx, &me).await), std::slice::from_ref(&first.id), "only the committed event was queued");
    assert_eq!(ctx.store.delivery(&me, &updated.id).await.unwrap(), None);
    assert_eq!(ctx.store.delivery(&me, &fresh.id).await.unwrap(), None);
    let outbox = ctx.partner_outbox().await;
    assert_eq!(outbox.iter().filter(|(t, _, _)| t != "customer.created").count(), 0, "{outbox:?}");
    assert_eq!(outbox.len(), 1);
}

async fn a_claim_carries_everything_an_attempt_needs_and_hides_the_delivery_until_its_lease_ends(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    configure(ctx, &me, "old").await;
    ctx.store.rotate_secret(&me, &secret("new"), at(0), at(60)).await.unwrap().unwrap();
    let due = event(ctx, EventType::AssessmentCompleted, Some(&p.id), None, at(0));
    let later = event(ctx, EventType::AssessmentFailed, Some(&p.id), None, at(30));
    record(ctx, &p.id, &[due.clone(), later.clone()]).await;

    let claimed = ctx.store.claim("lease-a", at(1), at(3), 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "the later event is not due yet");
    let c = &claimed[0];
    assert_eq!(
        (c.event_id.clone(), c.event_type, c.occurred_at, c.recipient.clone()),
        (due.id.clone(), EventType::AssessmentCompleted, at(0), me.clone())
    );
    assert_eq!(c.url.as_str(), URL);
    assert_eq!(c.secrets, vec![secret("new"), secret("old")], "current first, previous while it overlaps");
    assert_eq!((c.attempt, c.round_attempt, c.lease.as_str()), (1, 0, "lease-a"));
    let data: serde_json::Value = serde_json::from_str(&c.data).unwrap();
    assert_eq!(data, serde_json::json!({"n": 1, "name": "Contoso \"Ltd\""}));

    assert!(ctx.store.claim("lease-b", at(2), at(4), 10).await.unwrap().is_empty(), "hidden while leased");
    let delivery = ctx.store.delivery(&me, &due.id).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Pending, "a claim is not an attempt");
    assert!(delivery.attempts.is_empty());

    // Past the overlap the old secret no longer signs; `max` caps a claim.
    let both = ctx.store.claim("lease-c", at(61), at(63), 1).await.unwrap();
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].secrets, vec![secret("new")]);
    assert_eq!(ctx.store.claim("lease-d", at(61), at(63), 1).await.unwrap().len(), 1);
    assert!(ctx.store.claim("lease-e", at(61), at(63), 5).await.unwrap().is_empty());
}

async fn concurrent_claimers_never_share_a_delivery_and_together_take_them_all(ctx: &Ctx) {
    const DELIVERIES: usize = 500;
    const STORES: usize = 4;
    const TASKS_PER_STORE: usize = 4;
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    configure(ctx, &me, "p").await;
    let events: Vec<Event> =
        (0..DELIVERIES).map(|i| event(ctx, EventType::CustomerUpdated, Some(&p.id), None, at(-(i as i64)))).collect();
    record(ctx, &p.id, &events).await;
    assert_eq!(count_rows(ctx, "webhook_deliveries", &me).await, DELIVERIES as i64);

    // Several processes' dispatchers: stores with their own connections, several tasks each.
    let mut stores = vec![ctx.store.clone()];
    for _ in 1..STORES {
        stores.push(Arc::new(Store::connect(&DbConfig::new(ctx.db.url())).await.unwrap()));
    }
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..TASKS_PER_STORE {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let lease = format!("dispatcher-{s}-{t}");
                let mut taken = Vec::new();
                loop {
                    let batch = store.claim(&lease, NOW, NOW + Duration::minutes(5), 7).await.expect("claim");
                    if batch.is_empty() {
                        return taken;
                    }
                    for c in batch {
                        assert_eq!(c.lease, lease);
                        assert_eq!(c.attempt, 1);
                        let done = attempt(1, NOW, Some(200), DeliveryStatus::Delivered, None);
                        assert!(store.finish(&c, &done, false).await.expect("finish"), "our own lease holds");
                        taken.push((c.event_id, lease.clone()));
                    }
                }
            }));
        }
    }
    let mut owner_of: HashMap<EventId, String> = HashMap::new();
    let mut claimers = HashSet::new();
    for task in tasks {
        for (event, lease) in task.await.unwrap() {
            if let Some(first) = owner_of.insert(event.clone(), lease.clone()) {
                panic!("{event} was claimed by both {first} and {lease}");
            }
            claimers.insert(lease);
        }
    }
    assert_eq!(owner_of.len(), DELIVERIES, "every delivery was claimed");
    assert!(claimers.len() > 1, "the work was shared");
    let all = log(ctx, &me).await;
    assert_eq!(all.len(), DELIVERIES);
    for d in &all {
        assert_eq!(d.status, DeliveryStatus::Delivered, "{}", d.event_id);
        assert_eq!(d.attempts.len(), 1, "exactly one attempt of {}", d.event_id);
    }
    assert!(ctx.store.claim("late", at(60), at(65), 100).await.unwrap().is_empty());
}

async fn finish_records_only_under_the_claims_own_lease(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    configure(ctx, &me, "p").await;
    let e = event(ctx, EventType::KeyCreated, Some(&p.id), None, at(0));
    record(ctx, &p.id, std::slice::from_ref(&e)).await;
    let claimed = claim(ctx, "mine", at(0), 1).await.remove(0);
    let failed = attempt(1, at(0), Some(503), DeliveryStatus::Retrying, Some(at(1)));

    let foreign = ClaimedDelivery { lease: "someone-else".into(), ..claimed.clone() };
    assert!(!ctx.store.finish(&foreign, &failed, true).await.unwrap());
    let untouched = ctx.store.delivery(&me, &e.id).await.unwrap().unwrap();
    assert_eq!(untouched.status, DeliveryStatus::Pending);
    assert!(untouched.attempts.is_empty(), "a foreign lease records no attempt");
    assert_eq!(ctx.store.endpoint(&me).await.unwrap().unwrap().disabled, None, "nor disables anything");
    assert_eq!(count_rows(ctx, "webhook_attempts", &me).await, 0);

    assert!(ctx.store.finish(&claimed, &failed, false).await.unwrap());
    let recorded = ctx.store.delivery(&me, &e.id).await.unwrap().unwrap();
    assert_eq!(recorded.status, DeliveryStatus::Retrying);
    assert_eq!(recorded.next_attempt_at, Some(at(1)));
    assert_eq!(recorded.attempts, vec![failed.clone()]);
    // The lease ends with its outcome: finishing twice records nothing more.
    assert!(
        !ctx.store
            .finish(&claimed, &attempt(1, at(0), Some(200), DeliveryStatus::Delivered, None), false)
            .await
            .unwrap()
    );
    assert_eq!(ctx.store.delivery(&me, &e.id).await.unwrap().unwrap(), recorded);
}

async fn an_expired_lease_makes_the_delivery_due_again_and_numbering_goes_on(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    configure(ctx, &me, "p").await;
    let e = event(ctx, EventType::CustomerDeleted, Some(&p.id), None, at(0));
    record(ctx, &p.id, std::slice::from_ref(&e)).await;
    // A dispatcher claims and dies.
    let crashed = ctx.store.claim("crashed", at(0), at(2), 5).await.unwrap().remove(0);
    assert!(ctx.store.claim("other", at(1), at(3), 5).await.unwrap().is_empty());
    let again = ctx.store.claim("other", at(2), at(4), 5).await.unwrap();
    assert_eq!(again.len(), 1, "due again when the lease ends");
    assert_eq!((again[0].attempt, again[0].round_attempt, again[0].lease.as_str()), (1, 0, "other"));
    // The dead claimer comes back too late: its outcome is not recorded.
    assert!(
        !ctx.store
            .finish(&crashed, &attempt(1, at(2), Some(200), DeliveryStatus::Delivered, None), false)
            .await
            .unwrap()
    );
    let first = attempt(1, at(2), None, DeliveryStatus::Retrying, Some(at(7)));
    assert!(ctx.store.finish(&again[0], &first, false).await.unwrap());
    assert!(ctx.store.claim("next", at(6), at(8), 5).await.unwrap().is_empty(), "not before its retry time");
    let second = ctx.store.claim("next", at(7), at(9), 5).await.unwrap().remove(0);
    assert_eq!((second.attempt, second.round_attempt), (2, 1));
    // This one's lease expires as well; the next claimer gets the same attempt number.
    let third = ctx.store.claim("last", at(9), at(11), 5).await.unwrap().remove(0);
    assert_eq!((third.attempt, third.round_attempt), (2, 1));
    let done = attempt(2, at(9), Some(204), DeliveryStatus::Delivered, None);
    assert!(ctx.store.finish(&third, &done, false).await.unwrap());
    let delivery = ctx.store.delivery(&me, &e.id).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    assert_eq!(delivery.next_attempt_at, None);
    assert_eq!(delivery.attempts, vec![first, done]);
}

async fn a_gone_endpoint_is_disabled_its_open_deliveries_fail_and_nothing_more_is_claimed(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let other = ctx.partner(None).await;
    let (me, them) = (partner_of(&p.id), partner_of(&other.id));
    configure(ctx, &me, "p").await;
    configure(ctx, &them, "o").await;
    let events: Vec<Event> = (0..4).map(|i| event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(i))).collect();
    let theirs = event(ctx, EventType::CustomerCreated, Some(&other.id), None, at(1));
    record(ctx, &p.id, &events).await;
    record(ctx, &other.id, std::slice::from_ref(&theirs)).await;
    // One delivered earlier, two claimed at once by different dispatchers, one still queued.
    let delivered = ctx.store.claim("a", at(0), at(5), 1).await.unwrap().remove(0);
    assert_eq!(delivered.event_id, events[0].id);
    assert!(
        ctx.store
            .finish(&delivered, &attempt(1, at(0), Some(200), DeliveryStatus::Delivered, None), false)
            .await
            .unwrap()
    );
    let busy: Vec<ClaimedDelivery> = ctx.store.claim("b", at(3), at(13), 10).await.unwrap();
    let mine: Vec<&ClaimedDelivery> = busy.iter().filter(|c| c.recipient == me).collect();
    assert_eq!(mine.len(), 3);
    let gone = attempt(1, at(3), Some(410), DeliveryStatus::Failed, None);
    assert!(ctx.store.finish(mine[0], &gone, true).await.unwrap());

    let endpoint = ctx.store.endpoint(&me).await.unwrap().unwrap();
    let disabled = endpoint.disabled.expect("disabled");
    assert_eq!(disabled.at, at(3));
    assert!(disabled.reason.contains("410"), "{}", disabled.reason);
    let after = log(ctx, &me).await;
    let status: HashMap<EventId, DeliveryStatus> = after.iter().map(|d| (d.event_id.clone(), d.status)).collect();
    assert_eq!(status[&events[0].id], DeliveryStatus::Delivered, "a delivered delivery stays delivered");
    for e in &events[1..] {
        assert_eq!(status[&e.id], DeliveryStatus::Failed, "{}", e.id);
    }
    assert!(after.iter().all(|d| d.next_attempt_at.is_none()));
    // The other in-flight claims lost their delivery: their outcome is not recorded.
    assert!(
        !ctx.store
            .finish(mine[1], &attempt(1, at(4), Some(200), DeliveryStatus::Delivered, None), false)
            .await
            .unwrap()
    );
    assert_eq!(ctx.store.delivery(&me, &mine[1].event_id).await.unwrap().unwrap().status, DeliveryStatus::Failed);
    // Nothing of a disabled endpoint is claimed, even when sent again; other endpoints go on.
    assert_eq!(ctx.store.resend(&me, &Resend::One(events[3].id.clone()), at(20)).await.unwrap(), 1);
    let later = ctx.store.claim("c", at(30), at(35), 100).await.unwrap();
    assert!(later.iter().all(|c| c.recipient == them), "{later:?}");
    assert_eq!(ctx.store.endpoint(&them).await.unwrap().unwrap().disabled, None);
}

async fn resend_restarts_the_schedule_and_creates_missing_deliveries(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let p = ctx.partner(Some(&d.id)).await;
    let other = ctx.partner(None).await;
    let me = partner_of(&p.id);
    let before = event(ctx, EventType::KeyCreated, Some(&p.id), None, at(-120));
    record(ctx, &p.id, std::slice::from_ref(&before)).await;
    configure(ctx, &me, "p").await;
    let failing = event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(-60));
    let delivered = event(ctx, EventType::CustomerUpdated, Some(&p.id), None, at(-30));
    let for_distributor = event(ctx, EventType::PartnerSuspended, None, Some(&d.id), at(-20));
    let foreign = event(ctx, EventType::CustomerCreated, Some(&other.id), None, at(-10));
    record(ctx, &p.id, &[failing.clone(), delivered.clone(), for_distributor.clone(), foreign.clone()]).await;
    assert_eq!(ids_of(&log(ctx, &me).await), [delivered.id.clone(), failing.id.clone()]);
    for c in claim(ctx, "l", at(0), 10).await {
        let outcome = if c.event_id == failing.id {
            attempt(1, at(0), Some(500), DeliveryStatus::Failed, None)
        } else {
            attempt(1, at(0), Some(200), DeliveryStatus::Delivered, None)
        };
        assert!(ctx.store.finish(&c, &outcome, false).await.unwrap());
    }

    // Others' events, unknown events and the distributor's events are not this partner's.
    for id in [foreign.id.clone(), for_distributor.id.clone(), EventId::generate(ctx.ids())] {
        assert_eq!(ctx.store.resend(&me, &Resend::One(id.clone()), at(1)).await.unwrap(), 0, "{id}");
        assert_eq!(ctx.store.delivery(&me, &id).await.unwrap(), None);
    }
    // An event from before the endpoint existed gets its first delivery.
    assert_eq!(ctx.store.resend(&me, &Resend::One(before.id.clone()), at(1)).await.unwrap(), 1);
    let created = ctx.store.delivery(&me, &before.id).await.unwrap().unwrap();
    assert_eq!(
        (created.status, created.next_attempt_at, created.occurred_at),
        (DeliveryStatus::Pending, Some(at(1)), at(-120))
    );
    assert!(created.attempts.is_empty());

    // Only failed deliveries of the range: the failing one, which starts a new round.
    let failed_only = Resend::Range { since: at(-180), until: at(0), status: Some(DeliveryStatus::Failed) };
    assert_eq!(ctx.store.resend(&me, &failed_only, at(2)).await.unwrap(), 1);
    let reset = ctx.store.delivery(&me, &failing.id).await.unwrap().unwrap();
    assert_eq!((reset.status, reset.next_attempt_at), (DeliveryStatus::Pending, Some(at(2))));
    assert_eq!(reset.attempts.len(), 1, "the log keeps earlier attempts");
    let retried: Vec<ClaimedDelivery> = claim(ctx, "m", at(2), 10).await;
    let retried_failing = retried.iter().find(|c| c.event_id == failing.id).unwrap();
    assert_eq!((retried_failing.attempt, retried_failing.round_attempt), (2, 0));
    let retrying = attempt(2, at(2), Some(502), DeliveryStatus::Retrying, Some(at(3)));
    assert!(ctx.store.finish(retried_failing, &retrying, false).await.unwrap());
    let before_claim = retried.iter().find(|c| c.event_id == before.id).unwrap();
    assert!(
        ctx.store
            .finish(before_claim, &attempt(1, at(2), Some(200), DeliveryStatus::Delivered, None), false)
            .await
            .unwrap()
    );

    // A status that no delivery of the range has: nothing, and nothing created.
    let none = Resend::Range { since: at(-180), until: at(0), status: Some(DeliveryStatus::Pending) };
    assert_eq!(ctx.store.resend(&me, &none, at(3)).await.unwrap(), 0);

    // The range is half-open: `until` itself is out, `since` is in.
    let exact = Resend::Range { since: at(-60), until: at(-30), status: None };
    assert_eq!(ctx.store.resend(&me, &exact, at(4)).await.unwrap(), 1);
    assert_eq!(ctx.store.delivery(&me, &delivered.id).await.unwrap().unwrap().status, DeliveryStatus::Delivered);

    // Every event of the range, whatever its delivery's state: three of this partner's.
    let everything = Resend::Range { since: at(-180), until: at(0), status: None };
    assert_eq!(ctx.store.resend(&me, &everything, at(5)).await.unwrap(), 3);
    let all = log(ctx, &me).await;
    assert_eq!(sorted(ids_of(&all)), sorted(vec![before.id.clone(), failing.id.clone(), delivered.id.clone()]));
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Pending && d.next_attempt_at == Some(at(5))), "{all:?}");
    let round: HashMap<EventId, (u32, u32)> =
        claim(ctx, "n", at(5), 10).await.into_iter().map(|c| (c.event_id, (c.attempt, c.round_attempt))).collect();
    assert_eq!(round[&failing.id], (3, 0));
    assert_eq!(round[&delivered.id], (2, 0));
    assert_eq!(round[&before.id], (2, 0));
    // The distributor's endpoint was never configured: it has no deliveries of these.
    assert!(log(ctx, &Recipient::Distributor(d.id.clone())).await.is_empty());
}

async fn a_resend_takes_a_claimed_delivery_over(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    configure(ctx, &me, "p").await;
    let e = event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(0));
    record(ctx, &p.id, std::slice::from_ref(&e)).await;
    let in_flight = ctx.store.claim("slow", at(0), at(30), 1).await.unwrap().remove(0);
    assert_eq!(ctx.store.resend(&me, &Resend::One(e.id.clone()), at(1)).await.unwrap(), 1);
    let fresh = ctx.store.claim("fresh", at(1), at(3), 1).await.unwrap();
    assert_eq!(fresh.len(), 1, "due now, not when the old lease ends");
    assert!(
        !ctx.store
            .finish(&in_flight, &attempt(1, at(2), Some(200), DeliveryStatus::Delivered, None), false)
            .await
            .unwrap()
    );
    assert!(
        ctx.store
            .finish(&fresh[0], &attempt(1, at(2), Some(200), DeliveryStatus::Delivered, None), false)
            .await
            .unwrap()
    );
    assert_eq!(ctx.store.delivery(&me, &e.id).await.unwrap().unwrap().attempts.len(), 1);
}

async fn upsert_keeps_the_secret_and_creation_time_and_rotation_keeps_the_previous_secret(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    assert_eq!(ctx.store.endpoint(&me).await.unwrap(), None);
    assert_eq!(ctx.store.rotate_secret(&me, &secret("x"), at(0), at(1)).await.unwrap(), None, "nothing to rotate");
    assert_eq!(ctx.store.endpoint(&me).await.unwrap(), None);
    let created = configure(ctx, &me, "first").await;
    assert_eq!(
        created,
        WebhookEndpoint {
            recipient: me.clone(),
            url: WebhookUrl::from_stored(URL.into()),
            secret: secret("first"),
            previous_secret: None,
            disabled: None,
            created_at: NOW,
            updated_at: NOW,
        }
    );
    let v2 = WebhookUrl::parse("https://hooks.acmemsp.example/v2", false).unwrap();
    let moved = ctx.store.upsert_endpoint(&me, &v2, &secret("second"), at(60)).await.unwrap();
    assert_eq!(moved.secret, secret("first"), "a later PUT keeps the secret");
    assert_eq!((moved.url.as_str(), moved.created_at, moved.updated_at), (v2.as_str(), NOW, at(60)));
    assert_eq!(ctx.store.endpoint(&me).await.unwrap().unwrap(), moved);

    let rotated = ctx.store.rotate_secret(&me, &secret("third"), at(120), at(120 + 24 * 60)).await.unwrap().unwrap();
    assert_eq!(rotated.secret, secret("third"));
    assert_eq!(rotated.previous_secret, Some((secret("first"), at(120 + 24 * 60))));
    assert_eq!((rotated.created_at, rotated.updated_at, rotated.url.as_str()), (NOW, at(120), v2.as_str()));
    assert_eq!(ctx.store.endpoint(&me).await.unwrap().unwrap(), rotated);
    let after_put = ctx.store.upsert_endpoint(&me, &v2, &secret("fourth"), at(130)).await.unwrap();
    assert_eq!((after_put.secret, after_put.previous_secret), (secret("third"), rotated.previous_secret));
    // Another account's endpoint is its own.
    let other = partner_of(&ctx.partner(None).await.id);
    assert_eq!(ctx.store.endpoint(&other).await.unwrap(), None);
}

async fn concurrent_first_puts_create_one_endpoint(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let me = partner_of(&p.id);
    let url = WebhookUrl::parse(URL, false).unwrap();
    let puts = (0..8).map(|i| {
        let (store, me, url) = (ctx.store.clone(), me.clone(), url.clone());
        tokio::spawn(async move { store.upsert_endpoint(&me, &url, &secret(&format!("c{i}")), NOW).await.unwrap() })
    });
    let mut results = Vec::new();
    for put in puts.collect::<Vec<_>>() {
        results.push(put.await.unwrap());
    }
    let stored = ctx.store.endpoint(&me).await.unwrap().unwrap();
    assert!(results.iter().all(|e| e.secret == stored.secret), "every PUT sees the one secret");
    let winners = (0..8).filter(|i| secret(&format!("c{i}")) == stored.secret).count();
    assert_eq!(winners, 1);
    assert_eq!(count_rows(ctx, "webhook_endpoints", &me).await, 1);
}

async fn the_log_pages_newest_first_with_filters_a_cursor_and_attempts(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let other = ctx.partner(None).await;
    let (me, them) = (partner_of(&p.id), partner_of(&other.id));
    configure(ctx, &me, "p").await;
    configure(ctx, &them, "o").await;
    let kinds = [EventType::CustomerCreated, EventType::CustomerUpdated, EventType::KeyCreated];
    // Seven events a minute apart, plus two more at the last minute (ties go by id, descending).
    let mut events: Vec<Event> = (0..7).map(|i| event(ctx, kinds[i % 3], Some(&p.id), None, at(i as i64))).collect();
    events.push(event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(6)));
    events.push(event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(6)));
    let theirs = event(ctx, EventType::CustomerCreated, Some(&other.id), None, at(3));
    record(ctx, &p.id, &events).await;
    record(ctx, &other.id, std::slice::from_ref(&theirs)).await;
    let mut newest_first: Vec<&Event> = events.iter().collect();
    newest_first.sort_by(|a, b| (b.occurred_at, &b.id).cmp(&(a.occurred_at, &a.id)));
    let expected: Vec<EventId> = newest_first.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids_of(&log(ctx, &me).await), expected);

    // events[1] fails twice then is given up; events[2] is delivered.
    let first = claim(ctx, "a", at(100), 100).await;
    let pick = |all: &[ClaimedDelivery], id: &EventId| all.iter().find(|c| &c.event_id == id).unwrap().clone();
    let one = attempt(1, at(100), Some(500), DeliveryStatus::Retrying, Some(at(101)));
    assert!(ctx.store.finish(&pick(&first, &events[1].id), &one, false).await.unwrap());
    let ok = attempt(1, at(100), Some(200), DeliveryStatus::Delivered, None);
    assert!(ctx.store.finish(&pick(&first, &events[2].id), &ok, false).await.unwrap());
    let second = claim(ctx, "b", at(101), 100).await;
    let two = attempt(2, at(101), None, DeliveryStatus::Failed, None);
    assert!(ctx.store.finish(&pick(&second, &events[1].id), &two, false).await.unwrap());

    let failed = DeliveryFilter { status: Some(DeliveryStatus::Failed), event_type: None };
    let page = ctx.store.deliveries(&me, &failed, &Page::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        page.items[0],
        Delivery {
            event_id: events[1].id.clone(),
            event_type: EventType::CustomerUpdated,
            occurred_at: at(1),
            status: DeliveryStatus::Failed,
            next_attempt_at: None,
            attempts: vec![one, two],
        }
    );
    let delivered = DeliveryFilter { status: Some(DeliveryStatus::Delivered), event_type: None };
    let page = ctx.store.deliveries(&me, &delivered, &Page::default()).await.unwrap();
    assert_eq!(
        page.items.iter().map(|d| (d.event_id.clone(), d.attempts.clone())).collect::<Vec<_>>(),
        [(events[2].id.clone(), vec![ok])]
    );

    let keys = DeliveryFilter { status: None, event_type: Some(EventType::KeyCreated) };
    let listed = ids_of(&ctx.store.deliveries(&me, &keys, &Page::default()).await.unwrap().items);
    assert_eq!(listed, [events[5].id.clone(), events[2].id.clone()]);
    let both = DeliveryFilter { status: Some(DeliveryStatus::Pending), event_type: Some(EventType::KeyCreated) };
    assert_eq!(
        ids_of(&ctx.store.deliveries(&me, &both, &Page::default()).await.unwrap().items),
        [events[5].id.clone()]
    );

    // Pages of four over nine deliveries: 4 + 4 + 1, no overlap, in order.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = ctx
            .store
            .deliveries(&me, &DeliveryFilter::default(), &Page { limit: Some(4), starting_after: cursor.clone() })
            .await
            .unwrap();
        pages += 1;
        seen.extend(ids_of(&page.items));
        cursor = page.items.last().map(|d| d.event_id.to_string());
        if !page.has_more {
            assert_eq!(page.items.len(), 1);
            break;
        }
        assert_eq!(page.items.len(), 4);
    }
    assert_eq!((pages, seen), (3, expected.clone()));
    // A page that ends exactly at the last delivery says there is no more.
    let exact = ctx
        .store
        .deliveries(&me, &DeliveryFilter::default(), &Page { limit: Some(9), starting_after: None })
        .await
        .unwrap();
    assert!(!exact.has_more && exact.items.len() == 9);
    // The cursor with a filter continues the filtered list.
    let created = DeliveryFilter { status: None, event_type: Some(EventType::CustomerCreated) };
    let all_created = ids_of(&ctx.store.deliveries(&me, &created, &Page::default()).await.unwrap().items);
    assert_eq!(all_created.len(), 5);
    let rest = ctx
        .store
        .deliveries(&me, &created, &Page { limit: Some(2), starting_after: Some(all_created[1].to_string()) })
        .await
        .unwrap();
    assert_eq!(ids_of(&rest.items), all_created[2..4]);
    assert!(rest.has_more);
    // Another account's event id, or an unknown one, is no cursor here.
    for foreign in [theirs.id.to_string(), EventId::generate(ctx.ids()).to_string()] {
        let page = ctx
            .store
            .deliveries(&me, &DeliveryFilter::default(), &Page { limit: Some(4), starting_after: Some(foreign) })
            .await
            .unwrap();
        assert!(page.items.is_empty() && !page.has_more);
    }
    assert_eq!(ids_of(&log(ctx, &them).await), std::slice::from_ref(&theirs.id));
    assert_eq!(ctx.store.delivery(&them, &events[0].id).await.unwrap(), None, "never through another account");
}

async fn deleting_an_endpoint_removes_its_deliveries_and_attempts_only(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let other = ctx.partner(None).await;
    let (me, them) = (partner_of(&p.id), partner_of(&other.id));
    configure(ctx, &me, "p").await;
    configure(ctx, &them, "o").await;
    let mine = event(ctx, EventType::CustomerCreated, Some(&p.id), None, at(0));
    let theirs = event(ctx, EventType::CustomerCreated, Some(&other.id), None, at(0));
    record(ctx, &p.id, &[mine.clone(), theirs.clone()]).await;
    for c in claim(ctx, "l", at(0), 10).await {
        let failed = attempt(1, at(0), Some(500), DeliveryStatus::Retrying, Some(at(1)));
        assert!(ctx.store.finish(&c, &failed, false).await.unwrap());
    }
    assert_eq!(
        (count_rows(ctx, "webhook_attempts", &me).await, count_rows(ctx, "webhook_attempts", &them).await),
        (1, 1)
    );

    assert!(ctx.store.delete_endpoint(&me).await.unwrap());
    assert_eq!(ctx.store.endpoint(&me).await.unwrap(), None);
    assert!(log(ctx, &me).await.is_empty());
    assert_eq!(count_rows(ctx, "webhook_deliveries", &me).await, 0);
    assert_eq!(count_rows(ctx, "webhook_attempts", &me).await, 0);
    assert_eq!(log(ctx, &them).await.len(), 1);
    assert_eq!(count_rows(ctx, "webhook_attempts", &them).await, 1);
    assert!(!ctx.store.delete_endpoint(&me).await.unwrap(), "nothing left to delete");
    // Events go on without an endpoint; nothing is queued or claimed for it.
    let later = event(ctx, EventType::CustomerUpdated, Some(&p.id), None, at(5));
    record(ctx, &p.id, std::slice::from_ref(&later)).await;
    assert!(log(ctx, &me).await.is_empty());
    assert!(claim(ctx, "m", at(5), 10).await.iter().all(|c| c.recipient == them));
    // The outbox itself keeps every event, so a new endpoint can replay them.
    configure(ctx, &me, "again").await;
    let all = Resend::Range { since: at(-1), until: at(10), status: None };
    assert_eq!(ctx.store.resend(&me, &all, at(6)).await.unwrap(), 2);
}
