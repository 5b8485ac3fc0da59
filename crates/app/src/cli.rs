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
    /// Executes queued runs: claims them from a server over the worker protocol and runs a
    /// command (your scanner) once per run, with the run's JSON on stdin and its result JSON
    /// read from stdout. Stops claiming on SIGINT/SIGTERM and lets running commands finish.
    Worker(WorkerArgs),
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

    /// How often this process writes the API requests it counted to the database (`500ms`,
    /// `5s`, `1m`): usage reports lag by up to this much, and a crash loses at most this much
    /// counting.
    #[arg(long, env = "PARTNERD_REQUEST_COUNT_FLUSH", default_value = "5s", value_parser = parse_positive_duration)]
    pub request_count_flush: Duration,

    /// How often this process issues the invoices that are due (`30s`, `1m`, `1h`): a partner's
    /// first invoice once it is active, each renewal's when a period ends, and distributors'
    /// monthly ones. Several processes may run it at once; each invoice is issued once.
    #[arg(long, env = "PARTNERD_INVOICE_INTERVAL", default_value = "1m", value_parser = parse_positive_duration)]
    pub invoice_interval: Duration,

    #[command(flatten)]
    pub webhooks: WebhookArgs,

    #[command(flatten)]
    pub billing: BillingArgs,
}

/// Which billing provider puts plan changes into effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BillingProviderKind {
    /// partnerd's own ledger: proration becomes invoice items, and partnerd issues the invoices.
    Ledger,
    /// A Stripe-compatible API: Stripe prorates and issues the partners' invoices; partnerd's
    /// invoicing task does not run.
    Stripe,
}

#[derive(Debug, Args)]
pub struct BillingArgs {
    #[arg(long = "billing-provider", env = "PARTNERD_BILLING_PROVIDER", value_enum, default_value = "ledger")]
    pub provider: BillingProviderKind,

    /// The Stripe-compatible API's base URL (plain http only to a loopback address).
    #[arg(long = "stripe-api-base", env = "PARTNERD_STRIPE_API_BASE", default_value = "https://api.stripe.com")]
    pub stripe_api_base: String,

    /// The secret API key (`sk_…`). Set it in the environment, not on the command line, where
    /// other users of the machine can read it.
    #[arg(long = "stripe-secret-key", env = "PARTNERD_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
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
    #[arg(long = "webhook-timeout", env = "PARTNERD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Deliveries this process sends at once.
    #[arg(long = "webhook-concurrency", env = "PARTNERD_WEBHOOK_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

/// `partnerd worker`.
#[derive(Args)]
pub struct WorkerArgs {
    /// The partnerd server's base URL, e.g. `https://partnerd.example.com`.
    #[arg(long, env = "PARTNERD_WORKER_SERVER", value_parser = parse_server_url)]
    pub server: String,

    /// The worker key (`wk_live_…`) from `partnerd admin create-worker`. Prefer the environment
    /// variable: a flag shows up in `ps`.
    #[arg(long, env = "PARTNERD_WORKER_KEY", hide_env_values = true)]
    pub key: String,

    /// Products this worker executes, comma-separated (e.g. `essential-eight,nist-csf`);
    /// omit for any product.
    #[arg(long, env = "PARTNERD_WORKER_PRODUCTS", value_delimiter = ',')]
    pub products: Vec<String>,

    /// The command run once per run, through `sh -c` (so it may carry arguments): the run's JSON
    /// on stdin, one result JSON object on stdout, exit 0. See docs/workers.md.
    #[arg(long, env = "PARTNERD_WORKER_EXEC")]
    pub exec: String,

    /// Runs executed at once (each runs its own command).
    #[arg(long, env = "PARTNERD_WORKER_CONCURRENCY", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// How long a claim holds a run without a heartbeat (10–3600); heartbeats go every third of it.
    #[arg(long, env = "PARTNERD_WORKER_LEASE_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(10..=3600))]
    pub lease_seconds: u32,

    /// Longest one command may run (`90s`, `30m`, `2h`); past it the command is killed and the
    /// run fails.
    #[arg(long, env = "PARTNERD_WORKER_TIMEOUT", default_value = "30m", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// How long an idle worker waits before asking again when nothing is queued.
    #[arg(long, env = "PARTNERD_WORKER_POLL_INTERVAL", default_value = "2s", value_parser = parse_positive_duration)]
    pub poll_interval: Duration,
}

// By hand, so that the key never reaches a log or a panic message.
impl std::fmt::Debug for WorkerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerArgs")
            .field("server", &self.server)
            .field("key", &"<redacted>")
            .field("products", &self.products)
            .field("exec", &self.exec)
            .field("concurrency", &self.concurrency)
            .field("lease_seconds", &self.lease_seconds)
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

/// An absolute `http(s)` URL with a host; kept without its trailing `/`.
fn parse_server_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| format!("'{raw}' is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(format!("'{raw}' names no host"));
    }
    Ok(trimmed.to_owned())
}

fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match parse_duration(raw)? {
        d if d.is_zero() => Err(format!("'{raw}' must be longer than zero")),
        d => Ok(d),
    }
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
    /// Sets the percentage taken off a distributor's future invoices (issued ones keep theirs).
    SetDistributorDiscount {
        #[arg(long)]
        id: String,
        /// A percentage from 0 to 100 (`12.5`), or `default` for the default (20).
        #[arg(long)]
        percent: String,
    },
}

fn parse_currency(raw: &str) -> Result<Currency, String> {
    raw.parse().map_err(|e: partnerd_domain::values::InvalidValue| e.reason.to_owned())
}

fn parse_interval(raw: &str) -> Result<BillingInterval, String> {
    raw.parse().map_err(|e: partnerd_domain::values::InvalidValue| e.reason.to_owned())
}

/// A webhook timeout: a duration from 1 s to 5 min.
fn parse_timeout(raw: &str) -> Result<Duration, String> {
    let timeout = parse_duration(raw)?;
    if (Duration::from_secs(1)..=Duration::from_secs(300)).contains(&timeout) {
        Ok(timeout)
    } else {
        Err(format!("'{raw}' must be from 1s to 5m"))
    }
}
