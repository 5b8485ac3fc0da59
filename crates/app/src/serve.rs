//! `partnerd serve` and `partnerd quickstart`.

use std::net::TcpListener;

use anyhow::Context;
use partnerd_domain::keys::{ApiKey, KeyOwner};
use partnerd_domain::services::NewPartner;
use partnerd_domain::values::{BillingInterval, Currency};
use partnerd_http::{HttpConfig, RateLimits};
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::wiring::{Platform, redact_url};

/// Binds, announces the address on stdout (`listening on http://…`), and serves until a signal.
pub async fn serve(platform: Platform, args: &ServeArgs, listener: TcpListener) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let config = HttpConfig {
        require_https: args.require_https,
        workers: args.http_workers,
        rate_limits: RateLimits {
            partner: args.partner_rate_limit,
            distributor: args.distributor_rate_limit,
            worker: args.worker_rate_limit,
        },
    };
    let server = partnerd_http::build(listener, platform.app_state(args.webhooks.allow_private), config)?;
    let (stop_dispatcher, stopped) = watch::channel(false);
    let dispatcher = tokio::spawn(platform.dispatcher(&args.webhooks)?.run(stopped));
    tracing::info!(%addr, database = %redact_url(&args.database.database_url), backend = platform.store.backend_name(), "serving");
    println!("listening on http://{addr}");
    let served = server.await;
    // Attempts in flight finish (each within the webhook timeout) and record their outcome.
    let _ = stop_dispatcher.send(true);
    let _ = dispatcher.await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

pub fn bind(args: &ServeArgs) -> anyhow::Result<TcpListener> {
    TcpListener::bind(args.bind).with_context(|| format!("binding {}", args.bind))
}

const DEMO_DISTRIBUTOR_EMAIL: &str = "ops@demo-distributor.example";
const DEMO_PARTNER_EMAIL: &str = "admin@demo-msp.example";
const DEMO_WORKER_NAME: &str = "demo-worker";

struct DemoKeys {
    distributor: ApiKey,
    partner: ApiKey,
    worker: ApiKey,
}

/// Finds or creates the demo accounts. Keys are stored only as hashes, so accounts that already
/// exist get fresh keys (their old ones stop working).
async fn demo_accounts(platform: &Platform) -> anyhow::Result<DemoKeys> {
    let admin = platform.admin();
    let (distributor_id, distributor) = match admin.find_distributor_by_email(DEMO_DISTRIBUTOR_EMAIL).await? {
        Some(d) => (d.id.clone(), admin.reissue_key(&KeyOwner::Distributor(d.id)).await?),
        None => {
            let (d, key) = admin.create_distributor("Demo Distributor", DEMO_DISTRIBUTOR_EMAIL).await?;
            (d.id, key)
        }
    };
    let partner = match admin.find_partner_by_email(DEMO_PARTNER_EMAIL).await? {
        Some(p) => admin.reissue_key(&KeyOwner::Partner(p.id)).await?,
        None => {
            let new = NewPartner {
                company: "Demo MSP".into(),
                email: DEMO_PARTNER_EMAIL.into(),
                name: "Demo Admin".into(),
                plan: "professional".into(),
                distributor: Some(distributor_id.to_string()),
                currency: Currency::Usd,
                interval: BillingInterval::Monthly,
            };
            admin.create_partner(new).await?.1
        }
    };
    let worker = match admin.find_worker_by_name(DEMO_WORKER_NAME).await? {
        Some(w) => admin.reissue_key(&KeyOwner::Worker(w.id)).await?,
        None => admin.create_worker(DEMO_WORKER_NAME).await?.1,
    };
    Ok(DemoKeys { distributor, partner, worker })
}

pub async fn quickstart(args: &ServeArgs) -> anyhow::Result<()> {
    let platform = Platform::open(&args.database).await?;
    let keys = demo_accounts(&platform).await?;
    let listener = bind(args)?;
    let base = format!("http://{}", listener.local_addr()?);
    println!(
        "partnerd quickstart — database {db}\n\n\
         Demo keys (shown once; running quickstart again issues new ones):\n  \
         distributor  {d}\n  partner      {p}\n  worker       {w}\n\n\
         Try, in another terminal:\n  \
         curl -s {base}/v1/partner/me -H \"X-Partner-Key: {p}\"\n  \
         curl -s {base}/v1/distributor/me -H \"X-Distributor-Key: {d}\"\n  \
         curl -s {base}/openapi.json\n",
        db = redact_url(&args.database.database_url),
        d = keys.distributor.reveal(),
        p = keys.partner.reveal(),
        w = keys.worker.reveal(),
    );
    serve(platform, args, listener).await
}
