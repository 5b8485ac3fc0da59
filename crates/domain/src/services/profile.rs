use std::sync::Arc;

use crate::account::{Distributor, Partner};
use crate::catalog::{Catalog, RunLimit};
use crate::ids::{DistributorId, PartnerId};
use crate::ports::{Clock, DistributorRepository, DistributorTotals, InfraError, PartnerRepository};
use crate::values::Month;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("account not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// A partner's usage this month against its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSummary {
    pub month: Month,
    pub runs_used: u64,
    pub runs_limit: RunLimit,
    pub customers_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerProfile {
    pub partner: Partner,
    pub usage: UsageSummary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributorProfile {
    pub distributor: Distributor,
    pub month: Month,
    pub totals: DistributorTotals,
}

/// Account profiles with live usage counters (`GET …/me`).
pub struct ProfileService {
    partners: Arc<dyn PartnerRepository>,
    distributors: Arc<dyn DistributorRepository>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
}

impl ProfileService {
    pub fn new(
        partners: Arc<dyn PartnerRepository>,
        distributors: Arc<dyn DistributorRepository>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { partners, distributors, catalog, clock }
    }

    pub async fn partner(&self, id: &PartnerId) -> Result<PartnerProfile, ProfileError> {
        let partner = self.partners.get(id).await?.ok_or(ProfileError::NotFound)?;
        let month = Month::containing(self.clock.now());
        let usage = self.partners.usage(id, month).await?;
        // A plan removed from the catalog after the partner chose it keeps no allowance.
        let runs_limit = self.catalog.plan(partner.plan()).map_or(RunLimit::Limited(0), |p| p.run_limit);
        Ok(PartnerProfile {
            partner,
            usage: UsageSummary {
                month,
                runs_used: usage.runs_used,
                runs_limit,
                customers_count: usage.customers_count,
            },
        })
    }

    pub async fn distributor(&self, id: &DistributorId) -> Result<DistributorProfile, ProfileError> {
        let distributor = self.distributors.get(id).await?.ok_or(ProfileError::NotFound)?;
        let month = Month::containing(self.clock.now());
        let totals = self.distributors.totals(id, month).await?;
        Ok(DistributorProfile { distributor, month, totals })
    }
}
