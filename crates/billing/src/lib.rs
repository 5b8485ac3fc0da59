//! Billing provider adapters, chosen by configuration:
//! - [`LedgerBilling`] (the default) keeps the books in partnerd's own database: a plan change's
//!   proration becomes pending invoice items, which invoicing later gathers.
//! - [`StripeBilling`] puts the change into effect at Stripe or any service that speaks its API,
//!   which prorates and invoices it (see the `stripe` module).

mod stripe;

pub use stripe::{StripeBilling, StripeConfig, StripeConfigError};

use std::sync::Arc;

use async_trait::async_trait;
use partnerd_domain::ports::{BillingError, BillingProvider, Clock, LedgerRepository, PlanChange};

/// The default billing provider: records proration lines as pending invoice items.
pub struct LedgerBilling {
    ledger: Arc<dyn LedgerRepository>,
    clock: Arc<dyn Clock>,
}

impl LedgerBilling {
    pub fn new(ledger: Arc<dyn LedgerRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { ledger, clock }
    }
}

#[async_trait]
impl BillingProvider for LedgerBilling {
    /// Idempotent per change: the ledger stores a change's lines once, however often it is asked.
    async fn change_subscription(&self, change: &PlanChange) -> Result<(), BillingError> {
        self.ledger.record_proration(change, self.clock.now()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partnerd_domain::billing::{Money, ProrationKind, ProrationLine, Subscription};
    use partnerd_domain::catalog::PlanId;
    use partnerd_domain::ids::{PartnerId, PlanChangeId};
    use partnerd_domain::ports::Actor;
    use partnerd_domain::testing::{FixedClock, InMemoryStore, SequentialIds};
    use partnerd_domain::values::{BillingInterval, Currency};
    use rust_decimal::dec;
    use time::macros::datetime;

    fn change() -> PlanChange {
        let ids = SequentialIds::default();
        let now = datetime!(2026-04-16 00:00 UTC);
        let from = Subscription::starting(
            PlanId::parse("starter").unwrap(),
            BillingInterval::Monthly,
            Currency::Aud,
            datetime!(2026-04-01 00:00 UTC),
        );
        let to = Subscription { plan: PlanId::parse("professional").unwrap(), ..from.clone() };
        let line = |kind, amount| ProrationLine {
            kind,
            description: "line".into(),
            amount: Money::new(amount, Currency::Aud),
            period_start: now,
            period_end: from.period_end,
        };
        let partner = PartnerId::generate(&ids);
        PlanChange {
            id: PlanChangeId::generate(&ids),
            actor: Actor::Partner(partner.clone()),
            partner,
            lines: vec![
                line(ProrationKind::UnusedTime, dec!(-74.50)),
                line(ProrationKind::RemainingTime, dec!(224.50)),
            ],
            from,
            to,
            requested_at: now,
        }
    }

    #[tokio::test]
    async fn records_each_changes_lines_once() {
        let store = Arc::new(InMemoryStore::new());
        let billing = LedgerBilling::new(store.clone(), Arc::new(FixedClock::at(datetime!(2026-04-16 00:00 UTC))));
        let change = change();
        billing.change_subscription(&change).await.unwrap();
        billing.change_subscription(&change).await.unwrap();
        let amounts: Vec<String> = store.ledger_lines().iter().map(|l| l.amount.to_decimal_string()).collect();
        assert_eq!(amounts, ["-74.50", "224.50"]);
    }
}
