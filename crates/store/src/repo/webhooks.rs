//! Webhook endpoints, the delivery log, and the queue the dispatchers share. A claim is one
//! `UPDATE … RETURNING` over due rows: on PostgreSQL its row choice is `FOR UPDATE SKIP LOCKED`,
//! so concurrent dispatchers take disjoint rows without waiting; on SQLite the statement runs
//! under the database's single write lock, so it is atomic by construction.

use std::collections::HashMap;

use async_trait::async_trait;
use partnerd_domain::event::EventType;
use partnerd_domain::ids::EventId;
use partnerd_domain::ports::{ClaimedDelivery, DeliveryQueue, InfraError, Page, Paged, Resend, WebhookRepository};
use partnerd_domain::webhook::{
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, Disabled, Recipient, WebhookEndpoint, WebhookSecret,
    WebhookUrl,
};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};
use time::OffsetDateTime;

use crate::Store;
use crate::convert::{corrupt, from_millis, infra, millis};
use crate::db::placeholders;

const ENDPOINT_COLUMNS: &str = "recipient, url, secret, previous_secret, previous_secret_until, disabled_at, \
                                disabled_reason, created_at, updated_at";

#[derive(Debug, FromQueryResult)]
struct EndpointRow {
    recipient: String,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
    disabled_at: Option<i64>,
    disabled_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

fn to_endpoint(row: EndpointRow) -> Result<WebhookEndpoint, InfraError> {
    let previous_secret = match (row.previous_secret, row.previous_secret_until) {
        (Some(secret), Some(until)) => Some((WebhookSecret::from_stored(secret), from_millis(until)?)),
        _ => None,
    };
    let disabled = match row.disabled_at {
        Some(at) => Some(Disabled { at: from_millis(at)?, reason: row.disabled_reason.unwrap_or_default() }),
        None => None,
    };
    Ok(WebhookEndpoint {
        recipient: Recipient::parse(&row.recipient).map_err(corrupt)?,
        url: WebhookUrl::from_stored(row.url),
        secret: WebhookSecret::from_stored(row.secret),
        previous_secret,
        disabled,
        created_at: from_millis(row.created_at)?,
        updated_at: from_millis(row.updated_at)?,
    })
}

#[derive(Debug, FromQueryResult)]
struct DeliveryRow {
    event_id: String,
    event_type: String,
    occurred_at: i64,
    status: String,
    next_attempt_at: Option<i64>,
}

#[derive(Debug, FromQueryResult)]
struct AttemptRow {
    event_id: String,
    attempt: i32,
    attempted_at: i64,
    http_status: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
    status: String,
    next_retry_at: Option<i64>,
}

fn delivery_status(raw: &str) -> Result<DeliveryStatus, InfraError> {
    DeliveryStatus::parse(raw).map_err(corrupt)
}

fn to_attempt(row: AttemptRow) -> Result<DeliveryAttempt, InfraError> {
    Ok(DeliveryAttempt {
        attempt: u32::try_from(row.attempt).map_err(corrupt)?,
        attempted_at: from_millis(row.attempted_at)?,
        http_status: row.http_status.map(u16::try_from).transpose().map_err(corrupt)?,
        latency_ms: u32::try_from(row.latency_ms).map_err(corrupt)?,
        error: row.error,
        status: delivery_status(&row.status)?,
        next_retry_at: row.next_retry_at.map(from_millis).transpose()?,
    })
}

fn to_delivery(row: DeliveryRow, attempts: Vec<DeliveryAttempt>) -> Result<Delivery, InfraError> {
    let status = delivery_status(&row.status)?;
    let open = matches!(status, DeliveryStatus::Pending | DeliveryStatus::Retrying);
    Ok(Delivery {
        event_id: EventId::parse(&row.event_id).map_err(corrupt)?,
        event_type: EventType::parse(&row.event_type).ok_or_else(|| corrupt(&row.event_type))?,
        occurred_at: from_millis(row.occurred_at)?,
        status,
        next_attempt_at: if open { row.next_attempt_at.map(from_millis).transpose()? } else { None },
        attempts,
    })
}

#[derive(Debug, FromQueryResult)]
struct ClaimRow {
    event_id: String,
    recipient: String,
    attempts: i32,
    round_base: i32,
    event_type: String,
    occurred_at: i64,
    data: String,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
}

impl Store {
    async fn one_endpoint(&self, sql: &str, values: Vec<Value>) -> Result<Option<WebhookEndpoint>, InfraError> {
        let row =
            EndpointRow::find_by_statement(self.db.stmt(sql, values)).one(self.db.writer()).await.map_err(infra)?;
        row.map(to_endpoint).transpose()
    }

    /// The attempts of these deliveries, oldest first, in one query.
    async fn attempts_of(
        &self,
        conn: &impl ConnectionTrait,
        recipient: &Recipient,
        events: &[&str],
    ) -> Result<HashMap<String, Vec<DeliveryAttempt>>, InfraError> {
        let mut by_event: HashMap<String, Vec<DeliveryAttempt>> = HashMap::new();
        if events.is_empty() {
            return Ok(by_event);
        }
        let sql = format!(
            "SELECT event_id, attempt, attempted_at, http_status, latency_ms, error, status, next_retry_at \
             FROM webhook_attempts WHERE recipient = $1 AND event_id IN ({}) ORDER BY event_id, attempt",
            placeholders(2, events.len())
        );
        let values = std::iter::once(Value::from(recipient.id())).chain(events.iter().map(|e| Value::from(*e)));
        let rows = AttemptRow::find_by_statement(self.db.stmt(&sql, values)).all(conn).await.map_err(infra)?;
        for row in rows {
            let event = row.event_id.clone();
            by_event.entry(event).or_default().push(to_attempt(row)?);
        }
        Ok(by_event)
    }

    async fn with_attempts(
        &self,
        conn: &impl ConnectionTrait,
        recipient: &Recipient,
        rows: Vec<DeliveryRow>,
    ) -> Result<Vec<Delivery>, InfraError> {
        let ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
        let mut attempts = self.attempts_of(conn, recipient, &ids).await?;
        rows.into_iter()
            .map(|row| {
                let mine = attempts.remove(&row.event_id).unwrap_or_default();
                to_delivery(row, mine)
            })
            .collect()
    }
}

const DELIVERY_COLUMNS: &str = "event_id, event_type, occurred_at, status, next_attempt_at";

#[async_trait]
impl WebhookRepository for Store {
    async fn endpoint(&self, recipient: &Recipient) -> Result<Option<WebhookEndpoint>, InfraError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE recipient = $1");
        let row = EndpointRow::find_by_statement(self.db.stmt(&sql, [recipient.id().into()]))
            .one(self.db.reader())
            .await
            .map_err(infra)?;
        row.map(to_endpoint).transpose()
    }

    async fn upsert_endpoint(
        &self,
        recipient: &Recipient,
        url: &WebhookUrl,
        candidate: &WebhookSecret,
        now: OffsetDateTime,
    ) -> Result<WebhookEndpoint, InfraError> {
        let sql = format!(
            "INSERT INTO webhook_endpoints (recipient, url, secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (recipient) DO UPDATE SET url = excluded.url, disabled_at = NULL, disabled_reason = NULL, \
             updated_at = excluded.updated_at RETURNING {ENDPOINT_COLUMNS}"
        );
        let values = vec![recipient.id().into(), url.as_str().into(), candidate.reveal().into(), millis(now).into()];
        self.one_endpoint(&sql, values).await?.ok_or_else(|| InfraError::new("upsert returned no row"))
    }

    async fn delete_endpoint(&self, recipient: &Recipient) -> Result<bool, InfraError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        let id: Value = recipient.id().into();
        for sql in
            ["DELETE FROM webhook_attempts WHERE recipient = $1", "DELETE FROM webhook_deliveries WHERE recipient = $1"]
        {
            txn.execute_raw(self.db.stmt(sql, [id.clone()])).await.map_err(infra)?;
        }
        let done = txn
            .execute_raw(self.db.stmt("DELETE FROM webhook_endpoints WHERE recipient = $1", [id]))
            .await
            .map_err(infra)?;
        txn.commit().await.map_err(infra)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_secret(
        &self,
        recipient: &Recipient,
        secret: &WebhookSecret,
        now: OffsetDateTime,
        overlap_until: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, InfraError> {
        // Right-hand sides read the row before the update: the old secret becomes the previous.
        let sql = format!(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $1, secret = $2, \
             updated_at = $3 WHERE recipient = $4 RETURNING {ENDPOINT_COLUMNS}"
        );
        let values =
            vec![millis(overlap_until).into(), secret.reveal().into(), millis(now).into(), recipient.id().into()];
        self.one_endpoint(&sql, values).await
    }

    async fn deliveries(
        &self,
        recipient: &Recipient,
        filter: &DeliveryFilter,
        page: &Page,
    ) -> Result<Paged<Delivery>, InfraError> {
        // The page's rows and their attempts come from one snapshot, so a delivery is never shown
        // beside attempts newer (or older) than its own state.
        let snapshot = self.db.begin_snapshot().await.map_err(infra)?;
        let mut conditions = vec!["recipient = $1".to_owned()];
        let mut values: Vec<Value> = vec![recipient.id().into()];
        if let Some(status) = filter.status {
            values.push(status.as_str().into());
            conditions.push(format!("status = ${}", values.len()));
        }
        if let Some(event_type) = filter.event_type {
            values.push(event_type.as_str().into());
            conditions.push(format!("event_type = ${}", values.len()));
        }
        if let Some(after) = &page.starting_after {
            // Newest first: the page continues with rows older than the cursor, which must be
            // one of this recipient's deliveries (another account's id finds nothing).
            let sql = "SELECT occurred_at FROM webhook_deliveries WHERE recipient = $1 AND event_id = $2";
            let cursor = snapshot
                .query_one_raw(self.db.stmt(sql, [recipient.id().into(), after.as_str().into()]))
                .await
                .map_err(infra)?;
            let Some(cursor) = cursor else { return Ok(Paged { items: vec![], has_more: false }) };
            let at: i64 = cursor.try_get_by_index(0).map_err(infra)?;
            values.push(at.into());
            values.push(after.as_str().into());
            let (a, b) = (values.len() - 1, values.len());
            conditions.push(format!("(occurred_at < ${a} OR (occurred_at = ${a} AND event_id < ${b}))"));
        }
        let limit = page.limit.map(|l| format!(" LIMIT {}", u64::from(l) + 1)).unwrap_or_default();
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {} \
             ORDER BY occurred_at DESC, event_id DESC{limit}",
            conditions.join(" AND ")
        );
        let mut rows =
            DeliveryRow::find_by_statement(self.db.stmt(&sql, values)).all(&snapshot).await.map_err(infra)?;
        let has_more = page.limit.is_some_and(|l| rows.len() > l as usize);
        if let Some(limit) = page.limit {
            rows.truncate(limit as usize);
        }
        let items = self.with_attempts(&snapshot, recipient, rows).await?;
        snapshot.commit().await.map_err(infra)?;
        Ok(Paged { items, has_more })
    }

    async fn resend(&self, recipient: &Recipient, selection: &Resend, now: OffsetDateTime) -> Result<u64, InfraError> {
        const AGAIN: &str = "status = 'pending', next_attempt_at = $2, round_base = webhook_deliveries.attempts, \
                             lease = NULL";
        let (sql, values): (String, Vec<Value>) = match selection {
            Resend::One(event) => (
                format!(
                    "INSERT INTO webhook_deliveries (event_id, recipient, event_type, occurred_at, status, \
                     next_attempt_at) SELECT e.id, $1, e.type, e.occurred_at, 'pending', $2 FROM events e \
                     WHERE e.id = $3 AND (e.to_partner = $1 OR e.to_distributor = $1) \
                     ON CONFLICT (event_id, recipient) DO UPDATE SET {AGAIN}"
                ),
                vec![recipient.id().into(), millis(now).into(), event.as_str().into()],
            ),
            Resend::Range { since, until, status: None } => (
                format!(
                    "INSERT INTO webhook_deliveries (event_id, recipient, event_type, occurred_at, status, \
                     next_attempt_at) SELECT e.id, $1, e.type, e.occurred_at, 'pending', $2 FROM events e \
                     WHERE (e.to_partner = $1 OR e.to_distributor = $1) AND e.occurred_at >= $3 \
                     AND e.occurred_at < $4 ON CONFLICT (event_id, recipient) DO UPDATE SET {AGAIN}"
                ),
                vec![recipient.id().into(), millis(now).into(), millis(*since).into(), millis(*until).into()],
            ),
            Resend::Range { since, until, status: Some(status) } => (
                format!(
                    "UPDATE webhook_deliveries SET {AGAIN} WHERE recipient = $1 AND status = $3 \
                     AND occurred_at >= $4 AND occurred_at < $5"
                ),
                vec![
                    recipient.id().into(),
                    millis(now).into(),
                    status.as_str().into(),
                    millis(*since).into(),
                    millis(*until).into(),
                ],
            ),
        };
        let done = self.db.writer().execute_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
        Ok(done.rows_affected())
    }

    async fn delivery(&self, recipient: &Recipient, event: &EventId) -> Result<Option<Delivery>, InfraError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE recipient = $1 AND event_id = $2");
        let row = DeliveryRow::find_by_statement(self.db.stmt(&sql, [recipient.id().into(), event.as_str().into()]))
            .one(self.db.writer())
            .await
            .map_err(infra)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.with_attempts(self.db.writer(), recipient, vec![row]).await?.pop())
    }
}

#[async_trait]
impl DeliveryQueue for Store {
    async fn claim(
        &self,
        lease: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        max: u32,
    ) -> Result<Vec<ClaimedDelivery>, InfraError> {
        const DETAILS: &str = "e.type AS event_type, e.occurred_at, e.data, w.url, w.secret, w.previous_secret, \
                               w.previous_secret_until";
        let postgres = self.db.backend() == DbBackend::Postgres;
        let skip_locked = if postgres { " FOR UPDATE OF d SKIP LOCKED" } else { "" };
        let update = format!(
            "UPDATE webhook_deliveries SET lease = $1, next_attempt_at = $2 \
             WHERE (event_id, recipient) IN ( \
               SELECT d.event_id, d.recipient FROM webhook_deliveries d \
               WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $3 \
                 AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.recipient = d.recipient \
                             AND w.disabled_at IS NULL) \
               ORDER BY d.next_attempt_at LIMIT $4{skip_locked}) \
             RETURNING event_id, recipient, attempts, round_base"
        );
        let values = vec![lease.into(), millis(lease_until).into(), millis(now).into(), i64::from(max).into()];
        let rows = if postgres {
            // One round trip: the claim and what the attempts need.
            let sql = format!(
                "WITH taken AS ({update}) SELECT t.event_id, t.recipient, t.attempts, t.round_base, {DETAILS} \
                 FROM taken t JOIN events e ON e.id = t.event_id JOIN webhook_endpoints w ON w.recipient = t.recipient"
            );
            ClaimRow::find_by_statement(self.db.stmt(&sql, values)).all(self.db.writer()).await.map_err(infra)?
        } else {
            // SQLite has no UPDATE in a WITH: claim, then read the claimed rows by primary key.
            let taken = self.db.writer().query_all_raw(self.db.stmt(&update, values)).await.map_err(infra)?;
            if taken.is_empty() {
                return Ok(Vec::new());
            }
            let mut ids: Vec<String> = Vec::with_capacity(taken.len());
            let mut recipients: Vec<String> = Vec::with_capacity(taken.len());
            for row in &taken {
                ids.push(row.try_get_by_index(0).map_err(infra)?);
                recipients.push(row.try_get_by_index(1).map_err(infra)?);
            }
            let n = ids.len();
            let sql = format!(
                "SELECT d.event_id, d.recipient, d.attempts, d.round_base, {DETAILS} \
                 FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
                 JOIN webhook_endpoints w ON w.recipient = d.recipient \
                 WHERE d.event_id IN ({}) AND d.recipient IN ({}) AND d.lease = ${}",
                placeholders(1, n),
                placeholders(n + 1, n),
                2 * n + 1
            );
            let values = ids.into_iter().chain(recipients).map(Value::from).chain([Value::from(lease)]);
            ClaimRow::find_by_statement(self.db.stmt(&sql, values)).all(self.db.writer()).await.map_err(infra)?
        };
        rows.into_iter()
            .map(|row| {
                let mut secrets = vec![WebhookSecret::from_stored(row.secret)];
                if let (Some(old), Some(until)) = (row.previous_secret, row.previous_secret_until)
                    && until > millis(now)
                {
                    secrets.push(WebhookSecret::from_stored(old));
                }
                let attempts = u32::try_from(row.attempts).map_err(corrupt)?;
                let round_base = u32::try_from(row.round_base).map_err(corrupt)?;
                Ok(ClaimedDelivery {
                    event_id: EventId::parse(&row.event_id).map_err(corrupt)?,
                    event_type: EventType::parse(&row.event_type).ok_or_else(|| corrupt(&row.event_type))?,
                    occurred_at: from_millis(row.occurred_at)?,
                    data: row.data,
                    recipient: Recipient::parse(&row.recipient).map_err(corrupt)?,
                    url: WebhookUrl::from_stored(row.url),
                    secrets,
                    attempt: attempts + 1,
                    round_attempt: attempts.saturating_sub(round_base),
                    lease: lease.to_owned(),
                })
            })
            .collect()
    }

    async fn finish(
        &self,
        claimed: &ClaimedDelivery,
        attempt: &DeliveryAttempt,
        disable_endpoint: bool,
    ) -> Result<bool, InfraError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        let recipient: Value = claimed.recipient.id().into();
        let sql = "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
                   lease = NULL WHERE event_id = $3 AND recipient = $4 AND lease = $5";
        let values = [
            attempt.status.as_str().into(),
            attempt.next_retry_at.map(millis).into(),
            claimed.event_id.as_str().into(),
            recipient.clone(),
            claimed.lease.as_str().into(),
        ];
        let done = txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        if done.rows_affected() != 1 {
            txn.rollback().await.map_err(infra)?;
            return Ok(false);
        }
        let sql = "INSERT INTO webhook_attempts (event_id, recipient, attempt, attempted_at, http_status, latency_ms, \
                   error, status, next_retry_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let values = [
            claimed.event_id.as_str().into(),
            recipient.clone(),
            i32::try_from(attempt.attempt).unwrap_or(i32::MAX).into(),
            millis(attempt.attempted_at).into(),
            attempt.http_status.map(i32::from).into(),
            i32::try_from(attempt.latency_ms).unwrap_or(i32::MAX).into(),
            attempt.error.clone().into(),
            attempt.status.as_str().into(),
            attempt.next_retry_at.map(millis).into(),
        ];
        txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        if disable_endpoint {
            let reason = format!("the endpoint answered 410 Gone at attempt {}", attempt.attempt);
            let sql = "UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = $2 WHERE recipient = $3";
            let values = [millis(attempt.attempted_at).into(), reason.into(), recipient.clone()];
            txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
            let sql = "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, lease = NULL \
                       WHERE recipient = $1 AND status IN ('pending', 'retrying')";
            txn.execute_raw(self.db.stmt(sql, [recipient])).await.map_err(infra)?;
        }
        txn.commit().await.map_err(infra)?;
        Ok(true)
    }
}
