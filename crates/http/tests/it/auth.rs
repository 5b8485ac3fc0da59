use partnerd_domain::account::AccountStatus;
use partnerd_domain::keys::{ApiKey, KeyKind, KeyOwner};
use partnerd_domain::ports::KeyRepository;

use crate::support::{NOW, TestApp, assert_error};

#[tokio::test]
async fn no_key_is_missing_key_naming_the_header() {
    let app = TestApp::start().await;
    let res = app.client.get(app.url("/v1/partner/me")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let message = assert_error(&res.json().await.unwrap(), "MISSING_KEY");
    assert!(message.contains("X-Partner-Key"), "{message}");
    let res = app.client.get(app.url("/v1/distributor/me")).send().await.unwrap();
    let message = assert_error(&res.json().await.unwrap(), "MISSING_KEY");
    assert!(message.contains("X-Distributor-Key"), "{message}");
}

#[tokio::test]
async fn a_key_in_another_routes_header_is_missing_key() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let (status, body) = app.get("/v1/partner/me", ("X-Distributor-Key", key.reveal())).await;
    assert_eq!(status, 401);
    assert_error(&body, "MISSING_KEY");
}

#[tokio::test]
async fn unknown_malformed_and_wrong_kind_keys_are_invalid_key() {
    let app = TestApp::start().await;
    let (_, distributor_key) = app.distributor(AccountStatus::Active).await;
    let (_, partner_key) = app.partner(None, AccountStatus::Active).await;
    let unknown = ApiKey::generate(KeyKind::Partner, &app.ids);
    for presented in [unknown.reveal(), "pk_live_", "garbage", "", distributor_key.reveal()] {
        let (status, body) = app.get("/v1/partner/me", ("X-Partner-Key", presented)).await;
        assert_eq!(status, 401, "{presented:?}");
        assert_error(&body, "INVALID_KEY");
    }
    let (status, body) = app.get("/v1/distributor/me", ("X-Distributor-Key", partner_key.reveal())).await;
    assert_eq!(status, 401);
    assert_error(&body, "INVALID_KEY");
}

#[tokio::test]
async fn a_revoked_key_fails_the_very_next_request() {
    let app = TestApp::start().await;
    let (partner, old) = app.partner(None, AccountStatus::Active).await;
    assert_eq!(app.get("/v1/partner/me", ("X-Partner-Key", old.reveal())).await.0, 200);
    let fresh = ApiKey::generate(KeyKind::Partner, &app.ids);
    app.store.reissue(&KeyOwner::Partner(partner.id), &fresh.hash(), NOW, &Default::default()).await.unwrap();
    let (status, body) = app.get("/v1/partner/me", ("X-Partner-Key", old.reveal())).await;
    assert_eq!(status, 401);
    assert_error(&body, "INVALID_KEY");
    assert_eq!(app.get("/v1/partner/me", ("X-Partner-Key", fresh.reveal())).await.0, 200);
}

#[tokio::test]
async fn inactive_accounts_are_forbidden_with_their_code() {
    let app = TestApp::start().await;
    for status in [AccountStatus::Pending, AccountStatus::Suspended] {
        let (_, key) = app.partner(None, status).await;
        let (code, body) = app.get("/v1/partner/me", ("X-Partner-Key", key.reveal())).await;
        assert_eq!(code, 403);
        assert_error(&body, "PARTNER_INACTIVE");
        let (_, key) = app.distributor(status).await;
        let (code, body) = app.get("/v1/distributor/me", ("X-Distributor-Key", key.reveal())).await;
        assert_eq!(code, 403);
        assert_error(&body, "DISTRIBUTOR_INACTIVE");
    }
}

#[tokio::test]
async fn a_suspended_distributors_partners_keep_working() {
    use partnerd_domain::ports::DistributorRepository;
    let app = TestApp::start().await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (_, pk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    app.store.set_status(&d.id, AccountStatus::Suspended, NOW).await.unwrap();
    assert_eq!(app.get("/v1/distributor/me", ("X-Distributor-Key", dk.reveal())).await.0, 403);
    assert_eq!(app.get("/v1/partner/me", ("X-Partner-Key", pk.reveal())).await.0, 200);
}
