//! Harness for the black-box tests: finds the real `partnerd` binary, runs its `admin`
//! commands, and starts `serve` / `quickstart` on a free port against a throwaway database.
//!
//! Nothing here links the product's crates except `partnerd-store`'s `testing` module, which
//! only creates and drops empty databases: every behaviour under test is reached through the
//! binary's command line and its HTTP surface.

pub mod process;
pub mod receiver;
pub mod verifier;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use partnerd_store::testing::{Backend, TestDatabase};
use serde_json::Value;

/// How long a server may take to print its `listening on` line (PostgreSQL migrations included).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an admin command may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

const LISTENING_PREFIX: &str = "listening on ";

/// The `partnerd` binary under test: `PARTNERD_BIN`, else `target/debug/partnerd` in the
/// workspace (or in `CARGO_TARGET_DIR` when that is set).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PARTNERD_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PARTNERD_BIN={} does not name a file; run `cargo xtask test`, or `cargo build -p partnerd-app` and unset PARTNERD_BIN",
            path.display()
        );
        return path;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives inside the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| if dir.is_absolute() { dir } else { workspace.join(dir) })
        .unwrap_or_else(|| workspace.join("target"));
    let path = target.join("debug").join(format!("partnerd{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the partnerd binary is missing at {}: run `cargo xtask test`, or `cargo build -p partnerd-app` before `cargo test -p partnerd-e2e` (or point PARTNERD_BIN at it)",
        path.display()
    );
    path
}

/// A command for the binary with an environment that cannot change its behaviour behind the
/// test's back: no inherited `PARTNERD_*`, `RUST_LOG` or proxy settings.
fn base_command() -> Command {
    let mut cmd = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.starts_with("PARTNERD_") || name_str == "RUST_LOG" {
            cmd.env_remove(&name);
        }
    }
    // A product that ignored the database it was given would create `partnerd.db` in its
    // working directory: keep that out of the source tree.
    cmd.current_dir(std::env::temp_dir());
    cmd.stdin(Stdio::null());
    cmd
}

// ---------------------------------------------------------------------------------------------
// admin
// ---------------------------------------------------------------------------------------------

/// What an `admin` command printed and how it ended.
#[derive(Debug)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// stdout as exactly one line holding one JSON object (panics otherwise).
    pub fn json(&self) -> Value {
        assert!(
            self.status.success(),
            "the command failed ({}): stdout {:?}, stderr {:?}",
            self.status,
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "an admin command prints exactly one line on stdout, got {:?}", self.stdout);
        let value: Value =
            serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout));
        assert!(value.is_object(), "stdout is not a JSON object: {value}");
        value
    }
}

/// Runs `partnerd <args…>` (no database chosen for it) and waits for it to end.
pub async fn run_raw(args: &[&str], envs: &[(&str, &str)]) -> CommandOutput {
    let mut cmd = base_command();
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(ADMIN_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`partnerd {}` took over {ADMIN_TIMEOUT:?}", args.join(" ")))
        .expect("spawn partnerd");
    CommandOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `partnerd admin <args…> --database-url URL` (the documented form) and returns its
/// output, success or not.
pub async fn admin_output(database_url: &str, args: &[&str]) -> CommandOutput {
    let mut full = vec!["admin"];
    full.extend_from_slice(args);
    full.extend(["--database-url", database_url]);
    run_raw(&full, &[]).await
}

/// Runs `partnerd admin <args…>` against `database_url`; it must succeed and print one JSON
/// object, which is returned.
pub async fn admin(database_url: &str, args: &[&str]) -> Value {
    admin_output(database_url, args).await.json()
}

/// The string at `value[field]` (panics when absent or not a string).
pub fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("{field:?} is not a string in {value}"))
}

// ---------------------------------------------------------------------------------------------
// serve / quickstart
// ---------------------------------------------------------------------------------------------

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Which long-running command to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Quickstart,
}

/// A running `partnerd serve` (or `quickstart`) on a free loopback port. Killed and reaped on
/// drop; its stderr (the logs) goes to a file readable with [`Server::logs`].
pub struct Server {
    child: Child,
    base_url: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
    http: reqwest::Client,
}

impl Server {
    /// `partnerd serve --bind 127.0.0.1:0 --database-url URL`.
    pub async fn serve(database_url: &str) -> Self {
        Self::start(Mode::Serve, database_url, &[]).await
    }

    /// `partnerd quickstart --bind 127.0.0.1:0 --database-url URL`.
    pub async fn quickstart(database_url: &str) -> Self {
        Self::start(Mode::Quickstart, database_url, &[]).await
    }

    /// `partnerd serve --bind 127.0.0.1:0 --database-url URL <args…>`, e.g.
    /// `&["--partner-rate-limit", "0"]`.
    pub async fn serve_with(database_url: &str, args: &[&str]) -> Self {
        Self::start_with(Mode::Serve, database_url, args, &[]).await
    }

    /// Starts `mode` with extra environment variables and waits (with a timeout, never a fixed
    /// sleep) for the `listening on http://…` line on stdout.
    pub async fn start(mode: Mode, database_url: &str, envs: &[(&str, &str)]) -> Self {
        Self::start_with(mode, database_url, &[], envs).await
    }

    /// [`Server::start`] with extra command-line arguments after the standard ones.
    pub async fn start_with(mode: Mode, database_url: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let stderr_path = std::env::temp_dir().join(format!(
            "partnerd_e2e_{}_{}.stderr.log",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let stderr_file = std::fs::File::create(&stderr_path).expect("create the stderr log file");
        let mut cmd = base_command();
        cmd.arg(match mode {
            Mode::Serve => "serve",
            Mode::Quickstart => "quickstart",
        })
        .args(["--bind", "127.0.0.1:0", "--database-url", database_url])
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr_file));
        let mut child = cmd.spawn().expect("spawn partnerd");

        // A thread drains stdout for the whole life of the process (so it can never block on a
        // full pipe), keeps every line, and forwards them until the listening line is seen.
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let pipe = child.stdout.take().expect("stdout is piped");
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });

        let mut server = Self {
            child,
            base_url: String::new(),
            stdout,
            stderr_path,
            http: reqwest::Client::builder().no_proxy().timeout(HTTP_TIMEOUT).build().expect("build the HTTP client"),
        };
        let wait = async {
            while let Some(line) = rx.recv().await {
                if let Some(url) = line.strip_prefix(LISTENING_PREFIX) {
                    return Some(url.trim().to_owned());
                }
            }
            None
        };
        match tokio::time::timeout(STARTUP_TIMEOUT, wait).await {
            Ok(Some(url)) => {
                assert!(
                    url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
                    "the listening line names the real bound address, got {url:?}"
                );
                server.base_url = url;
                server
            }
            Ok(None) => {
                let status = server.child.wait().ok();
                panic!(
                    "partnerd exited ({status:?}) before printing `listening on`; stdout {:?}; stderr:\n{}",
                    server.stdout_lines(),
                    server.logs()
                );
            }
            Err(_) => panic!(
                "partnerd printed no `listening on` line within {STARTUP_TIMEOUT:?}; stdout {:?}; stderr:\n{}",
                server.stdout_lines(),
                server.logs()
            ),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The base URL joined with `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Every line the process printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The lines printed on stdout before the `listening on` line (quickstart's banner).
    pub fn banner(&self) -> Vec<String> {
        self.stdout_lines().into_iter().take_while(|l| !l.starts_with(LISTENING_PREFIX)).collect()
    }

    /// Everything the process wrote to stderr (its logs) so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A client that talks to the loopback server directly (no proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET path` with optional headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request(reqwest::Method::GET, path, headers).await
    }

    /// `GET path` with one key header, e.g. `("X-Partner-Key", key)`.
    pub async fn get_with(&self, path: &str, header: &str, key: &str) -> Reply {
        self.get(path, &[(header, key)]).await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.endpoint().send(method, path, headers, None).await
    }

    /// A cheap, cloneable handle on this server for requests from spawned tasks.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint { http: self.http.clone(), base_url: self.base_url.clone() }
    }
}

/// Where to send requests: one running server, by its loopback base URL. Cloneable and `'static`
/// so that concurrent tasks can each hold one.
#[derive(Debug, Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    base_url: String,
}

impl Endpoint {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method path` with `headers` and, when given, `body` as-is (with
    /// `Content-Type: application/json`); the whole response is read. Panics when no response
    /// arrives (see [`Endpoint::try_send`]).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        self.try_send(method.clone(), path, headers, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// [`Endpoint::send`], returning transport errors instead of panicking.
    pub async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{}", self.base_url, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = req.send().await?;
        Ok(Reply::read(response).await)
    }
}

/// Runs `count` requests at once: `make(i)` builds the i-th (lazily, as an `async move` block),
/// every task waits at one barrier, then all are sent together. Replies come back in `i` order.
pub async fn all_at_once<F, Fut>(count: usize, make: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let request = make(i);
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            (i, request.await)
        });
    }
    let mut replies: Vec<Option<Reply>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, reply) = joined.unwrap_or_else(|e| panic!("a concurrent request failed: {e}"));
        replies[i] = Some(reply);
    }
    replies.into_iter().map(|r| r.expect("every request answered")).collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- partnerd stderr ({}) ---\n{}--- end of partnerd stderr ---", self.base_url, self.logs());
        }
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, text, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

// ---------------------------------------------------------------------------------------------
// keys in text
// ---------------------------------------------------------------------------------------------

/// The key prefixes the product issues.
pub const KEY_PREFIXES: [&str; 3] = ["pk_live_", "dk_live_", "wk_live_"];

/// Every key-like token in `text`: one of the key prefixes followed by at least 8 letters or
/// digits. Used to prove that logs carry no key, real or made up.
pub fn key_like_tokens(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in KEY_PREFIXES {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let body_len = after.bytes().take_while(|b| b.is_ascii_alphanumeric()).count();
            if body_len >= 8 {
                found.push(format!("{prefix}{}", &after[..body_len]));
            }
            rest = &rest[at + prefix.len()..];
        }
    }
    found
}

/// The secret part of a key: what follows its `xx_live_` prefix.
pub fn key_body(key: &str) -> &str {
    KEY_PREFIXES
        .iter()
        .find_map(|p| key.strip_prefix(p))
        .unwrap_or_else(|| panic!("{key:?} does not start with a known key prefix"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_key_like_tokens() {
        let text = "a pk_live_0123456789abcdef b dk_live_short c wk_live_ABCDEFGH1 pk_live_";
        assert_eq!(key_like_tokens(text), vec!["pk_live_0123456789abcdef", "wk_live_ABCDEFGH1"]);
        assert!(key_like_tokens("no keys here: pk_live_ dk_live_x").is_empty());
    }

    #[test]
    fn key_bodies() {
        assert_eq!(key_body("dk_live_abc"), "abc");
    }
}
