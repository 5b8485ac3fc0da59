use std::sync::Arc;

use crate::account::AccountStatus;
use crate::keys::{ApiKey, KeyKind};
use crate::ports::{InfraError, KeyRepository, Principal};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown, revoked, malformed, or a key of another kind.
    #[error("the API key is invalid or has been revoked")]
    InvalidKey,
    #[error("the partner account is suspended or pending activation")]
    PartnerInactive,
    #[error("the distributor account is suspended or pending activation")]
    DistributorInactive,
    #[error("the worker is disabled")]
    WorkerInactive,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// Turns a presented key into the account it stands for. Nothing is cached: a revoke or a
/// suspension takes effect on the very next request, in every process.
pub struct AuthService {
    keys: Arc<dyn KeyRepository>,
}

impl AuthService {
    pub fn new(keys: Arc<dyn KeyRepository>) -> Self {
        Self { keys }
    }

    /// Authenticates `raw`, presented in the header of `kind`.
    pub async fn authenticate(&self, kind: KeyKind, raw: &str) -> Result<Principal, AuthError> {
        let key = ApiKey::presented(kind, raw).ok_or(AuthError::InvalidKey)?;
        let hash = key.hash();
        let principal = self.keys.find_principal(&hash).await?.ok_or(AuthError::InvalidKey)?;
        if !principal.stored_hash.constant_time_eq(&hash) || principal.owner.kind() != kind {
            return Err(AuthError::InvalidKey);
        }
        if principal.owner_status != AccountStatus::Active {
            return Err(match kind {
                KeyKind::Partner => AuthError::PartnerInactive,
                KeyKind::Distributor => AuthError::DistributorInactive,
                KeyKind::Worker => AuthError::WorkerInactive,
            });
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PartnerId;
    use crate::keys::{KeyOwner, KeySlot};
    use crate::ports::MockKeyRepository;

    fn partner() -> PartnerId {
        PartnerId::parse("prt_000000000000000000000001").unwrap()
    }

    fn repo_returning(principal: Option<Principal>) -> AuthService {
        let mut keys = MockKeyRepository::new();
        keys.expect_find_principal().returning(move |_| Ok(principal.clone()));
        AuthService::new(Arc::new(keys))
    }

    fn principal(raw: &str, owner: KeyOwner, status: AccountStatus) -> Principal {
        let kind = owner.kind();
        Principal {
            owner,
            slot: KeySlot::FIRST,
            stored_hash: ApiKey::presented(kind, raw).unwrap().hash(),
            owner_status: status,
        }
    }

    #[tokio::test]
    async fn an_active_partner_key_authenticates() {
        let p = principal("pk_live_abc", KeyOwner::Partner(partner()), AccountStatus::Active);
        let auth = repo_returning(Some(p.clone()));
        assert_eq!(auth.authenticate(KeyKind::Partner, "pk_live_abc").await.unwrap(), p);
    }

    #[tokio::test]
    async fn a_key_of_another_kind_is_invalid_without_a_lookup() {
        let mut keys = MockKeyRepository::new();
        keys.expect_find_principal().never();
        let auth = AuthService::new(Arc::new(keys));
        let err = auth.authenticate(KeyKind::Partner, "dk_live_abc").await.unwrap_err();
        assert!(matches!(err, AuthError::InvalidKey));
    }

    #[tokio::test]
    async fn unknown_keys_are_invalid() {
        let auth = repo_returning(None);
        let err = auth.authenticate(KeyKind::Partner, "pk_live_nope").await.unwrap_err();
        assert!(matches!(err, AuthError::InvalidKey));
    }

    #[tokio::test]
    async fn inactive_accounts_are_refused_with_their_kind() {
        let p = principal("pk_live_abc", KeyOwner::Partner(partner()), AccountStatus::Pending);
        let err = repo_returning(Some(p)).authenticate(KeyKind::Partner, "pk_live_abc").await.unwrap_err();
        assert!(matches!(err, AuthError::PartnerInactive));
    }

    #[tokio::test]
    async fn a_stored_hash_that_differs_is_refused() {
        let mut p = principal("pk_live_abc", KeyOwner::Partner(partner()), AccountStatus::Active);
        p.stored_hash = ApiKey::presented(KeyKind::Partner, "pk_live_other").unwrap().hash();
        let err = repo_returning(Some(p)).authenticate(KeyKind::Partner, "pk_live_abc").await.unwrap_err();
        assert!(matches!(err, AuthError::InvalidKey));
    }
}
