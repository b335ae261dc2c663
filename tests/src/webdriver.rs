//! A real browser for the console's tests: Debian's headless Chromium driven through
//! chromedriver with the W3C WebDriver protocol (plain JSON over HTTP on loopback). Enough to
//! open a page, type, click, read text, run a script and take screenshots. The browser may
//! resolve nothing but loopback: a page that reached outside would fail visibly.

use crate::harness::{free_port, require};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A headless Chromium session.
pub struct Browser {
    /// chromedriver, leading a process group of its own that Chromium's processes join.
    driver: Child,
    /// The temporary directory chromedriver and Chromium were given (profiles and sockets
    /// go there): a field, so removed after `drop` has killed them.
    _tmp: tempfile::TempDir,
    base: String,
    client: reqwest::Client,
}

/// The key WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session.
    pub async fn start() -> Result<Browser, String> {
        require("chromedriver", "chromium-driver")?;
        require("chromium", "chromium")?;
        let port = free_port();
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("chromedriver: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let root = format!("http://127.0.0.1:{port}");
        let up = crate::wait_until(Duration::from_secs(20), "chromedriver", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .await;
        let mut browser = Browser {
            driver,
            _tmp: tmp,
            base: root.clone(),
            client,
        };
        up?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--lang=zh-CN",
                         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
            }
        }}});
        let session = browser.call("POST", "/session", caps).await?;
        let id = session["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {session}"))?;
        browser.base = format!("{root}/session/{id}");
        Ok(browser)
    }

    /// One WebDriver command; its `value`, or the driver's error.
    async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.client.get(&url),
            "DELETE" => self.client.delete(&url),
            _ => self.client.post(&url).json(&body),
        };
        let r = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let ok = r.status().is_success();
        let v: Value = r.json().await.map_err(|e| format!("{path}: {e}"))?;
        let value = v["value"].clone();
        if ok {
            Ok(value)
        } else {
            Err(format!(
                "{path}: {}",
                value["message"].as_str().unwrap_or("?")
            ))
        }
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.call("POST", "/url", json!({"url": url}))
            .await
            .map(|_| ())
    }

    /// The first element matching `css`, if any now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await
            .ok()?;
        v[ELEMENT].as_str().map(String::from)
    }

    /// Waits (≤ `timeout`) until an element matching `css` is there and displayed.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css).await {
                let shown = self
                    .call("GET", &format!("/element/{e}/displayed"), Value::Null)
                    .await;
                if shown == Ok(Value::Bool(true)) {
                    return Ok(e);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("`{css}` not shown within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let e = self.wait_for(css, Duration::from_secs(10)).await?;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .await
        .map(|_| ())
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        let e = self.wait_for(css, Duration::from_secs(10)).await?;
        self.call("POST", &format!("/element/{e}/click"), json!({}))
            .await
            .map(|_| ())
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> Result<String, String> {
        let e = self.wait_for(css, Duration::from_secs(10)).await?;
        let v = self
            .call("GET", &format!("/element/{e}/text"), Value::Null)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result.
    pub async fn script(&self, script: &str, args: Value) -> Result<Value, String> {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Runs an async `script` that returns bytes as base64 (`btoa`), and decodes them.
    pub async fn script_bytes(&self, script: &str) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let v = self.script(script, json!([])).await?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    /// The text of an open alert dialog, if one is open.
    pub async fn alert(&self) -> Option<String> {
        let v = self.call("GET", "/alert/text", Value::Null).await.ok()?;
        v.as_str().map(String::from)
    }

    /// Writes a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) -> Result<(), String> {
        use base64::Engine;
        let v = self.call("GET", "/screenshot", Value::Null).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, png).map_err(|e| e.to_string())
    }
}

impl Drop for Browser {
    /// Kills chromedriver with the Chromium it started (killing chromedriver alone left a
    /// running Chromium behind every test).
    fn drop(&mut self) {
        // SAFETY: a plain signal to the process group chromedriver leads (`process_group(0)`)
        unsafe { libc::killpg(self.driver.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}
