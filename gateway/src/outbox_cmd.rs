//! `gateway outbox stats|dead-letters|replay`: operator access to the outbox.
//!
//! When the gateway is stopped the command opens the outbox file itself; when it is running
//! (the file is locked) it asks the running gateway's API, with the first `admin` token of the
//! same configuration. Either way the operator types the same command.

use crate::config::{Config, Scope};
use alerts::outbox::{ListQuery, Op, Outcome, Store};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use uuid::Uuid;

/// What to do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum OutboxCmd {
    /// Counts: stored events, pending deliveries per township, dead letters.
    Stats,
    /// List dead letters (events a township refused for good).
    DeadLetters {
        /// Only this township.
        #[arg(long)]
        township: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead letters back at the end of their townships' queues.
    Replay {
        /// Event ids to replay.
        #[arg(long = "id")]
        ids: Vec<Uuid>,
        /// Replay every dead letter (of `--township`, if given).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Only this township (with `--all`).
        #[arg(long)]
        township: Option<String>,
    },
    /// A consistent copy of the outbox as of now, while the gateway runs (or not): a redb file
    /// that a stopped gateway can use as its `outbox.redb`.
    Backup {
        /// Where to write the copy (replaced if it exists).
        #[arg(long)]
        to: std::path::PathBuf,
    },
}

/// Runs an outbox command; prints JSON when `json` is set.
pub async fn run(config: &Config, cmd: OutboxCmd, json_out: bool) -> anyhow::Result<()> {
    let path = config.outbox_path();
    if !path.exists() {
        bail!(
            "no outbox at `{}` (has the gateway run with this config?)",
            path.display()
        );
    }
    let result = match Store::open(&path) {
        Ok(store) => offline(&store, &cmd)?,
        Err(e) if e.is_locked() => online(config, &cmd).await?,
        Err(e) => bail!("cannot open outbox `{}`: {e}", path.display()),
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_human(&cmd, &result);
    }
    Ok(())
}

fn offline(store: &Store, cmd: &OutboxCmd) -> anyhow::Result<Value> {
    Ok(match cmd {
        OutboxCmd::Backup { to } => {
            let done = store.backup_to(to)?;
            let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
            json!({"file": to.display().to_string(), "bytes": bytes, "tables": done.tables, "rows": done.rows})
        }
        OutboxCmd::Stats => json!(store.stats()?),
        OutboxCmd::DeadLetters { township, limit } => {
            let q = ListQuery {
                township: township.clone(),
                limit: *limit,
                dead_only: true,
                ..Default::default()
            };
            let page = store.list(&q)?;
            json!({"events": page.events.iter().map(crate::api::events::view).collect::<Vec<_>>()})
        }
        OutboxCmd::Replay { ids, all, township } => {
            if ids.is_empty() && !all {
                bail!("give `--id ID` (repeatable) or `--all`");
            }
            let op = Op::Replay {
                ids: ids.clone(),
                township: township.clone(),
            };
            match store.apply(&[op], u64::MAX)?.pop() {
                Some(Outcome::Replayed(t)) => json!({"replayed": t.len()}),
                _ => json!({"replayed": 0}),
            }
        }
    })
}

/// How a command reaches the running gateway's API: its base URL (`http://addr` or
/// `https://addr`), a client (with TLS, one that trusts exactly the configured certificate),
/// and the first `admin` token of the configuration.
pub struct RunningApi {
    /// `http://127.0.0.1:8080`.
    pub base: String,
    /// The client.
    pub client: reqwest::Client,
    /// An admin token.
    pub token: String,
}

impl RunningApi {
    /// Sends `GET {base}{path}?query` with the admin token.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        self.client
            .get(format!("{}{path}", self.base))
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| {
                format!(
                    "the outbox is in use, but the gateway API at {} does not answer",
                    self.base
                )
            })
    }
}

/// The running gateway's API, for commands that find the outbox in use.
pub fn running_api(config: &Config) -> anyhow::Result<RunningApi> {
    let (token, addr) = running_addr(config)?;
    let (base, client) = match &config.api.tls {
        None => (format!("http://{addr}"), reqwest::Client::new()),
        Some(tls) if tls.mutual => bail!(
            "the outbox is in use, and the gateway's API requires client certificates \
             (tls_client_ca): stop the gateway, or use the API with a client certificate"
        ),
        Some(tls) => (format!("https://{addr}"), crate::tls::pinned_client(tls)),
    };
    Ok(RunningApi {
        base,
        client,
        token,
    })
}

/// The running gateway's API address and the first `admin` token of its configuration.
fn running_addr(config: &Config) -> anyhow::Result<(String, std::net::SocketAddr)> {
    let token = config
        .api
        .tokens
        .iter()
        .find(|t| t.scope == Scope::Admin)
        .context("the outbox is in use by a running gateway, and this config has no `admin` token to ask its API")?;
    // where the running gateway says its API is (it may listen on port 0), else the config's
    let recorded = std::fs::read_to_string(config.api_addr_path())
        .ok()
        .and_then(|s| s.trim().parse::<std::net::SocketAddr>().ok());
    let mut addr = recorded.unwrap_or(config.api.listen);
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok((token.secret.expose().to_string(), addr))
}

async fn online(config: &Config, cmd: &OutboxCmd) -> anyhow::Result<Value> {
    let RunningApi {
        base,
        client,
        token,
    } = running_api(config)?;
    let base = format!("{base}/api/v1/outbox");
    let request = match cmd {
        OutboxCmd::Stats => client.get(format!("{base}/stats")),
        OutboxCmd::DeadLetters { township, limit } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(t) = township {
                q.push(("township", t.clone()));
            }
            client.get(format!("{base}/dead-letters")).query(&q)
        }
        OutboxCmd::Replay { ids, all, township } => {
            if ids.is_empty() && !all {
                bail!("give `--id ID` (repeatable) or `--all`");
            }
            client
                .post(format!("{base}/replay"))
                .json(&json!({"ids": ids, "all": all, "township": township}))
        }
        OutboxCmd::Backup { to } => return online_backup(config, to).await,
    };
    let response = request.bearer_auth(&token).send().await.with_context(|| {
        format!("the outbox is in use, but the gateway API at {base} does not answer")
    })?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("reading the gateway's answer")?;
    if !status.is_success() {
        bail!(
            "gateway API answered {status}: {}",
            body["error"]["message"].as_str().unwrap_or("?")
        );
    }
    Ok(body)
}

/// Fetches a backup from the running gateway into `to` (through `to.part`, renamed once whole).
async fn online_backup(config: &Config, to: &std::path::Path) -> anyhow::Result<Value> {
    use tokio::io::AsyncWriteExt;
    let api = running_api(config)?;
    let mut response = api.get("/api/v1/outbox/backup", &[]).await?;
    if !response.status().is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        bail!(
            "gateway API answered: {}",
            body["error"]["message"].as_str().unwrap_or("?")
        );
    }
    let expected = response.content_length();
    let part = to.with_extension("part");
    let mut file = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("cannot write `{}`", part.display()))?;
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.context("reading the backup")? {
        file.write_all(&chunk).await?;
        bytes += chunk.len() as u64;
    }
    file.sync_all().await?;
    if expected.is_some_and(|n| n != bytes) {
        let _ = std::fs::remove_file(&part);
        bail!("the backup stream ended after {bytes} bytes; nothing written");
    }
    std::fs::rename(&part, to)?;
    Ok(json!({"file": to.display().to_string(), "bytes": bytes, "online": true}))
}

fn print_human(cmd: &OutboxCmd, v: &Value) {
    match cmd {
        OutboxCmd::Backup { .. } => println!(
            "backup written: {} ({} bytes)",
            v["file"].as_str().unwrap_or("?"),
            v["bytes"]
        ),
        OutboxCmd::Stats => {
            println!("events stored   {}", v["events"]);
            println!("pending         {}", v["pending"]);
            println!("dead letters    {}", v["dead_letters"]);
            if let Some(m) = v["pending_by_township"].as_object() {
                for (t, n) in m {
                    let oldest = v["oldest_pending_by_township"][t].as_str().unwrap_or("-");
                    println!("  {t:<12} pending {n:<8} oldest {oldest}");
                }
            }
        }
        OutboxCmd::DeadLetters { .. } => {
            let events = v["events"].as_array().cloned().unwrap_or_default();
            println!("{} dead letter(s)", events.len());
            for e in events {
                println!(
                    "{}  {:<10} {:<22} {:<10} {}  {}",
                    e["id"].as_str().unwrap_or("?"),
                    e["township"]["code"].as_str().unwrap_or("?"),
                    e["kind"].as_str().unwrap_or("?"),
                    e["delivery"]["last_error"].as_str().unwrap_or("-"),
                    e["occurred_at"].as_str().unwrap_or("-"),
                    e["title"].as_str().unwrap_or(""),
                );
            }
        }
        OutboxCmd::Replay { .. } => println!("replayed {} event(s)", v["replayed"]),
    }
}
