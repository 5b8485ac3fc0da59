use std::sync::Arc;

use partnerd_domain::ports::{ProviderAccount, ProviderAccountRepository};

use crate::support::{Ctx, on_both_backends};

on_both_backends!(
    the_first_account_stored_wins_and_is_never_overwritten,
    concurrent_puts_for_one_partner_all_answer_the_same_winner,
);

fn account(n: usize) -> ProviderAccount {
    ProviderAccount { customer: format!("cus_{n}"), subscription: format!("sub_{n}"), item: format!("si_{n}") }
}

async fn the_first_account_stored_wins_and_is_never_overwritten(ctx: &Ctx) {
    let (a, b) = (ctx.partner(None).await, ctx.partner(None).await);
    assert_eq!(ctx.store.get(&a.id).await.unwrap(), None, "no account before the provider first bills the partner");

    assert_eq!(ctx.store.put(&a.id, &account(1)).await.unwrap(), account(1), "the first put stores its own");
    assert_eq!(ctx.store.put(&a.id, &account(2)).await.unwrap(), account(1), "a later put answers the stored one");
    assert_eq!(ctx.store.get(&a.id).await.unwrap(), Some(account(1)), "and did not overwrite it");

    // Each partner has its own.
    assert_eq!(ctx.store.get(&b.id).await.unwrap(), None);
    assert_eq!(ctx.store.put(&b.id, &account(3)).await.unwrap(), account(3));
    assert_eq!(ctx.store.get(&a.id).await.unwrap(), Some(account(1)));
    assert_eq!(ctx.store.get(&b.id).await.unwrap(), Some(account(3)));
}

async fn concurrent_puts_for_one_partner_all_answer_the_same_winner(ctx: &Ctx) {
    let partner = ctx.partner(None).await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (store, partner) = (Arc::clone(&ctx.store), partner.id.clone());
            tokio::spawn(async move { store.put(&partner, &account(n)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().expect("no put fails under contention"));
    }
    let stored = ctx.store.get(&partner.id).await.unwrap().expect("one account stored");
    assert!((0..20).any(|n| account(n) == stored), "the stored account is one of those put: {stored:?}");
    assert!(answers.iter().all(|a| *a == stored), "every racer was told the winner: {answers:?}");
}
