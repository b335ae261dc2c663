//! `gateway`: the command line.

use clap::{Parser, Subcommand};
use gateway::config::{self, LogFormat};
use gateway::outbox_cmd::OutboxCmd;
use gateway::report_cmd::ReportCmd;
use std::path::PathBuf;
use std::process::ExitCode;

// The gateway allocates many small short-lived buffers per event (HTTP, JSON, redb pages);
// mimalloc does that with less CPU and less contention between threads than glibc malloc. It is
// built without transparent huge pages (`no_thp`): with them its arenas are backed in 2 MiB
// pages and a lightly used arena counts whole (+17 MiB idle, +40 MiB at a burst; same CPU).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Video and IoT ingestion gateway for public safety.
#[derive(Parser)]
#[command(version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("GATEWAY_COMMIT"), ")"), about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Configuration file.
        #[arg(long, env = "GATEWAY_CONFIG")]
        config: PathBuf,
    },
    /// Validate the configuration and registries; exit 0 when valid.
    Check {
        /// Configuration file.
        #[arg(long, env = "GATEWAY_CONFIG")]
        config: PathBuf,
    },
    /// Inspect the outbox, list and replay dead letters.
    Outbox {
        /// Configuration file.
        #[arg(long, env = "GATEWAY_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: OutboxCmd,
    },
    /// Reports: the assessment (考核) as JSON, CSV, XLSX or HTML.
    Report {
        /// Configuration file.
        #[arg(long, env = "GATEWAY_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: ReportCmd,
    },
}

/// Loads the configuration a tool command names.
fn load_for_tool(config: Option<PathBuf>) -> Result<config::Config, ExitCode> {
    let Some(path) = config else {
        eprintln!("--config PATH (or GATEWAY_CONFIG) is required");
        return Err(ExitCode::from(2));
    };
    load(&path)
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    let loaded = config::load(path);
    if let Ok(c) = &loaded {
        // every time the gateway writes is in the configured offset
        alerts::time::set_offset(c.offset);
    }
    loaded.map_err(|e| {
        eprintln!("{e}");
        eprintln!("configuration invalid: {} error(s)", e.0.len());
        ExitCode::from(2)
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // colours for a person at a terminal, never into files or journald (NO_COLOR honoured)
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    // TLS (webhooks over https, MQTT over mqtts) uses rustls with the ring provider
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match cli.command {
        Command::Check { config } => match load(&config) {
            Ok(c) => {
                for w in &c.warnings {
                    println!("warning: {w}");
                }
                println!(
                    "{}: valid ({} townships, {} units, {} cameras, {} API tokens)",
                    config.display(),
                    c.registry.townships().len(),
                    c.registry.unit_count(),
                    c.registry.camera_count(),
                    c.api.tokens.len()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { config } => {
            let c = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(c.log_format);
            match runtime.block_on(gateway::app::run(c)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Outbox {
            config,
            json,
            command,
        } => match load_for_tool(config) {
            Ok(c) => finish(runtime.block_on(gateway::outbox_cmd::run(&c, command, json))),
            Err(code) => code,
        },
        Command::Report { config, command } => match load_for_tool(config) {
            Ok(c) => finish(runtime.block_on(gateway::report_cmd::run(&c, command))),
            Err(code) => code,
        },
    }
}
