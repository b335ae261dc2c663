//! Shared set-up: a receiver, a generated config, a running gateway.

use gateway_sim::harness::{Gateway, TestConfig, Tmpfs};
use gateway_sim::receiver::Receiver;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use gateway_sim::harness::{metric, township_token, ADMIN_TOKEN, INGEST_TOKEN};

/// How long any wait in these tests may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gateway"))
}

/// Receivers every test's receiver also verifies (departments and the city center), each at
/// `<receiver>/<name>` with the secret `township_secret(name)`.
pub const RECEIVERS: &[&str] = &["fire-brigade", "video-ops", "city"];

pub struct Env {
    pub dir: tempfile::TempDir,
    pub receiver: Receiver,
    pub config: TestConfig,
    pub config_path: PathBuf,
    pub gw: Gateway,
    pub client: reqwest::Client,
    /// The gateway's own small filesystem under `data_dir`, when started on one.
    pub tmpfs: Option<Tmpfs>,
}

/// Fast retries, so that tests of retry behaviour take milliseconds.
pub const FAST_RETRIES: &str =
    "[delivery]\nbackoff_initial_ms = 20\nbackoff_max_ms = 200\ntimeout_ms = 2000\n";

impl Env {
    pub async fn start(townships: &[&str], customize: impl FnOnce(&mut TestConfig)) -> Env {
        Self::start_on(townships, None, customize).await
    }

    /// Like [`Env::start`], with `data_dir` on a tmpfs of `size_mb` MiB of the gateway's own.
    pub async fn start_in_tmpfs(
        townships: &[&str],
        size_mb: u64,
        customize: impl FnOnce(&mut TestConfig),
    ) -> Env {
        Self::start_on(townships, Some(size_mb), customize).await
    }

    async fn start_on(
        townships: &[&str],
        tmpfs_mb: Option<u64>,
        customize: impl FnOnce(&mut TestConfig),
    ) -> Env {
        let dir = tempfile::tempdir().unwrap();
        // townships, and the departments and city a closed-loop test may configure
        let secrets: Vec<(String, String)> = townships
            .iter()
            .chain(RECEIVERS)
            .map(|t| (t.to_string(), gateway_sim::harness::township_secret(t)))
            .collect();
        let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), &secrets, true)
            .await
            .unwrap();
        let base = format!("http://{}", receiver.addr());
        let mut config = TestConfig::new(&dir.path().join("data"), &base, townships, 2);
        config.extra = FAST_RETRIES.to_string();
        customize(&mut config);
        let config_path = config.write(dir.path());
        let tmpfs =
            tmpfs_mb.map(|mb| Tmpfs::mount(&config.data_dir, mb).unwrap_or_else(|e| panic!("{e}")));
        let gw = match &tmpfs {
            None => Gateway::start(&bin(), &config_path).await,
            Some(fs) => Gateway::start_in_tmpfs(&bin(), &config_path, fs).await,
        }
        .unwrap_or_else(|e| panic!("{e}"));
        Env {
            dir,
            receiver,
            config,
            config_path,
            gw,
            client: reqwest::Client::new(),
            tmpfs,
        }
    }

    pub async fn restart(&mut self) {
        self.gw = match &self.tmpfs {
            None => Gateway::start(&bin(), &self.config_path).await,
            Some(fs) => Gateway::start_in_tmpfs(&bin(), &self.config_path, fs).await,
        }
        .unwrap_or_else(|e| panic!("{e}"));
    }

    pub async fn push(&self, unit: &str, channel: &str, body: &Value) -> (u16, Value) {
        self.push_raw(
            unit,
            channel,
            body.to_string().into_bytes(),
            Some(INGEST_TOKEN),
        )
        .await
    }

    pub async fn push_raw(
        &self,
        unit: &str,
        channel: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .post(self.gw.url(&format!("/api/v1/ingest/{unit}/{channel}")))
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.client.get(self.gw.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut r = self.client.post(self.gw.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn metrics(&self) -> String {
        self.gw.metrics().await
    }

    /// Polls an event until `check` holds on its API view.
    pub async fn wait_event(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, v) = self
                .get(&format!("/api/v1/events/{id}"), Some(ADMIN_TOKEN))
                .await;
            if status == 200 && check(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: last {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `gateway <args> --config <this config>`; (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        run_cli(args, &self.config_path)
    }
}

pub fn run_cli(args: &[&str], config: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run gateway CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn fire(addr: u32) -> Value {
    serde_json::json!({
        "ts": "2026-11-28T10:00:00+08:00",
        "system_type": 1, "system_addr": 1,
        "component_type": 40, "component_addr": addr,
        "status": ["fire"], "description": "3F east corridor"
    })
}

impl Env {
    /// Polls `/metrics` until a series has `value`.
    pub async fn wait_metric(&self, series: &str, value: f64) {
        self.wait_metric_where(series, &format!("reached {value}"), |v| v == value)
            .await;
    }

    /// Polls `/metrics` until a series' value is `ok` (`what` says what that is); the metrics
    /// text then.
    pub async fn wait_metric_where(
        &self,
        series: &str,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = self.metrics().await;
            if ok(metric(&m, series)) {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} never {what}:\n{m}\ngateway log:\n{}",
                self.gw.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Pushes fire alarms at `addrs` from `unit` in a task of its own (while a test does something
/// else); the task answers the event ids, each push having been accepted.
pub fn push_in_background(
    env: &Env,
    unit: &str,
    addrs: std::ops::RangeInclusive<u32>,
) -> tokio::task::JoinHandle<Vec<String>> {
    let url = env.gw.url(&format!("/api/v1/ingest/{unit}/status"));
    let client = env.client.clone();
    tokio::spawn(async move {
        let mut ids = Vec::new();
        for addr in addrs {
            let r = client
                .post(&url)
                .bearer_auth(INGEST_TOKEN)
                .json(&fire(addr))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            let body: Value = r.json().await.unwrap();
            ids.push(body["events"][0].as_str().unwrap().to_string());
        }
        ids
    })
}

/// Fails, with what the tool said, unless `out` is a success.
pub fn assert_ran(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
