//! A real mosquitto broker for tests and benchmarks, in a known state: its own port, its own
//! persistence directory, per-client queue and in-flight limits lifted (so the broker is never
//! what loses or throttles messages in a measurement).

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running broker.
pub struct Mosquitto {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    tls: Option<Tls>,
    /// The directory's owner when the broker made it ([`Mosquitto::start_temp`]): a field,
    /// so removed after `drop` has stopped the broker.
    temp: Option<tempfile::TempDir>,
}

/// TLS material and credentials of a broker started with [`Mosquitto::start_tls`].
#[derive(Debug, Clone)]
pub struct Tls {
    /// The CA certificate (PEM) that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// The one user in the broker's password file.
    pub username: String,
    /// Its password.
    pub password: String,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// A CA and a server certificate for `localhost` / 127.0.0.1 signed by it, made with openssl.
fn make_certificates(dir: &Path) -> Result<(), String> {
    let d = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=gateway test CA",
        ])
        .arg("-keyout")
        .arg(d("ca.key"))
        .arg("-out")
        .arg(d("ca.crt")))?;
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(d("server.key"))
        .arg("-out")
        .arg(d("server.csr")))?;
    std::fs::write(d("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        .map_err(|e| e.to_string())?;
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(d("server.csr"))
        .arg("-CA")
        .arg(d("ca.crt"))
        .arg("-CAkey")
        .arg(d("ca.key"))
        .arg("-out")
        .arg(d("server.crt"))
        .arg("-extfile")
        .arg(d("san.ext")))?;
    Ok(())
}

impl Mosquitto {
    /// Starts a broker with its state in `dir`, on a free port.
    pub async fn start(dir: &Path) -> Result<Self, String> {
        let mut m = Mosquitto {
            child: None,
            port: crate::harness::free_port(),
            dir: dir.to_path_buf(),
            tls: None,
            temp: None,
        };
        m.launch().await?;
        Ok(m)
    }

    /// Starts a broker that only speaks TLS (certificate for `localhost`, signed by a CA made
    /// for it) and only lets in `username`/`password` from its password file.
    pub async fn start_tls(dir: &Path, username: &str, password: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        make_certificates(dir)?;
        run(Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(dir.join("passwd"))
            .args([username, password]))?;
        let tls = Tls {
            ca_file: dir.join("ca.crt"),
            username: username.into(),
            password: password.into(),
        };
        let mut m = Mosquitto {
            child: None,
            port: crate::harness::free_port(),
            dir: dir.to_path_buf(),
            tls: Some(tls),
            temp: None,
        };
        m.launch().await?;
        Ok(m)
    }

    /// Starts a broker with its state in a temporary directory of its own, removed when the
    /// broker is dropped.
    pub async fn start_temp() -> Result<Self, String> {
        let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut m = Self::start(temp.path()).await?;
        m.temp = Some(temp);
        Ok(m)
    }

    /// As [`Mosquitto::start_tls`], in a temporary directory of its own.
    pub async fn start_tls_temp(username: &str, password: &str) -> Result<Self, String> {
        let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut m = Self::start_tls(temp.path(), username, password).await?;
        m.temp = Some(temp);
        Ok(m)
    }

    /// The directory holding the broker's configuration, state and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The TLS material, for a broker started with [`Mosquitto::start_tls`].
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    async fn launch(&mut self) -> Result<(), String> {
        crate::harness::require(mosquitto_bin(), "mosquitto")?;
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let conf = self.dir.join("mosquitto.conf");
        let dir = self.dir.display();
        let access = match &self.tls {
            None => "allow_anonymous true\n".to_string(),
            Some(_) => format!(
                "allow_anonymous false\npassword_file {dir}/passwd\ncafile {dir}/ca.crt\n\
                 certfile {dir}/server.crt\nkeyfile {dir}/server.key\n"
            ),
        };
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{user}{access}persistence true\npersistence_location {dir}/\n\
                 max_queued_messages 0\nmax_inflight_messages 0\nlog_dest file {dir}/mosquitto.log\nlog_type all\n",
                port = self.port,
                user = stay_as_root(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start mosquitto (install the mosquitto package): {e}"))?;
        self.child = Some(child);
        crate::wait_until(Duration::from_secs(10), "mosquitto to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()
        })
        .await?;
        Ok(())
    }

    /// Stops the broker cleanly (SIGTERM: it saves its persistent state).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = crate::wait_until(Duration::from_secs(10), "mosquitto to exit", || {
                child.try_wait().ok().flatten()
            })
            .await;
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts it again on the same port with the same state.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop().await;
        self.launch().await
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Started as root, mosquitto switches to the `mosquitto` user, which cannot read the test's
/// private directory (certificates, persistence): stay root then.
fn stay_as_root() -> &'static str {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if String::from_utf8_lossy(&uid).trim() == "0" {
        "user root\n"
    } else {
        ""
    }
}

fn mosquitto_bin() -> &'static str {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mosquitto")
}

/// A QoS 1 publisher with a persistent session: it survives broker restarts and resends what
/// the broker had not acknowledged.
pub struct Publisher {
    client: AsyncClient,
    acked: tokio::sync::watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Connects to a broker on `port`.
    pub fn connect(port: u16, client_id: &str) -> Self {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5))
            .set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(o, 10_000);
        let (tx, acked) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut n = 0;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        n += 1;
                        let _ = tx.send(n);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self {
            client,
            acked,
            task,
        }
    }

    /// Queues a QoS 1 publish.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish queued");
    }

    /// Publishes every `(topic, payload)` in order and waits until the broker has acknowledged
    /// them (this publisher's first publishes: the count starts at zero).
    pub async fn publish_all(&mut self, messages: &[(&str, Vec<u8>)], timeout: Duration) {
        for (topic, payload) in messages {
            self.publish(topic, payload.clone()).await;
        }
        self.wait_acked(messages.len() as u64, timeout)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits until the broker has acknowledged `n` publishes in all.
    pub async fn wait_acked(&mut self, n: u64, timeout: Duration) -> Result<(), String> {
        let waited = tokio::time::timeout(timeout, async {
            self.acked.wait_for(|a| *a >= n).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "broker acknowledged only {} of {n} publishes",
                *self.acked.borrow()
            )),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
