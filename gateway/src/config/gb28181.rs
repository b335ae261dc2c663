//! `[gb28181]`: the GB/T 28181 platform — where it listens, who it is, which devices may
//! register (and with which password), and how their channels map to townships.

use super::raw::{Gb28181DeviceEntry, Gb28181Section};
use super::registry::Townships;
use super::Validator;
use ::gb28181::devices::LivenessConfig;
use ::gb28181::sip::transport::TransportConfig;
use ::gb28181::{DeviceConfig, Gb28181Config};
use chrono::FixedOffset;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

impl Validator {
    pub(super) fn gb28181(
        &mut self,
        g: &Gb28181Section,
        known: &Townships,
        data_dir: &Path,
        offset: FixedOffset,
        alarm_dedup: Duration,
    ) -> Option<Gb28181Config> {
        let at = self.at(&g.sip_id);
        let sip_id = g.sip_id.get_ref().clone();
        if !::gb28181::id::is_id(&sip_id) {
            self.err(
                at.clone(),
                format!("[gb28181] `sip_id`: `{sip_id}` is not 20 digits"),
            );
        }
        let mut listen = |s: &Option<toml::Spanned<String>>, key: &str| {
            let s = s.as_ref()?;
            let parsed = s.get_ref().parse().ok();
            if parsed.is_none() {
                let a = self.at(s);
                self.err(
                    a,
                    format!(
                        "[gb28181] `{key}`: `{}` is not an address like `0.0.0.0:5060`",
                        s.get_ref()
                    ),
                );
            }
            parsed
        };
        let udp = listen(&g.listen_udp, "listen_udp");
        let tcp = listen(&g.listen_tcp, "listen_tcp");
        if g.listen_udp.is_none() && g.listen_tcp.is_none() {
            self.err(
                at.clone(),
                "[gb28181] needs `listen_udp`, `listen_tcp` or both",
            );
        }
        if g.keepalive_timeout_s == 0
            || g.keepalive_misses == 0
            || g.idle_timeout_s == 0
            || g.events_per_hour == 0
        {
            self.err(
                at.clone(),
                "[gb28181] `keepalive_timeout_s`, `keepalive_misses`, `events_per_hour` and `idle_timeout_s` must be at least 1",
            );
        }
        let domain = match &g.domain {
            Some(d) => d.get_ref().clone(),
            None => ::gb28181::id::domain_of(&sip_id).to_string(),
        };
        let draft = self.secret_draft(&g.password, &g.password_env, &g.password_file, at.clone());
        let password = self.secret(&draft, "password", true);
        let devices = self.gb28181_devices(&g.devices, known);
        let mut civil_codes = Vec::new();
        for (prefix, township) in &g.civil_codes {
            if !known.contains(township.get_ref()) {
                let a = self.at(township);
                self.err(
                    a,
                    format!(
                        "[gb28181.civil_codes] `{prefix}`: no township `{}`",
                        township.get_ref()
                    ),
                );
            }
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                let a = self.at(township);
                self.err(
                    a,
                    format!("[gb28181.civil_codes] `{prefix}` is not a civil-code prefix (digits)"),
                );
            }
            civil_codes.push((prefix.clone(), township.get_ref().clone()));
        }
        let channels = self.gb28181_channels(g, known);
        Some(Gb28181Config {
            transport: TransportConfig {
                udp,
                tcp,
                max_connections: g.max_connections.max(1),
                login_timeout: Duration::from_secs(10),
                // a TCP device sends a keepalive every period: a connection idle for longer
                // than the offline rule allows is gone
                idle_timeout: Duration::from_secs(
                    (g.keepalive_timeout_s * u64::from(g.keepalive_misses)).max(g.idle_timeout_s),
                ),
            },
            sip_id,
            domain,
            password: password?,
            liveness: LivenessConfig {
                keepalive_timeout: chrono::Duration::seconds(g.keepalive_timeout_s as i64),
                keepalive_misses: g.keepalive_misses,
                events_per_hour: g.events_per_hour,
            },
            devices,
            civil_codes,
            channels,
            subscribe_expires: Duration::from_secs(g.subscribe_expires_s),
            alarm_dedup,
            picture_interval: (g.vqd_interval_s > 0).then(|| Duration::from_secs(g.vqd_interval_s)),
            media: g.media,
            state_file: Some(data_dir.join("gb28181-devices.json")),
            offset,
        })
    }

    /// `[gb28181.channels]`: 20-digit ids of known townships.
    fn gb28181_channels(&mut self, g: &Gb28181Section, known: &Townships) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, township) in &g.channels {
            let a = self.at(township);
            if !::gb28181::id::is_id(id) {
                self.err(
                    a.clone(),
                    format!("[gb28181.channels] `{id}` is not a 20-digit channel id"),
                );
            }
            if !known.contains(township.get_ref()) {
                self.err(
                    a,
                    format!(
                        "[gb28181.channels] `{id}`: no township `{}`",
                        township.get_ref()
                    ),
                );
            }
            out.push((id.clone(), township.get_ref().clone()));
        }
        out
    }

    fn gb28181_devices(
        &mut self,
        raw: &[Gb28181DeviceEntry],
        known: &Townships,
    ) -> Vec<DeviceConfig> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for d in raw {
            let at = self.at(&d.id);
            let id = d.id.get_ref();
            if !::gb28181::id::is_id(id) {
                self.err(
                    at.clone(),
                    format!("[[gb28181.devices]] `id`: `{id}` is not 20 digits"),
                );
            }
            if !seen.insert(id.clone()) {
                self.err(
                    at.clone(),
                    format!("[[gb28181.devices]] `{id}` is listed twice"),
                );
            }
            if let Some(t) = d.township.as_ref().filter(|t| !known.contains(t.get_ref())) {
                let a = self.at(t);
                self.err(
                    a,
                    format!("[[gb28181.devices]] `{id}`: no township `{}`", t.get_ref()),
                );
            }
            let draft = self.secret_draft(&d.password, &d.password_env, &d.password_file, at);
            out.push(DeviceConfig {
                id: id.clone(),
                township: d.township.as_ref().map(|t| t.get_ref().clone()),
                password: self.secret(&draft, "password", false),
                name: d.name.clone(),
                media: d.media,
            });
        }
        out
    }
}
