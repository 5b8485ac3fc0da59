//! `partnerd`: the channel-partner platform server.

mod admin;
mod cli;
mod runner;
mod serve;
mod system;
mod wiring;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};
use crate::wiring::Platform;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that print JSON for scripts log only problems unless asked for more.
    let default_level = match cli.command {
        Command::Serve(_) | Command::Quickstart(_) | Command::Worker(_) => "info",
        Command::Migrate(_) | Command::Admin(_) => "warn",
    };
    init_logging(cli.log_format, default_level);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partnerd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let platform = Platform::open(&args.database).await?;
            let listener = serve::bind(&args)?;
            serve::serve(platform, &args, listener).await
        }
        Command::Quickstart(args) => serve::quickstart(&args).await,
        Command::Worker(args) => runner::run_until_signalled(args.into()).await,
        Command::Migrate(args) => {
            let platform = Platform::open(&args).await?;
            println!("{}", serde_json::json!({"migrated": true, "backend": platform.store.backend_name()}));
            Ok(())
        }
        Command::Admin(args) => {
            let platform = Platform::open(&args.database).await?;
            match admin::run(&platform, args.command).await {
                Ok(out) => {
                    println!("{out}");
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{}", admin::error_json(&e));
                    std::process::exit(2);
                }
            }
        }
    }
}

/// Logs go to stderr; `PARTNERD_LOG` (or `RUST_LOG`) filters them.
fn init_logging(format: LogFormat, default_level: &str) {
    let filter = std::env::var("PARTNERD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(EnvFilter::new)
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
