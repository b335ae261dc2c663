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

/// `Ok` when `tool` (a name on `PATH`, or an absolute path) can be run; else an error naming
/// it and the Debian package that brings it. The first time a tool is found missing the
/// process also says so on stderr, with how to install it — once, however many tests need it.
pub fn require(tool: &str, package: &str) -> Result<(), String> {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let found = if tool.starts_with('/') {
        Path::new(tool).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    };
    if found {
        return Ok(());
    }
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|t| t == tool) {
        said.push(tool.to_string());
        eprintln!(
            "\n*** `{tool}` is not installed: every test that needs it fails. Install the \
             Debian package `{package}` (./scripts/test installs what is missing).\n"
        );
    }
    Err(format!(
        "`{tool}` is not installed (Debian package `{package}`)"
    ))
}

/// The resident memory of a process, KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A free loopback port (bound, read, released) — for servers that cannot say which port they
/// bound (mosquitto, GStreamer). Between the release and their bind another process may take
/// it: where a server reports its address (the gateway logs it), configure port 0 instead.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A generated configuration.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// API listen address (port 0 by default: the gateway picks one and logs it).
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Township codes with their webhook base URL (`None`: no webhook).
    pub townships: Vec<(String, Option<String>)>,
    /// Units: (id, township).
    pub units: Vec<(String, String)>,
    /// Extra TOML keys of a unit's `[[units]]` table: (unit id, lines).
    pub unit_extra: Vec<(String, String)>,
    /// `[api] max_body_bytes`, when set.
    pub max_body_bytes: Option<usize>,
    /// More keys of `[api]` (lines).
    pub api_extra: String,
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
            // port 0: the gateway binds a free port and logs it (no bind-release-rebind race
            // between tests running in parallel)
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
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
            api_extra: String::new(),
            unit_extra: Vec::new(),
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
                .unwrap_or_default()
                + &self.api_extra,
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
            s += &format!("[[units]]\nid = \"{id}\"\nname = \"单位{id}\"\ntownship = \"{t}\"\n");
            for (_, lines) in self.unit_extra.iter().filter(|(u, _)| u == id) {
                s += lines;
                s += "\n";
            }
            s += "\n";
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

/// `text` without ANSI colour sequences (`ESC [ … m`), as the gateway's text log may carry.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // skip to the end of the sequence
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Written to the log before each start, so that a restart's lines are told from the last.
const START_MARK: &str = "=== start ===";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A small tmpfs at a directory, private to a mount namespace held by a sleeping process (so
/// it outlives gateway restarts and vanishes with this value). Gateways started with
/// [`Gateway::start_in_tmpfs`] see it; this process reaches it through [`Tmpfs::path`]. Needs
/// root, or unprivileged user namespaces.
pub struct Tmpfs {
    holder: Child,
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts `size_mb` MiB at `dir` (created when missing).
    pub fn mount(dir: &Path, size_mb: u64) -> Result<Tmpfs, String> {
        let namespaces: &[&str] = if is_root() {
            &["--mount"]
        } else {
            &["--map-root-user", "--mount"]
        };
        let mut holder = Command::new("unshare")
            .args(namespaces)
            .args(["--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mkdir -p "$1" && mount -t tmpfs -o size="$2"m tmpfs "$1" && echo mounted && exec sleep 1000000"#)
            .arg("sh")
            .arg(dir)
            .arg(size_mb.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .map_err(|e| e.to_string())?;
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let out = holder.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "cannot mount a tmpfs (root or user namespaces needed): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Tmpfs {
            holder,
            dir: dir.to_path_buf(),
        })
    }

    /// A path inside the tmpfs, as this process reaches it.
    pub fn path(&self, name: &str) -> PathBuf {
        let inside = self.dir.join(name);
        let rel = inside.strip_prefix("/").unwrap_or(&inside);
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(rel)
    }

    /// Free bytes on it.
    pub fn free_bytes(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(self.path(""))
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&out);
        let mut it = text
            .split_whitespace()
            .filter_map(|n| n.parse::<u64>().ok());
        it.next().unwrap_or(0) * it.next().unwrap_or(0)
    }

    /// Appends to a ballast file until at most `leave` bytes are free (0: until the disk
    /// refuses); returns the bytes written.
    pub fn fill(&self, name: &str, leave: u64) -> std::io::Result<u64> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))?;
        let chunk = vec![0x5a; 1 << 20];
        let mut written = 0u64;
        loop {
            let free = self.free_bytes();
            if leave > 0 && free <= leave {
                break;
            }
            let n = if leave > 0 {
                chunk.len().min((free - leave) as usize)
            } else {
                chunk.len()
            };
            match f.write(&chunk[..n]) {
                Ok(0) => break,
                Ok(w) => written += w as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Deletes a ballast file.
    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.path(name));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A running gateway process.
pub struct Gateway {
    child: Child,
    /// API address.
    pub addr: SocketAddr,
    log: PathBuf,
    /// `http`, or `https` for a gateway started with [`Gateway::start_https`].
    scheme: &'static str,
    /// What asks `/readyz` and `/metrics`.
    client: reqwest::Client,
}

impl Gateway {
    /// Starts `bin run --config config` and waits (≤ 30 s) until it logs that it is ready and
    /// `/readyz` answers 200; its API address is the one it logged (so a config may listen on
    /// port 0).
    pub async fn start(bin: &Path, config: &Path) -> Result<Gateway, String> {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--config"]).arg(config);
        Self::launch(cmd, config, "http", reqwest::Client::new()).await
    }

    /// Like [`Gateway::start`], for a config whose API speaks HTTPS: `client` must trust it.
    pub async fn start_https(
        bin: &Path,
        config: &Path,
        client: reqwest::Client,
    ) -> Result<Gateway, String> {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--config"]).arg(config);
        Self::launch(cmd, config, "https", client).await
    }

    /// Like [`Gateway::start`], inside the mount namespace of `tmpfs` (so that its data
    /// directory is that small filesystem).
    pub async fn start_in_tmpfs(
        bin: &Path,
        config: &Path,
        tmpfs: &Tmpfs,
    ) -> Result<Gateway, String> {
        // nsenter runs it from the holder's working directory
        let absolute =
            |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
        let (bin, config) = (absolute(bin)?, absolute(config)?);
        let (bin, config) = (bin.as_path(), config.as_path());
        let namespaces: &[&str] = if is_root() {
            &["--mount"]
        } else {
            &["--user", "--mount", "--preserve-credentials"]
        };
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", tmpfs.holder.id()))
            .args(namespaces)
            .arg("--")
            .arg(bin)
            .args(["run", "--config"])
            .arg(config);
        Self::launch(cmd, config, "http", reqwest::Client::new()).await
    }

    async fn launch(
        mut cmd: Command,
        config: &Path,
        scheme: &'static str,
        client: reqwest::Client,
    ) -> Result<Gateway, String> {
        let log = config.with_file_name("gateway.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| e.to_string())?;
        writeln!(f, "{START_MARK}").ok();
        let child = cmd
            .env(
                "GATEWAY_LOG",
                std::env::var("GATEWAY_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let mut gw = Gateway {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            scheme,
            client,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = gw.child.try_wait() {
                return Err(format!(
                    "gateway exited with {status} during start-up:\n{}",
                    gw.log()
                ));
            }
            if let Some(addr) = gw.logged_addr("gateway ready") {
                gw.addr = addr;
                let ready = gw
                    .client
                    .get(gw.url("/readyz"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await;
                if ready.is_ok_and(|r| r.status().is_success()) {
                    return Ok(gw);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("gateway not ready after 30 s:\n{}", gw.log()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The `addr=` of the last line containing `message` that this run of the gateway logged
    /// (the API's, `"gateway ready"`; the GB/T 26875.3 server's,
    /// `"GB/T 26875.3 server listening"`).
    pub fn logged_addr(&self, message: &str) -> Option<SocketAddr> {
        let log = strip_ansi(&self.log());
        let run = log.rsplit(START_MARK).next()?;
        let line = run.lines().rev().find(|l| l.contains(message))?;
        let value = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))?;
        value.trim_matches('"').parse().ok()
    }

    /// `http://addr{path}` (`https://` for a gateway started with [`Gateway::start_https`]).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_its_package() {
        assert!(require("sh", "dash").is_ok());
        assert!(require("/bin/sh", "dash").is_ok());
        let e = require("no-such-tool-here", "some-package").unwrap_err();
        assert!(e.contains("`no-such-tool-here`"), "{e}");
        assert!(e.contains("`some-package`"), "{e}");
        // asked again: the same answer (stderr said it once)
        assert_eq!(require("no-such-tool-here", "some-package").unwrap_err(), e);
    }

    #[test]
    fn a_logged_address_is_read_from_the_last_run_through_colours() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gateway.log");
        std::fs::write(
            &log,
            format!(
                "{START_MARK}\nINFO gateway ready addr=127.0.0.1:1111\n{START_MARK}\n\
                 \u{1b}[32m INFO\u{1b}[0m gateway ready \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:2222 townships=1\n"
            ),
        )
        .unwrap();
        let gw = Gateway {
            child: Command::new("true").spawn().unwrap(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            scheme: "http",
            client: reqwest::Client::new(),
        };
        assert_eq!(
            gw.logged_addr("gateway ready"),
            Some(SocketAddr::from(([127, 0, 0, 1], 2222)))
        );
        assert_eq!(gw.logged_addr("GB/T 26875.3 server listening"), None);
    }
}
