//! Invoices. Issuing one is a single write transaction whose every step is conditional (the
//! renewal on the period read, the insert on the unique (account, period start, currency), the
//! attachment on the items still pending), so a second issuer changes nothing and gets `Stale`.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use partnerd_domain::billing::{Money, ProrationKind, ProrationLine, Subscription};
use partnerd_domain::catalog::PlanId;
use partnerd_domain::ids::{DistributorId, InvoiceId, PartnerId, PlanChangeId};
use partnerd_domain::invoice::{
    DiscountPercent, DistributorBill, Invoice, InvoiceAccount, InvoiceLine, ItemRef, LinePeriod, PartnerInvoiceTotal,
    PendingItem,
};
use partnerd_domain::ports::{
    DueDistributor, DuePartner, InfraError, InvoiceRepository, IssueInvoiceError, Page, Paged, PartnerIssue,
};
use partnerd_domain::values::Currency;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, Value};
use time::OffsetDateTime;

use crate::Store;
use crate::convert::{corrupt, from_millis, infra, millis};
use crate::db::placeholders;

const INVOICE_COLUMNS: &str = "id, account_kind, account_id, period_start, period_end, currency, subtotal_minor, \
                               discount_minor, total_minor, issued_at";

fn minor(money: Money) -> Result<i64, InfraError> {
    money.to_minor().ok_or_else(|| corrupt("an invoice amount does not fit in 64 bits"))
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, index: usize) -> Result<T, InfraError> {
    row.try_get_by_index(index).map_err(infra)
}

fn currency(raw: &str) -> Result<Currency, InfraError> {
    Currency::from_str(raw).map_err(corrupt)
}

fn to_invoice(row: &QueryResult, lines: Vec<InvoiceLine>) -> Result<Invoice, InfraError> {
    let (kind, account_id): (String, String) = (get(row, 1)?, get(row, 2)?);
    let account = InvoiceAccount::parse(&kind, &account_id).map_err(corrupt)?;
    let currency = currency(&get::<String>(row, 5)?)?;
    Ok(Invoice {
        id: InvoiceId::parse(&get::<String>(row, 0)?).map_err(corrupt)?,
        account,
        period_start: from_millis(get(row, 3)?)?,
        period_end: from_millis(get(row, 4)?)?,
        currency,
        lines,
        subtotal: Money::from_minor(get(row, 6)?, currency),
        discount: Money::from_minor(get(row, 7)?, currency),
        total: Money::from_minor(get(row, 8)?, currency),
        issued_at: from_millis(get(row, 9)?)?,
    })
}

impl Store {
    /// Inserts the invoice and its lines; `false` (nothing written) if the account already has an
    /// invoice for this period and currency.
    async fn insert_invoice(
        &self,
        txn: &DatabaseTransaction,
        invoice: &Invoice,
        distributor: Option<&str>,
    ) -> Result<bool, InfraError> {
        let sql = "INSERT INTO invoices (id, account_kind, account_id, period_start, period_end, currency, \
                   subtotal_minor, discount_minor, total_minor, issued_at, distributor_id) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                   ON CONFLICT (account_kind, account_id, period_start, currency) DO NOTHING";
        let values: Vec<Value> = vec![
            invoice.id.as_str().into(),
            invoice.account.kind().into(),
            invoice.account.id().into(),
            millis(invoice.period_start).into(),
            millis(invoice.period_end).into(),
            invoice.currency.code().into(),
            minor(invoice.subtotal)?.into(),
            minor(invoice.discount)?.into(),
            minor(invoice.total)?.into(),
            millis(invoice.issued_at).into(),
            distributor.map(str::to_owned).into(),
        ];
        let inserted = txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?.rows_affected();
        if inserted != 1 {
            return Ok(false);
        }
        if invoice.lines.is_empty() {
            return Ok(true);
        }
        let columns = 7;
        let mut rows = Vec::with_capacity(invoice.lines.len());
        let mut values: Vec<Value> = Vec::with_capacity(invoice.lines.len() * columns);
        for (line_no, line) in invoice.lines.iter().enumerate() {
            rows.push(format!("({})", placeholders(values.len() + 1, columns)));
            values.extend([
                invoice.id.as_str().into(),
                (line_no as i16).into(),
                line.kind.as_str().into(),
                line.description.as_str().into(),
                minor(line.amount)?.into(),
                line.period.map(|p| millis(p.start)).into(),
                line.period.map(|p| millis(p.end)).into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO invoice_lines (invoice_id, line_no, kind, description, amount_minor, period_start, \
             period_end) VALUES {}",
            rows.join(", ")
        );
        txn.execute_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
        Ok(true)
    }

    /// The lines of these invoices, by invoice id, in order.
    async fn lines_of(&self, invoices: &[QueryResult]) -> Result<HashMap<String, Vec<InvoiceLine>>, InfraError> {
        let mut out: HashMap<String, Vec<InvoiceLine>> = HashMap::new();
        if invoices.is_empty() {
            return Ok(out);
        }
        let mut ids: Vec<Value> = Vec::with_capacity(invoices.len());
        let mut currencies = HashMap::new();
        for row in invoices {
            let id: String = get(row, 0)?;
            currencies.insert(id.clone(), currency(&get::<String>(row, 5)?)?);
            ids.push(id.into());
        }
        let sql = format!(
            "SELECT invoice_id, kind, description, amount_minor, period_start, period_end FROM invoice_lines \
             WHERE invoice_id IN ({}) ORDER BY invoice_id, line_no",
            placeholders(1, ids.len())
        );
        for row in self.db.reader().query_all_raw(self.db.stmt(&sql, ids)).await.map_err(infra)? {
            let id: String = get(&row, 0)?;
            let currency = currencies[&id];
            let (start, end): (Option<i64>, Option<i64>) = (get(&row, 4)?, get(&row, 5)?);
            let period = match (start, end) {
                (Some(s), Some(e)) => Some(LinePeriod { start: from_millis(s)?, end: from_millis(e)? }),
                _ => None,
            };
            let line = InvoiceLine {
                kind: get::<String>(&row, 1)?.parse().map_err(corrupt)?,
                description: get(&row, 2)?,
                amount: Money::from_minor(get(&row, 3)?, currency),
                period,
            };
            out.entry(id).or_default().push(line);
        }
        Ok(out)
    }

    async fn invoices_with_lines(&self, rows: Vec<QueryResult>) -> Result<Vec<Invoice>, InfraError> {
        let mut lines = self.lines_of(&rows).await?;
        rows.iter()
            .map(|row| {
                let id: String = get(row, 0)?;
                to_invoice(row, lines.remove(&id).unwrap_or_default())
            })
            .collect()
    }
}

#[async_trait]
impl InvoiceRepository for Store {
    async fn due_partners(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<DuePartner>, InfraError> {
        let sql = "SELECT id, plan, billing_interval, billing_currency, period_start, period_end, invoiced_until \
                   FROM partners WHERE status = 'active' AND invoiced_until <= $1 ORDER BY invoiced_until, id LIMIT $2";
        let rows = self
            .db
            .reader()
            .query_all_raw(self.db.stmt(sql, [millis(now).into(), i64::from(limit).into()]))
            .await
            .map_err(infra)?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            due.push(DuePartner {
                partner: PartnerId::parse(&get::<String>(row, 0)?).map_err(corrupt)?,
                subscription: Subscription {
                    plan: PlanId::parse(&get::<String>(row, 1)?).map_err(corrupt)?,
                    interval: get::<String>(row, 2)?.parse().map_err(corrupt)?,
                    currency: currency(&get::<String>(row, 3)?)?,
                    period_start: from_millis(get(row, 4)?)?,
                    period_end: from_millis(get(row, 5)?)?,
                },
                invoiced_until: match get::<i64>(row, 6)? {
                    0 => None,
                    at => Some(from_millis(at)?),
                },
                pending: Vec::new(),
            });
        }
        if due.is_empty() {
            return Ok(due);
        }
        let ids: Vec<Value> = due.iter().map(|d| d.partner.as_str().into()).collect();
        let sql = format!(
            "SELECT i.account_id, i.plan_change_id, i.line_no, i.kind, i.description, i.amount_minor, i.currency, \
             i.period_start, i.period_end FROM invoice_items i JOIN plan_changes c ON c.id = i.plan_change_id \
             WHERE i.account_kind = 'partner' AND i.invoice_id IS NULL AND c.state = 'applied' \
             AND i.account_id IN ({}) ORDER BY i.created_at, i.plan_change_id, i.line_no",
            placeholders(1, ids.len())
        );
        for row in self.db.reader().query_all_raw(self.db.stmt(&sql, ids)).await.map_err(infra)? {
            let partner: String = get(&row, 0)?;
            let kind = match get::<String>(&row, 3)?.as_str() {
                "unused_time" => ProrationKind::UnusedTime,
                _ => ProrationKind::RemainingTime,
            };
            let line_no: i16 = get(&row, 2)?;
            let item = PendingItem {
                item: ItemRef {
                    change: PlanChangeId::parse(&get::<String>(&row, 1)?).map_err(corrupt)?,
                    line_no: u16::try_from(line_no).map_err(corrupt)?,
                },
                line: ProrationLine {
                    kind,
                    description: get(&row, 4)?,
                    amount: Money::from_minor(get(&row, 5)?, currency(&get::<String>(&row, 6)?)?),
                    period_start: from_millis(get(&row, 7)?)?,
                    period_end: from_millis(get(&row, 8)?)?,
                },
            };
            if let Some(d) = due.iter_mut().find(|d| d.partner.as_str() == partner) {
                d.pending.push(item);
            }
        }
        Ok(due)
    }

    async fn issue_partner(&self, issue: &PartnerIssue) -> Result<(), IssueInvoiceError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        // Renew only from the period and paid-for time read: a second issuer (or a plan change
        // since) matches no row. On PostgreSQL this also locks the partner row until the end.
        let (from, to) = (&issue.from, &issue.to);
        let sql = "UPDATE partners SET period_start = $1, period_end = $2, invoiced_until = $2 WHERE id = $3 \
                   AND status = 'active' AND plan = $4 AND billing_interval = $5 AND billing_currency = $6 \
                   AND period_start = $7 AND period_end = $8 AND invoiced_until = $9";
        let values: Vec<Value> = vec![
            millis(to.period_start).into(),
            millis(to.period_end).into(),
            issue.partner.as_str().into(),
            from.plan.as_str().into(),
            from.interval.as_str().into(),
            from.currency.code().into(),
            millis(from.period_start).into(),
            millis(from.period_end).into(),
            issue.invoiced_until.map_or(0, millis).into(),
        ];
        if txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?.rows_affected() != 1 {
            return Err(IssueInvoiceError::Stale);
        }
        let sql = "SELECT distributor_id FROM partners WHERE id = $1";
        let row = txn
            .query_one_raw(self.db.stmt(sql, [issue.partner.as_str().into()]))
            .await
            .map_err(infra)?
            .ok_or_else(|| corrupt("the partner renewed a moment ago is gone"))?;
        let distributor: Option<String> = get(&row, 0)?;
        for bill in &issue.bills {
            if !self.insert_invoice(&txn, &bill.invoice, distributor.as_deref()).await? {
                return Err(IssueInvoiceError::Stale);
            }
            if bill.items.is_empty() {
                continue;
            }
            let mut values: Vec<Value> = vec![bill.invoice.id.as_str().into(), issue.partner.as_str().into()];
            let mut matches = Vec::with_capacity(bill.items.len());
            for item in &bill.items {
                let n = values.len();
                matches.push(format!("(plan_change_id = ${} AND line_no = ${})", n + 1, n + 2));
                values.push(item.change.as_str().into());
                values.push((item.line_no as i16).into());
            }
            let sql = format!(
                "UPDATE invoice_items SET invoice_id = $1 WHERE account_kind = 'partner' AND account_id = $2 \
                 AND invoice_id IS NULL AND ({})",
                matches.join(" OR ")
            );
            let attached = txn.execute_raw(self.db.stmt(&sql, values)).await.map_err(infra)?.rows_affected();
            if attached != bill.items.len() as u64 {
                return Err(IssueInvoiceError::Stale);
            }
        }
        txn.commit().await.map_err(infra)?;
        Ok(())
    }

    async fn due_distributors(&self, before: OffsetDateTime) -> Result<Vec<DueDistributor>, InfraError> {
        let sql = "SELECT i.distributor_id, d.discount_percent, i.id, i.account_id, i.total_minor, i.currency, \
                   i.period_start, i.period_end FROM invoices i JOIN distributors d ON d.id = i.distributor_id \
                   WHERE i.distributor_id IS NOT NULL AND i.distributor_invoice_id IS NULL AND i.issued_at < $1 \
                   ORDER BY i.distributor_id, i.issued_at, i.id";
        let rows = self.db.reader().query_all_raw(self.db.stmt(sql, [millis(before).into()])).await.map_err(infra)?;
        let mut due: Vec<DueDistributor> = Vec::new();
        for row in &rows {
            let distributor = DistributorId::parse(&get::<String>(row, 0)?).map_err(corrupt)?;
            let total = PartnerInvoiceTotal {
                invoice: InvoiceId::parse(&get::<String>(row, 2)?).map_err(corrupt)?,
                partner: PartnerId::parse(&get::<String>(row, 3)?).map_err(corrupt)?,
                total: Money::from_minor(get(row, 4)?, currency(&get::<String>(row, 5)?)?),
                period_start: from_millis(get(row, 6)?)?,
                period_end: from_millis(get(row, 7)?)?,
            };
            match due.last_mut() {
                Some(d) if d.distributor == distributor => d.partner_invoices.push(total),
                _ => {
                    let discount = get::<Option<String>>(row, 1)?
                        .map(|raw| {
                            Decimal::from_str(&raw)
                                .map_err(corrupt)
                                .and_then(|p| DiscountPercent::new(p).map_err(corrupt))
                        })
                        .transpose()?;
                    due.push(DueDistributor { distributor, discount, partner_invoices: vec![total] });
                }
            }
        }
        Ok(due)
    }

    async fn issue_distributor(&self, bills: &[DistributorBill]) -> Result<(), IssueInvoiceError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        for bill in bills {
            if !self.insert_invoice(&txn, &bill.invoice, None).await? {
                return Err(IssueInvoiceError::Stale);
            }
            if bill.partner_invoices.is_empty() {
                continue;
            }
            let mut values: Vec<Value> = vec![bill.invoice.id.as_str().into(), bill.invoice.account.id().into()];
            values.extend(bill.partner_invoices.iter().map(|id| Value::from(id.as_str())));
            let sql = format!(
                "UPDATE invoices SET distributor_invoice_id = $1 WHERE distributor_id = $2 \
                 AND distributor_invoice_id IS NULL AND id IN ({})",
                placeholders(3, bill.partner_invoices.len())
            );
            let covered = txn.execute_raw(self.db.stmt(&sql, values)).await.map_err(infra)?.rows_affected();
            if covered != bill.partner_invoices.len() as u64 {
                return Err(IssueInvoiceError::Stale);
            }
        }
        txn.commit().await.map_err(infra)?;
        Ok(())
    }

    async fn list(&self, account: &InvoiceAccount, page: &Page) -> Result<Paged<Invoice>, InfraError> {
        let mut values: Vec<Value> = vec![account.kind().into(), account.id().into()];
        let mut sql = format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE account_kind = $1 AND account_id = $2");
        if let Some(after) = &page.starting_after {
            let cursor = "SELECT issued_at FROM invoices WHERE account_kind = $1 AND account_id = $2 AND id = $3";
            let at = self
                .db
                .reader()
                .query_one_raw(
                    self.db.stmt(cursor, [account.kind().into(), account.id().into(), after.as_str().into()]),
                )
                .await
                .map_err(infra)?;
            let Some(at) = at else { return Ok(Paged { items: vec![], has_more: false }) };
            let at: i64 = get(&at, 0)?;
            sql.push_str(" AND (issued_at < $3 OR (issued_at = $3 AND id < $4))");
            values.extend([at.into(), after.as_str().into()]);
        }
        sql.push_str(" ORDER BY issued_at DESC, id DESC");
        if let Some(limit) = page.limit {
            sql.push_str(&format!(" LIMIT {}", u64::from(limit) + 1));
        }
        let mut rows = self.db.reader().query_all_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
        let has_more = page.limit.is_some_and(|l| rows.len() > l as usize);
        if let Some(limit) = page.limit {
            rows.truncate(limit as usize);
        }
        Ok(Paged { items: self.invoices_with_lines(rows).await?, has_more })
    }

    async fn get(&self, account: &InvoiceAccount, id: &InvoiceId) -> Result<Option<Invoice>, InfraError> {
        let sql =
            format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE account_kind = $1 AND account_id = $2 AND id = $3");
        let values = [account.kind().into(), account.id().into(), id.as_str().into()];
        let rows = self.db.reader().query_all_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
        Ok(self.invoices_with_lines(rows).await?.pop())
    }

    async fn count(&self, account: &InvoiceAccount) -> Result<u64, InfraError> {
        let sql = "SELECT COUNT(*) FROM invoices WHERE account_kind = $1 AND account_id = $2";
        let values = [account.kind().into(), account.id().into()];
        let row = self.db.reader().query_one_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        let n: i64 = row.map(|r| get(&r, 0)).transpose()?.unwrap_or(0);
        u64::try_from(n).map_err(corrupt)
    }
}
