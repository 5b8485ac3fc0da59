//! The command line. Every flag has a `PARTNERD_*` environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use partnerd_domain::values::{BillingInterval, Currency};
use partnerd_domain::webhook::{RetrySchedule, parse_duration};

#[derive(Debug, Parser)]
#[command(name = "partnerd", version, about = "Channel-partner platform server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr.
    #[arg(long, env = "PARTNERD_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Brings the database schema up to date, then serves the API.
    Serve(ServeArgs),
    /// Brings the database schema up to date and exits.
    Migrate(DatabaseArgs),
    /// Operator commands; each prints one JSON object on stdout.
    Admin(AdminArgs),
    /// Creates (or reuses) demo accounts — a distributor, a partner and a worker — in the database
    /// (by default the SQLite file partnerd.db), prints fresh keys and curl commands that work as
    /// printed, then serves.
    Quickstart(ServeArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// `sqlite://FILE` (or a plain path), or `postgres://user@host:5432/db`.
    #[arg(long, env = "PARTNERD_DATABASE_URL", default_value = "sqlite://partnerd.db", global = true)]
    pub database_url: String,

    /// Most database connections this process opens (readers on SQLite, all on PostgreSQL).
    #[arg(long, env = "PARTNERD_DATABASE_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub database_max_connections: u32,

    /// A catalog TOML file replacing the built-in products and plans.
    #[arg(long, env = "PARTNERD_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, env = "PARTNERD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Refuse requests whose X-Forwarded-Proto is not https (TLS ends at your proxy).
    #[arg(long, env = "PARTNERD_REQUIRE_HTTPS", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub require_https: bool,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "PARTNERD_HTTP_WORKERS")]
    pub http_workers: Option<usize>,

    /// Requests per minute per partner key (0 turns the limit off, for load tests).
    #[arg(long, env = "PARTNERD_PARTNER_RATE_LIMIT", default_value_t = 60)]
    pub partner_rate_limit: u32,

    /// Requests per minute per distributor key (0 turns the limit off).
    #[arg(long, env = "PARTNERD_DISTRIBUTOR_RATE_LIMIT", default_value_t = 120)]
    pub distributor_rate_limit: u32,

    /// Requests per minute per worker key (0 turns the limit off).
    #[arg(long, env = "PARTNERD_WORKER_RATE_LIMIT", default_value_t = 600)]
    pub worker_rate_limit: u32,

    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Webhook delivery (every `serve` process runs one dispatcher; they share the queue).
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Waits between delivery attempts; when they are used up the delivery is `failed`.
    #[arg(
        long = "webhook-retry-schedule",
        env = "PARTNERD_WEBHOOK_RETRY_SCHEDULE",
        default_value = "1m,5m,30m,2h,12h",
        value_parser = RetrySchedule::parse
    )]
    pub retry_schedule: RetrySchedule,

    /// Let webhook URLs use http and reach loopback and private addresses (tests and closed
    /// networks only).
    #[arg(
        long = "webhook-allow-private",
        env = "PARTNERD_WEBHOOK_ALLOW_PRIVATE",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub allow_private: bool,

    /// Longest one delivery attempt may take (the reference's 10 s).
    #[arg(long = "webhook-timeout", env = "PARTNERD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Deliveries this process sends at once.
    #[arg(long = "webhook-concurrency", env = "PARTNERD_WEBHOOK_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Creates an active distributor and prints its id and key (shown once).
    CreateDistributor {
        #[arg(long)]
        company: String,
        #[arg(long)]
        email: String,
    },
    /// Creates an active partner and prints its id and key (shown once).
    CreatePartner {
        #[arg(long)]
        company: String,
        #[arg(long)]
        email: String,
        /// The admin contact's name.
        #[arg(long)]
        name: String,
        /// A plan from the catalog: starter, professional, enterprise.
        #[arg(long)]
        plan: String,
        /// The distributor that manages this partner (omit for a direct partner).
        #[arg(long)]
        distributor: Option<String>,
        #[arg(long, default_value = "USD", value_parser = parse_currency)]
        currency: Currency,
        #[arg(long, default_value = "quarterly", value_parser = parse_interval)]
        interval: BillingInterval,
    },
    /// Creates a worker (a scanner) and prints its id and key (shown once).
    CreateWorker {
        #[arg(long)]
        name: String,
    },
    /// Suspends a distributor: its key gets 403 DISTRIBUTOR_INACTIVE; its partners keep working.
    SuspendDistributor {
        #[arg(long)]
        id: String,
    },
    /// Reactivates a suspended distributor.
    ActivateDistributor {
        #[arg(long)]
        id: String,
    },
}

fn parse_currency(raw: &str) -> Result<Currency, String> {
    raw.parse().map_err(|e: partnerd_domain::values::InvalidValue| e.reason.to_owned())
}

fn parse_interval(raw: &str) -> Result<BillingInterval, String> {
    raw.parse().map_err(|e: partnerd_domain::values::InvalidValue| e.reason.to_owned())
}
