//! sea-orm entities: the tables as rows. Private to the store; repositories convert them to
//! domain types at the edge.

pub(crate) mod customer;
pub(crate) mod distributor;
pub(crate) mod partner;
pub(crate) mod run;
pub(crate) mod worker;
