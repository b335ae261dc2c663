//! GStreamer's gst-rtsp-server (a ten-line Python script, `tests/gst/rtsp_server.py`) as a
//! third-party RTSP camera: the gateway is proven against an implementation nobody here wrote.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running gst-rtsp-server.
pub struct GstServer {
    child: Child,
    /// Its port.
    pub port: u16,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("gst/rtsp_server.py")
}

impl GstServer {
    /// Starts the server on `port` (0: a free one, see [`GstServer::port`]) with the moving
    /// `ball` pattern and waits until it listens.
    pub fn start(port: u16) -> Result<Self, String> {
        Self::start_pattern(port, "ball")
    }

    /// Starts the server on `port` serving videotestsrc's `pattern` (`ball`, `black`, `smpte`…).
    pub fn start_pattern(port: u16, pattern: &str) -> Result<Self, String> {
        // Debian's python3, which has the GStreamer bindings (python3-gi)
        crate::harness::require("/usr/bin/python3", "python3-gi")?;
        let mut child = Command::new("/usr/bin/python3")
            .arg(script())
            .arg(port.to_string())
            .arg(pattern)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start gst-rtsp-server (apt install python3-gi gir1.2-gst-rtsp-server-1.0): {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.starts_with("ready ") => match line[6..].trim().parse() {
                Ok(port) => Ok(Self { child, port }),
                Err(_) => {
                    let _ = child.kill();
                    Err(format!("gst-rtsp-server said {line:?}"))
                }
            },
            other => {
                let _ = child.kill();
                Err(format!("gst-rtsp-server did not start: {other:?}"))
            }
        }
    }

    /// Sends the server SIGUSR1 (the "turned" pattern pans then).
    pub fn signal_usr1(&self) -> Result<(), String> {
        let status = Command::new("kill")
            .args(["-USR1", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("kill -USR1: {status}"))
    }

    /// The test stream's URL.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }

    /// Kills it (SIGKILL) and waits for it to end.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
