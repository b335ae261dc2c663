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
}

impl Mosquitto {
    /// Starts a broker with its state in `dir`, on a free port.
    pub async fn start(dir: &Path) -> Result<Self, String> {
        let mut m = Mosquitto {
            child: None,
            port: crate::harness::free_port(),
            dir: dir.to_path_buf(),
        };
        m.launch().await?;
        Ok(m)
    }

    async fn launch(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/\n\
                 max_queued_messages 0\nmax_inflight_messages 0\nlog_dest file {dir}/mosquitto.log\nlog_type all\n",
                port = self.port,
                dir = self.dir.display()
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
