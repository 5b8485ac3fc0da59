//! The real `partnerd` binary: its `migrate` and `admin` commands, and `serve` on a free
//! loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long `migrate` or an `admin` command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `serve` may take to print `listening on http://…` (migrations included).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const LISTENING_PREFIX: &str = "listening on ";

/// An account created by `partnerd admin create-…`: a partner, a distributor or a worker.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub key: String,
}

/// A partner account (the key goes in `X-Partner-Key`).
pub type Partner = Account;

#[derive(Debug, Clone)]
pub struct Partnerd {
    binary: PathBuf,
}

impl Partnerd {
    pub fn new(binary: &Path) -> Result<Self> {
        if !binary.is_file() {
            bail!("the partnerd binary {} does not exist (cargo xtask bench builds it)", binary.display());
        }
        Ok(Self { binary: binary.to_path_buf() })
    }

    /// A command whose behaviour only its arguments decide: no inherited `PARTNERD_*` or
    /// `RUST_LOG`, and a working directory outside the source tree.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("PARTNERD_") || n == "RUST_LOG" {
                cmd.env_remove(&name);
            }
        }
        cmd.current_dir(std::env::temp_dir()).stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }

    async fn output(&self, args: &[&str]) -> Result<String> {
        let what = format!("partnerd {}", args.first().copied().unwrap_or_default());
        let out = tokio::time::timeout(COMMAND_TIMEOUT, self.command().args(args).output())
            .await
            .with_context(|| format!("{what} took over {COMMAND_TIMEOUT:?}"))?
            .with_context(|| format!("starting {what}"))?;
        if !out.status.success() {
            bail!(
                "{what} failed ({}): stdout {} stderr {}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `partnerd migrate --database-url URL`.
    pub async fn migrate(&self, database_url: &str) -> Result<()> {
        self.output(&["migrate", "--database-url", database_url]).await.map(drop)
    }

    /// `partnerd admin create-partner … --plan enterprise` (unlimited runs), a direct partner.
    pub async fn create_partner(&self, database_url: &str, n: usize) -> Result<Partner> {
        self.create_partner_of(database_url, n, None).await
    }

    /// [`Partnerd::create_partner`], managed by `distributor` when there is one.
    pub async fn create_partner_of(&self, database_url: &str, n: usize, distributor: Option<&str>) -> Result<Partner> {
        let (company, email) = (format!("Bench MSP {n}"), format!("bench{n}@bench-msp.example"));
        let mut args = vec![
            "admin",
            "create-partner",
            "--company",
            &company,
            "--email",
            &email,
            "--name",
            "Bench Admin",
            "--plan",
            "enterprise",
            "--database-url",
            database_url,
        ];
        if let Some(d) = distributor {
            args.extend(["--distributor", d]);
        }
        self.admin_account(&args).await
    }

    /// `partnerd admin create-distributor` (active), named after `n`.
    pub async fn create_distributor(&self, database_url: &str, n: usize) -> Result<Account> {
        let (company, email) = (format!("Bench Distributor {n}"), format!("ops{n}@bench-distributor.example"));
        let args =
            ["admin", "create-distributor", "--company", &company, "--email", &email, "--database-url", database_url];
        self.admin_account(&args).await
    }

    /// `partnerd admin create-worker`; returns the worker's id.
    pub async fn create_worker(&self, database_url: &str, name: &str) -> Result<String> {
        let args = ["admin", "create-worker", "--name", name, "--database-url", database_url];
        Ok(self.admin_account(&args).await?.id)
    }

    /// Runs an `admin create-…` command and reads the `id` and `key` of the JSON it prints.
    async fn admin_account(&self, args: &[&str]) -> Result<Account> {
        let what = args[..2].join(" ");
        let stdout = self.output(args).await?;
        let json: Value = serde_json::from_str(stdout.trim())
            .with_context(|| format!("{what} printed no JSON object: {stdout:?}"))?;
        let field =
            |name: &str| json[name].as_str().map(str::to_owned).with_context(|| format!("no {name:?} in {json}"));
        Ok(Account { id: field("id")?, key: field("key")? })
    }

    /// `partnerd serve --bind 127.0.0.1:0 --partner-rate-limit 0 --distributor-rate-limit 0`
    /// on `database_url`; returns once it prints its address. Its logs (stderr) go to a file.
    pub async fn serve(&self, database_url: &str) -> Result<Server> {
        self.serve_with(database_url, &[]).await
    }

    /// [`Partnerd::serve`] with `extra` arguments after the usual ones (webhook flags).
    pub async fn serve_with(&self, database_url: &str, extra: &[&str]) -> Result<Server> {
        let log_path = std::env::temp_dir().join(format!("partnerd_bench_{}_{}.log", std::process::id(), unique()));
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = self
            .command()
            .args(["serve", "--bind", "127.0.0.1:0", "--partner-rate-limit", "0", "--distributor-rate-limit", "0"])
            .args(["--database-url", database_url])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting partnerd serve")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout is piped")?).lines();
        let mut server = Server { child, base_url: String::new(), log_path };
        let found = tokio::time::timeout(STARTUP_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix(LISTENING_PREFIX) {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(url)) => server.base_url = url,
            Ok(None) => bail!("partnerd serve exited before listening; its log:\n{}", server.log_tail(30)),
            Err(_) => {
                bail!("partnerd serve printed no address within {STARTUP_TIMEOUT:?}; log:\n{}", server.log_tail(30))
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(server)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A running `partnerd serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub base_url: String,
    log_path: PathBuf,
}

/// What the server's log said over the whole run.
#[derive(Debug, Default)]
pub struct LogSummary {
    pub errors: usize,
    pub warnings: usize,
    pub first_error: Option<String>,
}

impl Server {
    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops the server and counts the ERROR and WARN lines it logged.
    pub async fn stop(mut self) -> Result<LogSummary> {
        self.child.start_kill().ok();
        self.child.wait().await.context("waiting for partnerd to stop")?;
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let mut summary = LogSummary::default();
        for line in text.lines() {
            // Text logs: `<timestamp>  ERROR <span>: message`; JSON logs: `"level":"ERROR"`.
            if line.contains(" ERROR ") || line.contains("\"level\":\"ERROR\"") {
                summary.errors += 1;
                summary.first_error.get_or_insert_with(|| line.chars().take(400).collect());
            } else if line.contains(" WARN ") || line.contains("\"level\":\"WARN\"") {
                summary.warnings += 1;
            }
        }
        Ok(summary)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.start_kill().ok();
        let _ = std::fs::remove_file(&self.log_path);
    }
}
