//! The outbox: events are inserted inside the transaction of the change that causes them.

use partnerd_domain::event::{Event, EventValue};
use partnerd_domain::ports::InfraError;
use sea_orm::{ConnectionTrait, DatabaseTransaction};

use crate::convert::{infra, millis};
use crate::db;

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

/// Records every event in the outbox as part of `txn`.
pub(crate) async fn record_all(txn: &DatabaseTransaction, events: &[Event]) -> Result<(), InfraError> {
    for event in events {
        record(txn, event).await?;
    }
    Ok(())
}

/// Records `event` in the outbox as part of `txn`.
pub(crate) async fn record(txn: &DatabaseTransaction, event: &Event) -> Result<(), InfraError> {
    let sql =
        "INSERT INTO events (id, type, to_partner, to_distributor, data, occurred_at) VALUES ($1, $2, $3, $4, $5, $6)";
    let values = [
        event.id.as_str().into(),
        event.event_type.as_str().into(),
        event.to_partner.as_ref().map(ToString::to_string).into(),
        event.to_distributor.as_ref().map(ToString::to_string).into(),
        data_json(event).into(),
        millis(event.occurred_at).into(),
    ];
    txn.execute_raw(db::stmt(txn.get_database_backend(), sql, values)).await.map_err(infra)?;
    Ok(())
}
