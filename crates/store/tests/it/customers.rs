use partnerd_domain::event::EventType;
use partnerd_domain::ports::{CustomerRepository, Page};
use partnerd_domain::values::{DisplayName, Email};

use crate::runs::customer;
use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    customers_round_trip_update_and_page,
    customers_are_reachable_only_through_their_partner,
    customer_events_commit_with_their_change_and_never_without_it,
);

async fn customers_round_trip_update_and_page(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let mut c = customer(ctx, &p.id, "Contoso Ltd");
    c.email = Some(Email::parse("it@contoso.com").unwrap());
    c.receivers = vec![Email::parse("ciso@contoso.com").unwrap(), Email::parse("it@contoso.com").unwrap()];
    let mut others: Vec<_> = (0..4).map(|i| customer(ctx, &p.id, &format!("Customer {i}"))).collect();
    for (i, o) in others.iter_mut().enumerate() {
        o.created_at = NOW + time::Duration::seconds(i as i64 + 1);
    }
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), &[]).await.unwrap();
    CustomerRepository::insert(&*ctx.store, &others, &[]).await.unwrap();
    assert_eq!(ctx.store.get(&p.id, &c.id).await.unwrap(), Some(c.clone()));
    c.name = DisplayName::parse("Contoso Corporation").unwrap();
    c.email = None;
    assert!(ctx.store.update(&c, &ctx.event(EventType::CustomerUpdated)).await.unwrap());
    assert_eq!(ctx.store.get(&p.id, &c.id).await.unwrap(), Some(c.clone()));
    let all = ctx.store.list(&p.id, &Page::default()).await.unwrap();
    assert_eq!(all.items.len(), 5);
    assert_eq!(all.items[0], c, "oldest first");
    let page =
        ctx.store.list(&p.id, &Page { limit: Some(2), starting_after: Some(others[0].id.to_string()) }).await.unwrap();
    assert_eq!(page.items, others[1..3].to_vec());
    assert!(page.has_more);
}

async fn customers_are_reachable_only_through_their_partner(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let other = ctx.partner(None).await;
    let mut c = customer(ctx, &p.id, "Contoso Ltd");
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), &[]).await.unwrap();
    assert_eq!(ctx.store.get(&other.id, &c.id).await.unwrap(), None);
    assert!(ctx.store.list(&other.id, &Page::default()).await.unwrap().items.is_empty());
    c.partner_id = other.id.clone();
    assert!(
        !ctx.store.update(&c, &ctx.event(EventType::CustomerUpdated)).await.unwrap(),
        "an update naming another partner changes nothing"
    );
    assert_eq!(ctx.store.get(&p.id, &c.id).await.unwrap().unwrap().partner_id, p.id);
}

async fn customer_events_commit_with_their_change_and_never_without_it(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let other = ctx.partner(None).await;
    let mut c = customer(ctx, &p.id, "Contoso Ltd");
    let created = ctx.event(EventType::CustomerCreated).to_partner(p.id.clone()).with("customerId", c.id.to_string());
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), std::slice::from_ref(&created)).await.unwrap();
    // Another partner's update or delete finds nothing, so records nothing.
    let mut foreign = c.clone();
    foreign.partner_id = other.id.clone();
    assert!(!ctx.store.update(&foreign, &ctx.event(EventType::CustomerUpdated)).await.unwrap());
    assert!(
        !CustomerRepository::delete(&*ctx.store, &other.id, &c.id, &ctx.event(EventType::CustomerDeleted))
            .await
            .unwrap()
    );
    c.name = DisplayName::parse("Contoso Corporation").unwrap();
    assert!(ctx.store.update(&c, &ctx.event(EventType::CustomerUpdated).to_partner(p.id.clone())).await.unwrap());
    assert!(
        CustomerRepository::delete(
            &*ctx.store,
            &p.id,
            &c.id,
            &ctx.event(EventType::CustomerDeleted).to_partner(p.id.clone())
        )
        .await
        .unwrap()
    );
    let outbox = ctx.partner_outbox().await;
    let kinds: Vec<(&str, Option<&str>)> = outbox.iter().map(|(t, to, _)| (t.as_str(), to.as_deref())).collect();
    let me = Some(p.id.as_str());
    assert_eq!(kinds, [("customer.created", me), ("customer.updated", me), ("customer.deleted", me)]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&outbox[0].2).unwrap()["customerId"], c.id.to_string());
    // An insert whose event cannot be written (a duplicate event id) leaves no customer behind.
    let orphan = customer(ctx, &p.id, "Fabrikam Inc");
    assert!(
        CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&orphan), std::slice::from_ref(&created))
            .await
            .is_err()
    );
    assert_eq!(ctx.store.get(&p.id, &orphan.id).await.unwrap(), None, "no change without its event");
}
