use async_trait::async_trait;
use partnerd_domain::ids::PartnerId;
use partnerd_domain::ports::{InfraError, ProviderAccount, ProviderAccountRepository};
use sea_orm::{ConnectionTrait, QueryResult};

use crate::Store;
use crate::convert::{corrupt, infra};

const SELECT: &str = "SELECT customer_id, subscription_id, item_id FROM provider_accounts WHERE partner_id = $1";

fn to_account(row: &QueryResult) -> Result<ProviderAccount, InfraError> {
    Ok(ProviderAccount {
        customer: row.try_get_by_index(0).map_err(infra)?,
        subscription: row.try_get_by_index(1).map_err(infra)?,
        item: row.try_get_by_index(2).map_err(infra)?,
    })
}

#[async_trait]
impl ProviderAccountRepository for Store {
    async fn get(&self, partner: &PartnerId) -> Result<Option<ProviderAccount>, InfraError> {
        let row =
            self.db.reader().query_one_raw(self.db.stmt(SELECT, [partner.as_str().into()])).await.map_err(infra)?;
        row.as_ref().map(to_account).transpose()
    }

    async fn put(&self, partner: &PartnerId, account: &ProviderAccount) -> Result<ProviderAccount, InfraError> {
        // The primary key decides: a second insert does nothing (PostgreSQL waits for a racing
        // insert to commit before deciding), and the read that follows, in the same write
        // transaction, sees whichever row won.
        let txn = self.db.begin_write().await.map_err(infra)?;
        let sql = "INSERT INTO provider_accounts (partner_id, customer_id, subscription_id, item_id) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (partner_id) DO NOTHING";
        let values = [
            partner.as_str().into(),
            account.customer.as_str().into(),
            account.subscription.as_str().into(),
            account.item.as_str().into(),
        ];
        txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        let row = txn
            .query_one_raw(self.db.stmt(SELECT, [partner.as_str().into()]))
            .await
            .map_err(infra)?
            .ok_or_else(|| corrupt("a provider account vanished right after it was stored"))?;
        let stored = to_account(&row)?;
        txn.commit().await.map_err(infra)?;
        Ok(stored)
    }
}
