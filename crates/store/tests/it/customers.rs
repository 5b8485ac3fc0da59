use partnerd_domain::ports::{CustomerRepository, Page};
use partnerd_domain::values::{DisplayName, Email};

use crate::runs::customer;
use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(customers_round_trip_update_and_page, customers_are_reachable_only_through_their_partner);

async fn customers_round_trip_update_and_page(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let mut c = customer(ctx, &p.id, "Contoso Ltd");
    c.email = Some(Email::parse("it@contoso.com").unwrap());
    c.receivers = vec![Email::parse("ciso@contoso.com").unwrap(), Email::parse("it@contoso.com").unwrap()];
    let mut others: Vec<_> = (0..4).map(|i| customer(ctx, &p.id, &format!("Customer {i}"))).collect();
    for (i, o) in others.iter_mut().enumerate() {
        o.created_at = NOW + time::Duration::seconds(i as i64 + 1);
    }
    ctx.store.insert(std::slice::from_ref(&c)).await.unwrap();
    ctx.store.insert(&others).await.unwrap();
    assert_eq!(ctx.store.get(&p.id, &c.id).await.unwrap(), Some(c.clone()));
    c.name = DisplayName::parse("Contoso Corporation").unwrap();
    c.email = None;
    assert!(ctx.store.update(&c).await.unwrap());
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
    ctx.store.insert(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!(ctx.store.get(&other.id, &c.id).await.unwrap(), None);
    assert!(ctx.store.list(&other.id, &Page::default()).await.unwrap().items.is_empty());
    c.partner_id = other.id.clone();
    assert!(!ctx.store.update(&c).await.unwrap(), "an update naming another partner changes nothing");
    assert_eq!(ctx.store.get(&p.id, &c.id).await.unwrap().unwrap().partner_id, p.id);
}
