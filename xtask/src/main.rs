//! `cargo xtask <task>`: the project's own commands.
//!
//! - `test`: format check, clippy (warnings are errors), the dependency-direction check, then
//!   every test on SQLite, and on PostgreSQL when one is reachable (mandatory under `CI=true`).
//! - `check-deps`: only the dependency-direction check.
//! - `bench [-- BENCH ARGS]`: builds `partnerd` and `partnerd-bench` in release mode and runs the
//!   benchmarks on SQLite, and on PostgreSQL when one is reachable (same detection as `test`).
//!   Figures are printed beside same-run baselines; nothing about speed is asserted.

use std::env;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, bail};

const POSTGRES_URL_VAR: &str = "PARTNERD_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Crates the domain must never depend on, directly or through another crate.
const IO_CRATES: &[&str] = &["actix-web", "actix-rt", "actix-server", "sea-orm", "sqlx", "reqwest", "tokio", "hyper"];
/// Adapter crates: none may depend on another.
const ADAPTERS: &[&str] = &["partnerd-store", "partnerd-http", "partnerd-billing", "partnerd-webhooks"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("check-deps") => check_deps(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test [-- TEST ARGS] | check-deps | bench [-- BENCH ARGS]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn run(step: &str, mut cmd: Command) -> Result<()> {
    eprintln!("xtask: {step}");
    let status = cmd.status().with_context(|| format!("starting {step}"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

fn test(extra: &[String]) -> Result<()> {
    let ci = env::var("CI").as_deref() == Ok("true");
    run("cargo fmt --check", {
        let mut c = cargo();
        c.args(["fmt", "--all", "--", "--check"]);
        c
    })?;
    run("clippy (warnings are errors)", {
        let mut c = cargo();
        c.args(["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"]);
        c
    })?;
    check_deps()?;

    let postgres = postgres_url(ci, "tests")?;
    run("build the partnerd binary for the black-box tests", {
        let mut c = cargo();
        c.args(["build", "-p", "partnerd-app", "--bin", "partnerd"]);
        c
    })?;
    let binary = target_dir().join("debug/partnerd");

    let mut tests = cargo();
    tests.args(["test", "--workspace", "--all-features"]).env("PARTNERD_BIN", &binary);
    if !extra.is_empty() {
        tests.args(extra.iter().skip_while(|a| *a == "--"));
    }
    match &postgres {
        Some(url) => tests.env(POSTGRES_URL_VAR, url),
        None => tests.env_remove(POSTGRES_URL_VAR),
    };
    let backends = if postgres.is_some() { "SQLite and PostgreSQL" } else { "SQLite only" };
    eprintln!("xtask: back-ends under test: {backends}");
    run("every test", tests)?;
    eprintln!("xtask: all checks passed; back-ends tested: {backends}");
    Ok(())
}

/// Builds the real binary and the bench harness in release mode, then runs the harness against
/// it: SQLite always, PostgreSQL when reachable. `extra` goes to `partnerd-bench` (`--requests N
/// --concurrency N --max-seconds S --partners N --customers N --backend all|sqlite|postgres
/// --workloads all|http|webhooks --webhook-events N --webhook-concurrency N`).
fn bench(extra: &[String]) -> Result<()> {
    let ci = env::var("CI").as_deref() == Ok("true");
    let postgres = postgres_url(ci, "benchmarks")?;
    // Two builds, not one: built together, feature unification would compile the store's
    // `testing` feature into the measured binary, which then would not be the one users run.
    run("build partnerd (release)", {
        let mut c = cargo();
        c.args(["build", "--release", "-p", "partnerd-app", "--bin", "partnerd"]);
        c
    })?;
    run("build partnerd-bench (release)", {
        let mut c = cargo();
        c.args(["build", "--release", "-p", "partnerd-bench", "--bin", "partnerd-bench"]);
        c
    })?;
    let release = target_dir().join("release");
    let exe = |name: &str| release.join(format!("{name}{}", env::consts::EXE_SUFFIX));
    let mut bench = Command::new(exe("partnerd-bench"));
    bench.current_dir(workspace_root()).arg("--partnerd").arg(exe("partnerd"));
    bench.args(extra.iter().skip_while(|a| *a == "--"));
    match &postgres {
        Some(url) => bench.env(POSTGRES_URL_VAR, url),
        None => bench.env_remove(POSTGRES_URL_VAR),
    };
    let backends = if postgres.is_some() { "SQLite and PostgreSQL" } else { "SQLite only" };
    eprintln!("xtask: back-ends to measure: {backends}");
    run("partnerd-bench", bench)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace) or `target/`.
fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The PostgreSQL server for tests and benchmarks (`what`): `PARTNERD_TEST_POSTGRES_URL`, or the
/// local default when it answers. Under CI it must be reachable.
fn postgres_url(ci: bool, what: &str) -> Result<Option<String>> {
    let url = env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let reachable = host_port(&url)
        .and_then(|hp| hp.to_socket_addrs().ok())
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    match (reachable, ci) {
        (true, _) => Ok(Some(url)),
        (false, true) => {
            bail!("PostgreSQL is not reachable at {url}, and under CI=true its {what} are mandatory")
        }
        (false, false) => {
            eprintln!("xtask: PostgreSQL not reachable at {url}: running SQLite {what} only");
            Ok(None)
        }
    }
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    Some(if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") })
}

/// The hexagon, enforced: the domain reaches no I/O crate, and no adapter reaches another.
fn check_deps() -> Result<()> {
    eprintln!("xtask: dependency check (domain has no I/O crates; adapters are independent)");
    let tree = |package: &str| -> Result<Vec<String>> {
        let out = cargo()
            .args(["tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}"])
            .output()
            .with_context(|| format!("cargo tree -p {package}"))?;
        if !out.status.success() {
            bail!("cargo tree -p {package} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect())
    };
    let mut problems = Vec::new();
    for dep in tree("partnerd-domain")? {
        if IO_CRATES.iter().any(|io| dep == *io || dep.starts_with(&format!("{io}-"))) {
            problems.push(format!("partnerd-domain depends on the I/O crate {dep}"));
        }
    }
    for adapter in ADAPTERS {
        for dep in tree(adapter)? {
            if dep != *adapter && ADAPTERS.contains(&dep.as_str()) {
                problems.push(format!("adapter {adapter} depends on adapter {dep}"));
            }
        }
    }
    if !problems.is_empty() {
        bail!("dependency check failed:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_port_reads_postgres_urls() {
        assert_eq!(host_port("postgres://postgres@127.0.0.1:5432/postgres").as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(host_port("postgres://u:p@db.internal/x").as_deref(), Some("db.internal:5432"));
    }
}
