//! `partnerd admin …`: operator commands that print one JSON object.

use partnerd_domain::account::IllegalTransition;
use partnerd_domain::services::{AdminError, NewPartner};
use partnerd_http::dto::timestamp;
use serde_json::{Value, json};

use crate::cli::AdminCommand;
use crate::wiring::Platform;

pub async fn run(platform: &Platform, command: AdminCommand) -> Result<Value, AdminError> {
    let admin = platform.admin();
    Ok(match command {
        AdminCommand::CreateDistributor { company, email } => {
            let (d, key) = admin.create_distributor(&company, &email).await?;
            json!({
                "id": d.id.to_string(), "company": d.company.as_str(), "email": d.email.as_str(),
                "status": d.status.as_str(), "key": key.reveal(), "createdAt": timestamp(d.created_at),
            })
        }
        AdminCommand::CreatePartner { company, email, name, plan, distributor, currency, interval } => {
            let new = NewPartner { company, email, name, plan, distributor, currency, interval };
            let (p, key) = admin.create_partner(new).await?;
            json!({
                "id": p.id.to_string(), "company": p.company.as_str(), "email": p.email.as_str(),
                "name": p.name.as_str(), "plan": p.plan().as_str(), "status": p.status.as_str(),
                "distributorId": p.distributor_id.map(|d| d.to_string()),
                "billing": {"currency": p.subscription.currency.code(), "interval": p.subscription.interval.as_str()},
                "key": key.reveal(), "createdAt": timestamp(p.created_at),
            })
        }
        AdminCommand::CreateWorker { name } => {
            let (w, key) = admin.create_worker(&name).await?;
            json!({"id": w.id.to_string(), "name": w.name.as_str(), "key": key.reveal(), "createdAt": timestamp(w.created_at)})
        }
        // Repeating a suspension or an activation is not an error for the operator: the
        // distributor ends in the state asked for.
        AdminCommand::SuspendDistributor { id } => match admin.suspend_distributor(&id).await {
            Ok(d) => json!({"id": d.id.to_string(), "status": d.status.as_str()}),
            Err(AdminError::IllegalTransition(IllegalTransition::AlreadySuspended)) => {
                json!({"id": id, "status": "suspended"})
            }
            Err(e) => return Err(e),
        },
        AdminCommand::SetDistributorDiscount { id, percent } => {
            let percent = (percent != "default").then_some(percent.as_str());
            let discount = admin.set_distributor_discount(&id, percent).await?;
            json!({"id": id, "discountPercent": discount.value().to_string()})
        }
        AdminCommand::ActivateDistributor { id } => match admin.activate_distributor(&id).await {
            Ok(d) => json!({"id": d.id.to_string(), "status": d.status.as_str()}),
            Err(AdminError::IllegalTransition(IllegalTransition::AlreadyActive)) => {
                json!({"id": id, "status": "active"})
            }
            Err(e) => return Err(e),
        },
    })
}

/// The JSON an admin command prints on stderr when it fails.
pub fn error_json(e: &AdminError) -> Value {
    let code = match e {
        AdminError::InvalidField { .. } => "INVALID_FIELD",
        AdminError::DistributorNotFound(_) => "NOT_FOUND",
        AdminError::IllegalTransition(_) => "INVALID_STATE",
        AdminError::Internal(_) => "INTERNAL",
    };
    json!({"error": {"code": code, "message": e.to_string()}})
}
