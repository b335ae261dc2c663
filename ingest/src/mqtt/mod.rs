//! The MQTT source: key units and IoT fire sensors publishing the standard profile or a
//! vendor profile, over MQTT 3.1.1 or MQTT 5.
//!
//! * **Persistent session** (clean session off — for MQTT 5 clean start off and a session
//!   expiry interval — and a stable client id): what is published while the gateway is down or
//!   reconnecting waits at the broker.
//! * **PUBACK after commit**: a QoS 1 message is acknowledged only once the events it produced
//!   are committed in the outbox, or once it was deliberately discarded and counted (malformed,
//!   unknown unit…). Messages are committed concurrently (group commit) and acknowledged in the
//!   order they arrived, as MQTT requires. A message received on an earlier connection is never
//!   acknowledged on a later one — its packet id may by then name another message; the broker
//!   redelivers it instead (the dedup window absorbs the repeat of a status).
//! * **Back-pressure**: when the outbox is full, the message waits and is retried; once
//!   `max_in_flight` messages wait, the connection is not polled, so the broker holds the rest.
//! * **Reconnect** with exponential backoff and jitter, logged once per outage.

mod conn;
mod guard;
pub mod topic;

use crate::accept::{decode, submit, Message};
use crate::profile::Profiles;
use alerts::signal::Protocol;
use alerts::{Pipeline, Secret};
use conn::{AckError, Client, Polled, Publish};
pub use conn::{Version, SESSION_EXPIRY_S};
use futures::stream::{FuturesOrdered, StreamExt};
use guard::{Guard, Marker};
use prometheus::{IntCounter, IntGauge};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
pub use topic::TopicPattern;

/// Messages waiting because the outbox cannot take them: logged once per outage.
static WAITING: alerts::outage::Outage = alerts::outage::Outage::new();

/// The `source` label of this source's metrics.
pub const SOURCE: &str = "mqtt";

/// MQTT settings (validated by the gateway's config loader).
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS (`mqtts://`): `Some(ca)` with an optional CA bundle in PEM, else plain TCP.
    pub tls: Option<Option<Vec<u8>>>,
    /// Client id; stable, so the broker keeps the session.
    pub client_id: String,
    /// Username and password.
    pub credentials: Option<(String, Secret)>,
    /// Subscription filters.
    pub topics: Vec<String>,
    /// Topic → unit and channel.
    pub pattern: TopicPattern,
    /// MQTT 3.1.1 or 5.
    pub version: Version,
    /// Vendor profiles: a topic one of them reads is decoded by it (first match wins), before
    /// the standard pattern is tried; their topics are subscribed too. A config reload may
    /// replace them (the same topic filters: a change of filters needs a restart).
    pub profiles: Arc<alerts::live::Live<Profiles>>,
    /// Subscription QoS (0 or 1).
    pub qos: u8,
    /// Shared subscription group (`$share/<group>/<filter>`), so instances split the stream.
    pub shared_group: Option<String>,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Larger payloads are discarded and counted (`reason="too_large"`).
    pub max_payload_bytes: usize,
    /// Messages being committed at once; beyond, the connection is not polled.
    pub max_in_flight: usize,
    /// First reconnect delay.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// The gateway's own directory (its `data_dir`): the private socket between the client
    /// and the broker connection goes there; `None`, or no room, puts it in a temporary one.
    pub socket_dir: Option<std::path::PathBuf>,
}

/// The source's own metrics (besides the shared ingest counters).
#[derive(Clone)]
struct MqttMetrics {
    connected: IntGauge,
    subscribed: IntGauge,
    connects: IntCounter,
    connection_errors: IntCounter,
}

impl MqttMetrics {
    fn new(registry: &prometheus::Registry) -> Self {
        let m = Self {
            connected: IntGauge::new(
                "gateway_mqtt_connected",
                "1 while connected to the MQTT broker",
            )
            .expect("metric"),
            subscribed: IntGauge::new(
                "gateway_mqtt_subscribed",
                "1 once the broker has acknowledged every subscription on the current connection",
            )
            .expect("metric"),
            connects: IntCounter::new(
                "gateway_mqtt_connects_total",
                "Successful MQTT connections (CONNACK)",
            )
            .expect("metric"),
            connection_errors: IntCounter::new(
                "gateway_mqtt_connection_errors_total",
                "Failed MQTT connection attempts and dropped connections",
            )
            .expect("metric"),
        };
        for c in [
            Box::new(m.connected.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.subscribed.clone()),
            Box::new(m.connects.clone()),
            Box::new(m.connection_errors.clone()),
        ] {
            // a second source instance in one process (tests) shares the first's series
            let _ = registry.register(c);
        }
        m
    }
}

/// A message and the connection it arrived on.
struct Incoming {
    publish: Publish,
    epoch: u64,
}

/// Starts the source; it runs until `stop` turns true.
pub fn spawn(
    config: MqttConfig,
    pipeline: Arc<Pipeline>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(config, pipeline, stop))
}

async fn run(config: MqttConfig, pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    let config = Arc::new(config);
    let metrics = MqttMetrics::new(&pipeline.metrics().registry);
    let in_flight = config.max_in_flight.max(1);
    let marker = Marker::random();
    let guard = match Guard::start(&config, conn::packet_limit(&config), marker) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "MQTT source cannot start its broker connection guard");
            return;
        }
    };
    let (client, mut connection) = conn::connect(&config, 2 * in_flight + 64, guard.path());
    let epoch = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<Incoming>(in_flight);
    let processor = tokio::spawn(process(
        rx,
        client.clone(),
        pipeline.clone(),
        epoch.clone(),
        config.clone(),
        marker,
    ));
    let qos1 = config.qos != 0;
    let mut topics = config.topics.clone();
    for f in config.profiles.get().filters() {
        if !topics.contains(&f) {
            topics.push(f);
        }
    }
    let filters: Vec<String> = topics
        .iter()
        .map(|t| match &config.shared_group {
            Some(g) => format!("$share/{g}/{t}"),
            None => t.clone(),
        })
        .collect();
    let broker = format!("{}:{}", config.host, config.port);
    let mut failures: u32 = 0;
    let mut outage_since: Option<Instant> = None;
    let mut suback_pending = 0usize;
    loop {
        let event = tokio::select! {
            _ = stop.changed() => break,
            event = connection.poll() => event,
        };
        match event {
            Polled::ConnAck { session_present } => {
                let current = epoch.fetch_add(1, Ordering::SeqCst) + 1;
                metrics.connected.set(1);
                metrics.connects.inc();
                match outage_since.take() {
                    Some(since) => tracing::info!(
                        %broker, attempts = failures, outage_s = since.elapsed().as_secs_f64(),
                        session_present, "MQTT reconnected"
                    ),
                    None => {
                        tracing::info!(%broker, client_id = %config.client_id, session_present, "MQTT connected")
                    }
                }
                failures = 0;
                metrics.subscribed.set(0);
                suback_pending = filters.len();
                for f in &filters {
                    if let Err(e) = client.subscribe(f, qos1).await {
                        tracing::error!(filter = %f, error = %e, "MQTT subscribe request failed");
                    }
                }
                tracing::debug!(epoch = current, "MQTT session epoch");
            }
            Polled::Publish(publish) => {
                let incoming = Incoming {
                    publish,
                    epoch: epoch.load(Ordering::SeqCst),
                };
                // blocks while max_in_flight messages are being committed: the broker holds the rest
                if tx.send(incoming).await.is_err() {
                    break;
                }
            }
            Polled::SubAck(false) => {
                tracing::error!("MQTT broker refused a subscription");
            }
            Polled::SubAck(true) => {
                suback_pending = suback_pending.saturating_sub(1);
                if suback_pending == 0 {
                    metrics.subscribed.set(1);
                }
            }
            Polled::Other => {}
            Polled::Error(e) => {
                // the guard knows why the broker could not be reached; rumqttc saw its socket close
                let e = guard.take_error().unwrap_or(e);
                metrics.connected.set(0);
                metrics.subscribed.set(0);
                metrics.connection_errors.inc();
                failures += 1;
                if outage_since.is_none() {
                    outage_since = Some(Instant::now());
                    tracing::warn!(%broker, error = %e, "MQTT connection lost or refused; reconnecting with backoff");
                } else {
                    tracing::debug!(%broker, error = %e, attempt = failures, "MQTT reconnect failed");
                }
                if !crate::retry::pause(
                    failures,
                    config.reconnect_initial,
                    config.reconnect_max,
                    &mut stop,
                )
                .await
                {
                    break;
                }
            }
        }
    }
    metrics.connected.set(0);
    metrics.subscribed.set(0);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), processor).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), client.disconnect()).await;
    tracing::info!("MQTT source stopped");
}

/// Commits messages concurrently, acknowledges them in arrival order.
///
/// Acks never block this loop. While the poll loop is paused (back-pressure) or busy reading a
/// burst, rumqttc's request channel — where acks go — drains slowly or not at all; an ack that
/// waited for room there would stop this loop from freeing the queue the poll loop waits on, and
/// both would stall for good. So finished messages join `owed` in arrival order and are
/// acknowledged with `try_ack` as far as the channel takes them; the rest are retried on a short
/// tick, still in order.
async fn process(
    mut rx: mpsc::Receiver<Incoming>,
    client: Client,
    pipeline: Arc<Pipeline>,
    epoch: Arc<AtomicU64>,
    config: Arc<MqttConfig>,
    marker: Marker,
) {
    let mut in_flight = FuturesOrdered::new();
    let mut owed: VecDeque<Incoming> = VecDeque::new();
    let mut retry = tokio::time::interval(Duration::from_millis(1));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            _ = retry.tick(), if !owed.is_empty() => ack_owed(&client, &epoch, &mut owed),
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                owed.push_back(done);
                ack_owed(&client, &epoch, &mut owed);
            }
            next = rx.recv(), if open && in_flight.len() < config.max_in_flight.max(1) => match next {
                Some(incoming) => in_flight.push_back(handle(incoming, pipeline.clone(), config.clone(), marker)),
                None => open = false,
            },
        }
    }
    // shutting down: give the last acks a moment to be queued
    let deadline = Instant::now() + Duration::from_secs(1);
    while !owed.is_empty() && Instant::now() < deadline {
        ack_owed(&client, &epoch, &mut owed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Acknowledges owed messages in order, as far as rumqttc's request channel has room. Messages
/// of an earlier connection are dropped unacknowledged (the broker redelivers them).
fn ack_owed(client: &Client, epoch: &AtomicU64, owed: &mut VecDeque<Incoming>) {
    let current = epoch.load(Ordering::SeqCst);
    while let Some(front) = owed.front() {
        if front.publish.needs_ack() && front.epoch == current {
            match client.try_ack(&front.publish) {
                Ok(()) => {}
                Err(AckError::Full) => return, // full: retry on the tick
                Err(AckError::Closed(e)) => {
                    tracing::debug!(error = %e, "MQTT ack not queued (connection closing)")
                }
            }
        }
        owed.pop_front();
    }
}

/// Takes one message to its end: committed, or discarded and counted. Waits (never drops)
/// while the outbox is full or unavailable.
async fn handle(
    incoming: Incoming,
    pipeline: Arc<Pipeline>,
    config: Arc<MqttConfig>,
    marker: Marker,
) -> Incoming {
    let metrics = pipeline.metrics();
    metrics.ingested(SOURCE);
    let Some(topic) = incoming.publish.topic() else {
        metrics.rejected(SOURCE, "unknown_topic");
        tracing::debug!("MQTT topic is not UTF-8; discarded");
        return incoming;
    };
    let payload = incoming.publish.payload();
    let profiles = config.profiles.get();
    let message = match profiles.for_topic(topic) {
        Some((profile, unit_id)) => Message::Vendor { profile, unit_id },
        None => match config.pattern.extract(topic) {
            Some((unit_id, channel)) => Message::Standard { unit_id, channel },
            None => {
                metrics.rejected(SOURCE, "unknown_topic");
                tracing::debug!(topic, pattern = %config.pattern, "MQTT topic fits neither the pattern nor a profile; discarded");
                return incoming;
            }
        },
    };
    let (unit, channel) = (message.unit(), message.channel());
    // a stand-in from the guard: the message was too large to pass at all
    let size = marker.oversized(payload).unwrap_or(payload.len() as u64);
    if size > config.max_payload_bytes as u64 {
        metrics.rejected(SOURCE, "too_large");
        tracing::warn!(
            unit,
            channel,
            bytes = size,
            limit = config.max_payload_bytes,
            "MQTT payload too large; discarded"
        );
        return incoming;
    }
    let decoded = match decode(&pipeline, Protocol::Mqtt, message, payload) {
        Ok(d) => d,
        Err(e) => {
            metrics.rejected(SOURCE, e.reason());
            tracing::debug!(unit, channel, reason = e.reason(), error = %e, "MQTT message rejected");
            return incoming;
        }
    };
    let mut waits: u32 = 0;
    loop {
        let key = crate::accept::payload_key(SOURCE, &message, payload);
        match submit(&pipeline, Protocol::Mqtt, &decoded, Some(key)).await {
            Ok(_) => {
                if WAITING.recovered() {
                    tracing::info!("MQTT messages are committed again");
                }
                return incoming;
            }
            Err(e) if e.is_transient() => {
                waits += 1;
                if waits == 1 && WAITING.failed() {
                    tracing::warn!(unit = %decoded.unit_id, channel, error = %e, "MQTT messages wait (unacknowledged, the broker keeps them) while the outbox cannot take them");
                }
                let delay = alerts::delivery::backoff(
                    waits,
                    Duration::from_millis(50),
                    Duration::from_secs(2),
                    &mut rand::thread_rng(),
                );
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                metrics.rejected(SOURCE, e.reason());
                tracing::debug!(unit = %decoded.unit_id, channel, reason = e.reason(), error = %e, "MQTT message rejected");
                return incoming;
            }
        }
    }
}
