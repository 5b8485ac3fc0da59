use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner_id: String,
    pub customer_id: String,
    pub product: String,
    pub maturity_target: i16,
    pub status: String,
    pub month: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub score: Option<i16>,
    pub critical: Option<i64>,
    pub high: Option<i64>,
    pub medium: Option<i64>,
    pub low: Option<i64>,
    pub report_url: Option<String>,
    pub failure_reason: Option<String>,
    pub attempts: i16,
    pub lease_worker_id: Option<String>,
    pub lease_expires_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
