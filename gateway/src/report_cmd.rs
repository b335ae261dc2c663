//! `gateway report assessment`: the assessment of a window as a file — computed from the outbox
//! file when the gateway is stopped, asked of the running gateway's API when it runs.

use crate::config::Config;
use crate::report::{render, Format};
use alerts::assessment::assess;
use alerts::outbox::Store;
use anyhow::{bail, Context as _};
use std::path::PathBuf;

/// What to report.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReportCmd {
    /// The assessment (考核) of a window: per township and department, with score and ranking.
    Assessment {
        /// Window start, RFC 3339 (default: 7 days before `--to`).
        #[arg(long)]
        from: Option<String>,
        /// Window end, RFC 3339 (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Only this township.
        #[arg(long)]
        township: Option<String>,
        /// `json`, `csv`, `xlsx` or `html`.
        #[arg(long, default_value = "json")]
        format: Format,
        /// Write here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs a report command.
pub async fn run(config: &Config, cmd: ReportCmd) -> anyhow::Result<()> {
    let ReportCmd::Assessment {
        from,
        to,
        township,
        format,
        out,
    } = cmd;
    let (f, t) = crate::api::reports::window(from.as_deref(), to.as_deref())
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let path = config.outbox_path();
    if !path.exists() {
        bail!(
            "no outbox at `{}` (has the gateway run with this config?)",
            path.display()
        );
    }
    let bytes = match Store::open(&path) {
        Ok(store) => {
            let report = assess(&store, &config.registry, f, t, &config.assessment, None)?;
            let report = crate::api::reports::narrow(report, township.as_deref(), true);
            render(&report, format, config.offset)?
        }
        Err(e) if e.is_locked() => online(config, f, t, township, format).await?,
        Err(e) => bail!("cannot open outbox `{}`: {e}", path.display()),
    };
    match out {
        Some(p) => {
            std::fs::write(&p, bytes).with_context(|| format!("writing `{}`", p.display()))?
        }
        None => std::io::Write::write_all(&mut std::io::stdout(), &bytes)?,
    }
    Ok(())
}

async fn online(
    config: &Config,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    township: Option<String>,
    format: Format,
) -> anyhow::Result<Vec<u8>> {
    let api = crate::outbox_cmd::running_api(config)?;
    let mut q = vec![
        ("from", from.to_rfc3339()),
        ("to", to.to_rfc3339()),
        ("format", format.extension().to_string()),
    ];
    if let Some(t) = township {
        q.push(("township", t));
    }
    let response = api.get("/api/v1/reports/assessment", &q).await?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .context("reading the gateway's answer")?;
    if !status.is_success() {
        bail!(
            "gateway API answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body.to_vec())
}
