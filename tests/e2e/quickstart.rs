//! `partnerd quickstart`: the printed curl commands work as printed, and running it again
//! issues new keys and retires the old ones.

use partnerd_e2e::{Reply, Server, key_like_tokens, str_field};
use serde_json::Value;

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, assert_current_month, assert_error, assert_keys, assert_ok,
    assert_timestamp, on_both_backends,
};

on_both_backends!(quickstart_prints_working_commands_and_rotates_keys_on_rerun);

/// What one quickstart run printed.
struct Banner {
    partner_key: String,
    distributor_key: String,
    worker_key: String,
    curls: Vec<String>,
}

fn read_banner(server: &Server) -> Banner {
    let lines = server.banner();
    let text = lines.join("\n");
    let tokens = key_like_tokens(&text);
    let one = |prefix: &str| {
        let mut keys: Vec<&String> = tokens.iter().filter(|t| t.starts_with(prefix)).collect();
        keys.dedup();
        assert_eq!(keys.len(), 1, "one {prefix} key in the banner:\n{text}");
        keys[0].clone()
    };
    let curls: Vec<String> =
        lines.iter().map(|l| l.trim()).filter(|l| l.starts_with("curl ")).map(str::to_owned).collect();
    assert_eq!(curls.len(), 3, "three curl commands in the banner:\n{text}");
    Banner { partner_key: one("pk_live_"), distributor_key: one("dk_live_"), worker_key: one("wk_live_"), curls }
}

/// Splits a shell command line made of plain words and double-quoted strings.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in {line:?}");
    if in_word {
        words.push(word);
    }
    words
}

/// The URL and headers of a printed `curl -s URL [-H "Name: value"]…` command.
fn parse_curl(line: &str) -> (String, Vec<(String, String)>) {
    let words = shell_words(line);
    assert_eq!(words[0], "curl", "{line}");
    let (mut url, mut headers) = (None, Vec::new());
    let mut rest = words[1..].iter();
    while let Some(word) = rest.next() {
        match word.as_str() {
            "-s" | "--silent" => {}
            "-H" | "--header" => {
                let header = rest.next().unwrap_or_else(|| panic!("-H without a value: {line}"));
                let (name, value) = header.split_once(':').unwrap_or_else(|| panic!("header without a colon: {line}"));
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            w if w.starts_with("http://") || w.starts_with("https://") => {
                assert!(url.is_none(), "two URLs in {line}");
                url = Some(w.to_owned());
            }
            other => panic!("unexpected curl argument {other:?} in {line}"),
        }
    }
    (url.unwrap_or_else(|| panic!("no URL in {line}")), headers)
}

fn curl_installed() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a printed command exactly as printed, through `sh`, and returns its stdout as JSON.
async fn run_in_shell(line: &str) -> Value {
    let out = tokio::process::Command::new("sh")
        .args(["-c", line])
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .output()
        .await
        .expect("run sh");
    assert!(out.status.success(), "`{line}` failed: {out:?}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`{line}` printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The partner profile's shape, for a demo partner whose creation we did not see.
fn assert_demo_partner(body: &Value) {
    assert_keys(body, &["id", "company", "email", "plan", "status", "usage", "createdAt"]);
    assert!(str_field(body, "id").starts_with("prt_"), "{body}");
    assert!(!str_field(body, "company").is_empty(), "{body}");
    assert!(str_field(body, "email").contains('@'), "{body}");
    assert_eq!(body["status"], "active", "{body}");
    let usage = &body["usage"];
    assert_keys(usage, &["month", "runsUsed", "runsLimit", "customersCount"]);
    assert_current_month(&usage["month"]);
    assert!(usage["runsUsed"].is_i64() && usage["customersCount"].is_i64(), "{body}");
    let expected_limit = crate::support::runs_limit(str_field(body, "plan"));
    assert_eq!(usage["runsLimit"], expected_limit, "{body}");
    assert_timestamp(&body["createdAt"]);
}

fn assert_demo_distributor(body: &Value) {
    assert_keys(body, &["id", "company", "email", "status", "partnersCount", "usage", "createdAt"]);
    assert!(str_field(body, "id").starts_with("dist_"), "{body}");
    assert_eq!(body["status"], "active", "{body}");
    assert!(
        body["partnersCount"].as_i64().is_some_and(|n| n >= 1),
        "the demo distributor has the demo partner: {body}"
    );
    let usage = &body["usage"];
    assert_keys(usage, &["month", "totalRuns", "totalCustomers"]);
    assert_current_month(&usage["month"]);
    assert_timestamp(&body["createdAt"]);
}

fn assert_answer(path: &str, body: &Value) {
    match path {
        "/v1/partner/me" | "/api/v1/partner/me" => assert_demo_partner(body),
        "/v1/distributor/me" | "/api/v1/distributor/me" => assert_demo_distributor(body),
        "/openapi.json" => {
            assert!(body["openapi"].is_string(), "an OpenAPI document: {body}");
            assert!(body["paths"].is_object(), "an OpenAPI document: {body}");
        }
        other => panic!("quickstart printed a command for an unexpected path {other}"),
    }
}

/// Runs every printed curl command (with reqwest, and through the real `curl` when installed)
/// and checks each answer. Returns the bodies by path.
async fn check_printed_commands(server: &Server, banner: &Banner) -> Vec<(String, Value)> {
    let with_curl = curl_installed();
    let mut bodies = Vec::new();
    for line in &banner.curls {
        let (url, headers) = parse_curl(line);
        let path = url
            .strip_prefix(server.base_url())
            .unwrap_or_else(|| panic!("{line} does not target {}", server.base_url()))
            .to_owned();
        for (name, value) in &headers {
            match name.as_str() {
                "X-Partner-Key" => assert_eq!(value, &banner.partner_key, "{line}"),
                "X-Distributor-Key" => assert_eq!(value, &banner.distributor_key, "{line}"),
                other => panic!("unexpected header {other} in {line}"),
            }
        }
        let header_refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let reply = server.get(&path, &header_refs).await;
        let body = assert_ok(&reply).clone();
        assert_answer(&path, &body);
        if with_curl {
            let printed = run_in_shell(line).await;
            assert_answer(&path, &printed);
            assert_eq!(printed, body, "curl and reqwest get the same answer for {line}");
        }
        bodies.push((path, body));
    }
    let paths: Vec<&str> = bodies.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/partner/me")) && paths.iter().any(|p| p.ends_with("/distributor/me")),
        "the commands try both key kinds: {paths:?}"
    );
    bodies
}

fn body_for<'a>(bodies: &'a [(String, Value)], suffix: &str) -> &'a Value {
    &bodies.iter().find(|(p, _)| p.ends_with(suffix)).unwrap_or_else(|| panic!("no command for {suffix}")).1
}

async fn quickstart_prints_working_commands_and_rotates_keys_on_rerun(ctx: &Ctx) {
    let first = Server::quickstart(ctx.url()).await;
    let old = read_banner(&first);
    let first_bodies = check_printed_commands(&first, &old).await;

    // Run it again on the same database while the first one still serves.
    let second = Server::quickstart(ctx.url()).await;
    let new = read_banner(&second);
    assert_ne!(new.partner_key, old.partner_key, "a rerun prints a new partner key");
    assert_ne!(new.distributor_key, old.distributor_key, "a rerun prints a new distributor key");
    assert_ne!(new.worker_key, old.worker_key, "a rerun prints a new worker key");
    let second_bodies = check_printed_commands(&second, &new).await;

    // Same demo accounts, not new ones.
    for suffix in ["/partner/me", "/distributor/me"] {
        assert_eq!(
            body_for(&first_bodies, suffix)["id"],
            body_for(&second_bodies, suffix)["id"],
            "a rerun reuses the demo account behind {suffix}"
        );
    }
    assert_eq!(body_for(&second_bodies, "/distributor/me")["partnersCount"], 1);

    // The old keys stop working at once, on both servers; the new ones work on both.
    for server in [&first, &second] {
        let old_partner: Reply = server.get_with("/v1/partner/me", PARTNER_HEADER, &old.partner_key).await;
        assert_error(&old_partner, 401, "INVALID_KEY");
        let old_distributor = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, &old.distributor_key).await;
        assert_error(&old_distributor, 401, "INVALID_KEY");
        let new_partner = server.get_with("/v1/partner/me", PARTNER_HEADER, &new.partner_key).await;
        assert_demo_partner(assert_ok(&new_partner));
        let new_distributor = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, &new.distributor_key).await;
        assert_demo_distributor(assert_ok(&new_distributor));
    }
}
