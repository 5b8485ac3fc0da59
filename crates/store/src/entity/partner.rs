use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "partners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub distributor_id: Option<String>,
    pub company: String,
    pub email: String,
    pub name: String,
    pub plan: String,
    pub status: String,
    pub billing_currency: String,
    pub billing_interval: String,
    pub period_start: i64,
    pub period_end: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
