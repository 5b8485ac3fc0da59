//! The outbox: events are inserted inside the transaction of the change that causes them, and
//! so is the delivery of each to every enabled webhook endpoint it is addressed to.

use partnerd_domain::event::{Event, EventValue};
use partnerd_domain::ports::InfraError;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};

use crate::convert::{infra, millis};
use crate::db;

/// Events per statement: well under both back-ends' limits on bound values.
const CHUNK: usize = 200;

/// The event's data as a JSON object.
pub(crate) fn data_json(event: &Event) -> String {
    let fields = event.data.iter().map(|(k, v)| {
        let value = match v {
            EventValue::Null => serde_json::Value::Null,
            EventValue::Text(s) => serde_json::Value::String(s.clone()),
            EventValue::Int(n) => serde_json::Value::from(*n),
        };
        (k.clone(), value)
    });
    serde_json::Value::Object(fields.collect()).to_string()
}

/// Records `event` in the outbox as part of `txn`.
pub(crate) async fn record(txn: &DatabaseTransaction, event: &Event) -> Result<(), InfraError> {
    record_all(txn, std::slice::from_ref(event)).await
}

/// Records every event in the outbox as part of `txn`, and queues its deliveries: two
/// statements per chunk of events, whatever their number.
pub(crate) async fn record_all(txn: &DatabaseTransaction, events: &[Event]) -> Result<(), InfraError> {
    let backend = txn.get_database_backend();
    for chunk in events.chunks(CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
        for (i, event) in chunk.iter().enumerate() {
            rows.push(format!("({})", db::placeholders(i * 6 + 1, 6)));
            values.extend([
                event.id.as_str().into(),
                event.event_type.as_str().into(),
                event.to_partner.as_ref().map(ToString::to_string).into(),
                event.to_distributor.as_ref().map(ToString::to_string).into(),
                data_json(event).into(),
                millis(event.occurred_at).into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO events (id, type, to_partner, to_distributor, data, occurred_at) VALUES {}",
            rows.join(", ")
        );
        txn.execute_raw(db::stmt(backend, &sql, values)).await.map_err(infra)?;

        let sql = format!(
            "INSERT INTO webhook_deliveries (event_id, recipient, event_type, occurred_at, status, next_attempt_at) \
             SELECT e.id, w.recipient, e.type, e.occurred_at, 'pending', e.occurred_at \
             FROM events e JOIN webhook_endpoints w \
               ON (w.recipient = e.to_partner OR w.recipient = e.to_distributor) AND w.disabled_at IS NULL \
             WHERE e.id IN ({})",
            db::placeholders(1, chunk.len())
        );
        let ids = chunk.iter().map(|e| Value::from(e.id.as_str()));
        txn.execute_raw(db::stmt(backend, &sql, ids)).await.map_err(infra)?;
    }
    Ok(())
}
