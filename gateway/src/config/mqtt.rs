//! `[mqtt]`: the broker, the topics, the session, the credentials.

use super::raw::MqttSection;
use super::{At, Validator};
use alerts::Secret;
use ingest::mqtt::{MqttConfig, TopicPattern, Version};
use ingest::profile::Profiles;
use std::time::Duration;

/// Where the broker is.
struct Endpoint {
    host: String,
    port: u16,
    tls: bool,
}

impl Validator {
    /// `[mqtt]`; `None` when any of its keys is wrong (each one reported).
    pub(super) fn mqtt(&mut self, m: &MqttSection, profiles: Profiles) -> Option<MqttConfig> {
        let errors_before = self.errors.len();
        let url_at = self.at(&m.url);
        let endpoint = self.mqtt_endpoint(m, &url_at);
        let client_id = m.client_id.get_ref();
        if client_id.is_empty() || client_id.len() > 64 || client_id.contains(['+', '#', '/']) {
            self.err(
                self.at(&m.client_id),
                "[mqtt] `client_id` must be 1-64 characters without `+`, `#`, `/`",
            );
        }
        let (pattern, topics) = self.mqtt_topics(m);
        let qos = *m.qos.get_ref();
        if qos > 1 {
            self.err(self.at(&m.qos), format!("[mqtt] `qos`: {qos} is not 0 or 1 (QoS 1 with ack after commit already gives at-least-once)"));
        }
        let version = match &m.version {
            None => Version::V311,
            Some(v) => Version::from_name(v.get_ref()).unwrap_or_else(|| {
                self.err(
                    self.at(v),
                    format!(
                        "[mqtt] `version`: `{}` is not \"3.1.1\" or \"5\"",
                        v.get_ref()
                    ),
                );
                Version::V311
            }),
        };
        let shared_group = m.shared_group.as_ref().map(|g| {
            if g.get_ref().is_empty() || g.get_ref().contains(['/', '+', '#']) {
                self.err(
                    self.at(g),
                    "[mqtt] `shared_group` must be non-empty without `/`, `+`, `#`",
                );
            }
            g.get_ref().clone()
        });
        let credentials = self.mqtt_credentials(m, &url_at);
        let ca = self.mqtt_ca(m, endpoint.tls);
        if m.max_in_flight == 0 || m.max_payload_bytes == 0 || m.keep_alive_s < 5 {
            self.err(url_at, "[mqtt] `max_in_flight` and `max_payload_bytes` must be positive, `keep_alive_s` at least 5");
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(MqttConfig {
            host: endpoint.host,
            port: endpoint.port,
            tls: endpoint.tls.then_some(ca),
            client_id: client_id.clone(),
            credentials,
            topics,
            pattern: pattern?,
            version,
            profiles: std::sync::Arc::new(alerts::live::Live::new(std::sync::Arc::new(profiles))),
            qos,
            shared_group,
            keep_alive: Duration::from_secs(m.keep_alive_s),
            max_payload_bytes: m.max_payload_bytes,
            max_in_flight: m.max_in_flight,
            reconnect_initial: Duration::from_millis(m.reconnect_initial_ms.max(1)),
            reconnect_max: Duration::from_millis(
                m.reconnect_max_ms.max(m.reconnect_initial_ms.max(1)),
            ),
            socket_dir: None,
        })
    }

    /// `url`: `mqtt://` or `mqtts://`, a host, no credentials.
    fn mqtt_endpoint(&mut self, m: &MqttSection, url_at: &At) -> Endpoint {
        let parsed = reqwest::Url::parse(m.url.get_ref());
        let (tls, default_port) = match &parsed {
            Ok(u) if u.scheme() == "mqtt" => (false, 1883),
            Ok(u) if u.scheme() == "mqtts" => (true, 8883),
            Ok(u) => {
                self.err(
                    url_at.clone(),
                    format!("[mqtt] `url`: scheme `{}` is not mqtt or mqtts", u.scheme()),
                );
                (false, 1883)
            }
            Err(e) => {
                self.err(
                    url_at.clone(),
                    format!("[mqtt] `url`: `{}` is not a URL ({e})", m.url.get_ref()),
                );
                (false, 1883)
            }
        };
        let parsed = parsed.ok();
        let host = parsed
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_string();
        if parsed.is_some() && host.is_empty() {
            self.err(url_at.clone(), "[mqtt] `url` has no host");
        }
        if parsed
            .as_ref()
            .is_some_and(|u| !u.username().is_empty() || u.password().is_some())
        {
            self.err(url_at.clone(), "[mqtt] `url`: credentials must not be in the URL; use `username` and `password_env` / `password_file`");
        }
        let port = parsed
            .as_ref()
            .and_then(|u| u.port())
            .unwrap_or(default_port);
        Endpoint { host, port, tls }
    }

    /// `topic_pattern` and `topics` (valid filters; the pattern's filter when none is given).
    fn mqtt_topics(&mut self, m: &MqttSection) -> (Option<TopicPattern>, Vec<String>) {
        let pattern = match TopicPattern::parse(m.topic_pattern.get_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(
                    self.at(&m.topic_pattern),
                    format!("[mqtt] `topic_pattern`: {e}"),
                );
                None
            }
        };
        let mut topics = Vec::new();
        for t in &m.topics {
            let levels = t.get_ref().split('/').count();
            let ok = !t.get_ref().is_empty()
                && t.get_ref().split('/').enumerate().all(|(i, level)| {
                    level == "+" || (level == "#" && i == levels - 1) || !level.contains(['+', '#'])
                });
            if !ok {
                self.err(
                    self.at(t),
                    format!(
                        "[mqtt] `topics`: `{}` is not a valid topic filter",
                        t.get_ref()
                    ),
                );
            }
            topics.push(t.get_ref().clone());
        }
        if topics.is_empty() {
            if let Some(p) = &pattern {
                topics.push(p.filter());
            }
        }
        (pattern, topics)
    }

    /// `username` with its password (a password alone is an error).
    fn mqtt_credentials(&mut self, m: &MqttSection, url_at: &At) -> Option<(String, Secret)> {
        let draft = self.secret_draft(
            &m.password,
            &m.password_env,
            &m.password_file,
            url_at.clone(),
        );
        let password = self.secret(&draft, "password", false);
        match (&m.username, password) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (Some(u), None) => Some((u.clone(), Secret::new(String::new()))),
            (None, Some(_)) => {
                self.err(url_at.clone(), "[mqtt] a password needs a `username`");
                None
            }
            (None, None) => None,
        }
    }

    /// `ca_file`: read, and only with `mqtts://`.
    fn mqtt_ca(&mut self, m: &MqttSection, tls: bool) -> Option<Vec<u8>> {
        let f = m.ca_file.as_ref()?;
        if !tls {
            self.err(
                self.at(f),
                "[mqtt] `ca_file` is only used with an mqtts:// url",
            );
            return None;
        }
        match std::fs::read(self.path(f.get_ref())) {
            Ok(pem) => Some(pem),
            Err(e) => {
                self.err(
                    self.at(f),
                    format!("[mqtt] `ca_file`: cannot read `{}`: {e}", f.get_ref()),
                );
                None
            }
        }
    }
}
