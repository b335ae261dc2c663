//! Starts the real `gateway` binary on loopback with a generated configuration.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The codes of Lanxi's 16 townships and sub-districts.
pub const LANXI_TOWNSHIPS: [&str; 16] = [
    "lanjiang",
    "yunshan",
    "shanghua",
    "yongchang",
    "chixi",
    "nvbu",
    "youbu",
    "zhuge",
    "huangdian",
    "xiangxi",
    "majian",
    "meijiang",
    "hengxi",
    "lingdong",
    "baishe",
    "shuiting",
];

/// Admin token used by generated configs.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Ingest-only token used by generated configs.
pub const INGEST_TOKEN: &str = "test-ingest-token-0123456789";

/// The township token of `code` in generated configs.
pub fn township_token(code: &str) -> String {
    format!("test-{code}-token-0123456789")
}

/// The webhook secret of `code` in generated configs.
pub fn township_secret(code: &str) -> String {
    format!("secret-of-{code}")
}

/// The value of one series (exact label text, as rendered) in Prometheus text, or 0.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A generated configuration.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// API listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Township codes with their webhook base URL (`None`: no webhook).
    pub townships: Vec<(String, Option<String>)>,
    /// Units: (id, township).
    pub units: Vec<(String, String)>,
    /// `[api] max_body_bytes`, when set.
    pub max_body_bytes: Option<usize>,
    /// Extra TOML appended verbatim (sections not generated above).
    pub extra: String,
}

impl TestConfig {
    /// Townships with webhooks at `receiver_base/<code>`, and `units_per_township` units each
    /// (`<code>-u<n>`).
    pub fn new(
        data_dir: &Path,
        receiver_base: &str,
        townships: &[&str],
        units_per_township: usize,
    ) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
            data_dir: data_dir.to_path_buf(),
            townships: townships
                .iter()
                .map(|t| (t.to_string(), Some(format!("{receiver_base}/{t}"))))
                .collect(),
            units: townships
                .iter()
                .flat_map(|t| {
                    (1..=units_per_township).map(move |n| (format!("{t}-u{n}"), t.to_string()))
                })
                .collect(),
            max_body_bytes: None,
            extra: String::new(),
        }
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut s = format!(
            "[gateway]\ndata_dir = {:?}\n\n[api]\nlisten = \"{}\"\n{}\n\
             [[api.tokens]]\nname = \"admin\"\ntoken = \"{ADMIN_TOKEN}\"\nscope = \"admin\"\n\n\
             [[api.tokens]]\nname = \"pusher\"\ntoken = \"{INGEST_TOKEN}\"\nscope = \"ingest\"\n\n",
            self.data_dir.display().to_string(),
            self.listen,
            self.max_body_bytes
                .map(|n| format!("max_body_bytes = {n}\n"))
                .unwrap_or_default(),
        );
        for (code, _) in &self.townships {
            s += &format!(
                "[[api.tokens]]\nname = \"{code}-center\"\ntoken = \"{}\"\nscope = \"township:{code}\"\n\n",
                township_token(code)
            );
        }
        s += &self.extra;
        s += "\n";
        for (code, hook) in &self.townships {
            s += &format!("[[townships]]\ncode = \"{code}\"\nname = \"{code}镇\"\n");
            if let Some(url) = hook {
                s += &format!(
                    "webhook = {{ url = \"{url}\", secret = \"{}\" }}\n",
                    township_secret(code)
                );
            }
            s += "\n";
        }
        for (id, t) in &self.units {
            s += &format!("[[units]]\nid = \"{id}\"\nname = \"单位{id}\"\ntownship = \"{t}\"\n\n");
        }
        s
    }

    /// Writes the config into `dir/gateway.toml` and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, self.to_toml()).expect("write config");
        path
    }
}

/// A running gateway process.
pub struct Gateway {
    child: Child,
    /// API address.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Gateway {
    /// Starts `bin run --config config` and waits (≤ 30 s) until `/readyz` answers 200.
    pub async fn start(bin: &Path, config: &Path, addr: SocketAddr) -> Result<Gateway, String> {
        let log = config.with_file_name("gateway.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| e.to_string())?;
        writeln!(f, "=== start ===").ok();
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .env(
                "GATEWAY_LOG",
                std::env::var("GATEWAY_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut gw = Gateway { child, addr, log };
        let client = reqwest::Client::new();
        let url = gw.url("/readyz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = gw.child.try_wait() {
                return Err(format!(
                    "gateway exited with {status} during start-up:\n{}",
                    gw.log()
                ));
            }
            if let Ok(r) = client
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
            {
                if r.status().is_success() {
                    return Ok(gw);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("gateway not ready after 30 s:\n{}", gw.log()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = reqwest::get(self.url("/metrics"))
            .await
            .expect("gateway answers /metrics");
        response.text().await.expect("metrics text")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit (≤ 15 s).
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus, String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill9();
                return Err("gateway did not stop within 15 s of SIGTERM".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the gateway logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
