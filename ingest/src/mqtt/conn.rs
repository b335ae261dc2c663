//! One face over rumqttc's MQTT 3.1.1 and MQTT 5 clients, which are parallel APIs with their
//! own types: the source speaks to this and does not care which version the broker talks.
//!
//! Persistent sessions differ by version: 3.1.1 has "clean session off"; MQTT 5 has "clean
//! start off" *and* a session expiry interval — without one the broker drops the session (and
//! the messages queued in it) the moment the connection ends.

use super::MqttConfig;
use rumqttc::v5::mqttbytes::v5 as v5b;
use rumqttc::Transport;
use std::path::Path;

/// The largest packet MQTT 5 allows (remaining length plus fixed header).
const V5_MAX_PACKET: u32 = 268_435_460;

/// The MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// MQTT 3.1.1.
    #[default]
    V311,
    /// MQTT 5.
    V5,
}

impl Version {
    /// By its configuration name: `3.1.1` or `5`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "3.1.1" | "3" | "4" => Some(Self::V311),
            "5" | "5.0" => Some(Self::V5),
            _ => None,
        }
    }
}

/// How long an MQTT 5 broker keeps the gateway's session while it is away (a week: a gateway
/// down longer than that has bigger problems, and the broker must not hold messages forever).
pub const SESSION_EXPIRY_S: u32 = 7 * 24 * 3600;

/// A received PUBLISH.
#[derive(Debug, Clone)]
pub enum Publish {
    /// MQTT 3.1.1.
    V4(rumqttc::Publish),
    /// MQTT 5.
    V5(v5b::Publish),
}

impl Publish {
    /// The topic (`None` when an MQTT 5 topic is not UTF-8).
    pub fn topic(&self) -> Option<&str> {
        match self {
            Publish::V4(p) => Some(&p.topic),
            Publish::V5(p) => std::str::from_utf8(&p.topic).ok(),
        }
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        match self {
            Publish::V4(p) => &p.payload,
            Publish::V5(p) => &p.payload,
        }
    }

    /// Whether it must be acknowledged (QoS 1 or 2).
    pub fn needs_ack(&self) -> bool {
        match self {
            Publish::V4(p) => p.qos != rumqttc::QoS::AtMostOnce,
            Publish::V5(p) => p.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        }
    }
}

/// What polling the connection gave.
#[derive(Debug)]
pub enum Polled {
    /// Connected.
    ConnAck {
        /// Whether the broker still had the session.
        session_present: bool,
    },
    /// A message.
    Publish(Publish),
    /// A subscription answer: `false` when the broker refused a filter.
    SubAck(bool),
    /// Anything else (pings, acks of our acks…).
    Other,
    /// The connection failed or dropped (the message is safe to log: no credentials).
    Error(String),
}

/// Why an ack was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum AckError {
    /// The request channel is full: try again later.
    Full,
    /// The client is closing.
    Closed(String),
}

/// The handle that sends requests.
#[derive(Clone)]
pub enum Client {
    /// MQTT 3.1.1.
    V4(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(rumqttc::v5::AsyncClient),
}

/// The connection, polled by the source.
pub enum Connection {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::EventLoop>),
}

/// The largest packet passed to rumqttc as it is: the payload limit plus room for a topic
/// (up to 64 KiB) and MQTT 5 properties. The guard replaces larger PUBLISHes by stand-ins.
pub fn packet_limit(config: &MqttConfig) -> usize {
    config.max_payload_bytes + (128 << 10)
}

/// Creates the client and its connection to the guard's socket (nothing is sent until the
/// connection is polled).
pub fn connect(config: &MqttConfig, capacity: usize, socket: &Path) -> (Client, Connection) {
    let socket = socket.to_string_lossy();
    match config.version {
        Version::V311 => {
            let mut o = rumqttc::MqttOptions::new(&config.client_id, socket.as_ref(), 0);
            o.set_clean_session(false)
                .set_manual_acks(true)
                .set_keep_alive(config.keep_alive)
                .set_max_packet_size(packet_limit(config) + 64, 1 << 20)
                .set_transport(Transport::Unix);
            if let Some((user, password)) = &config.credentials {
                o.set_credentials(user, password.expose());
            }
            let (client, eventloop) = rumqttc::AsyncClient::new(o, capacity);
            (Client::V4(client), Connection::V4(Box::new(eventloop)))
        }
        Version::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(&config.client_id, socket.as_ref(), 0);
            o.set_clean_start(false)
                .set_session_expiry_interval(Some(SESSION_EXPIRY_S))
                .set_manual_acks(true)
                .set_keep_alive(config.keep_alive)
                .set_transport(Transport::Unix)
                // the guard bounds what arrives; a smaller value here would make the broker
                // drop large messages unseen (MQTT 5 §3.1.2.11.4) and uncounted
                .set_max_packet_size(Some(V5_MAX_PACKET));
            if let Some((user, password)) = &config.credentials {
                o.set_credentials(user, password.expose());
            }
            let (client, eventloop) = rumqttc::v5::AsyncClient::new(o, capacity);
            (Client::V5(client), Connection::V5(Box::new(eventloop)))
        }
    }
}

impl Connection {
    /// Polls the connection: connects when needed, reads one event.
    pub async fn poll(&mut self) -> Polled {
        match self {
            Connection::V4(el) => {
                use rumqttc::{Event, Packet};
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => Polled::ConnAck {
                        session_present: ack.session_present,
                    },
                    Ok(Event::Incoming(Packet::Publish(p))) => Polled::Publish(Publish::V4(p)),
                    Ok(Event::Incoming(Packet::SubAck(ack))) => Polled::SubAck(
                        !ack.return_codes
                            .iter()
                            .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)),
                    ),
                    Ok(_) => Polled::Other,
                    Err(e) => Polled::Error(e.to_string()),
                }
            }
            Connection::V5(el) => {
                use rumqttc::v5::Event;
                use v5b::Packet;
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => Polled::ConnAck {
                        session_present: ack.session_present,
                    },
                    Ok(Event::Incoming(Packet::Publish(p))) => Polled::Publish(Publish::V5(p)),
                    Ok(Event::Incoming(Packet::SubAck(ack))) => Polled::SubAck(
                        ack.return_codes
                            .iter()
                            .all(|c| matches!(c, v5b::SubscribeReasonCode::Success(_))),
                    ),
                    Ok(_) => Polled::Other,
                    Err(e) => Polled::Error(e.to_string()),
                }
            }
        }
    }
}

impl Client {
    /// Asks to subscribe to a filter (the answer comes as [`Polled::SubAck`]).
    pub async fn subscribe(&self, filter: &str, qos1: bool) -> Result<(), String> {
        match self {
            Client::V4(c) => {
                let qos = if qos1 {
                    rumqttc::QoS::AtLeastOnce
                } else {
                    rumqttc::QoS::AtMostOnce
                };
                c.subscribe(filter, qos).await.map_err(|e| e.to_string())
            }
            Client::V5(c) => {
                let qos = if qos1 {
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce
                } else {
                    rumqttc::v5::mqttbytes::QoS::AtMostOnce
                };
                c.subscribe(filter, qos).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Queues the acknowledgement of a message without waiting.
    pub fn try_ack(&self, publish: &Publish) -> Result<(), AckError> {
        let full_or_closed = |full: bool, e: String| {
            if full {
                AckError::Full
            } else {
                AckError::Closed(e)
            }
        };
        match (self, publish) {
            (Client::V4(c), Publish::V4(p)) => c.try_ack(p).map_err(|e| {
                full_or_closed(
                    matches!(e, rumqttc::ClientError::TryRequest(_)),
                    e.to_string(),
                )
            }),
            (Client::V5(c), Publish::V5(p)) => c.try_ack(p).map_err(|e| {
                full_or_closed(
                    matches!(e, rumqttc::v5::ClientError::TryRequest(_)),
                    e.to_string(),
                )
            }),
            _ => Err(AckError::Closed("message of another MQTT version".into())),
        }
    }

    /// Disconnects cleanly.
    pub async fn disconnect(&self) {
        let _ = match self {
            Client::V4(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Client::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        };
    }
}
