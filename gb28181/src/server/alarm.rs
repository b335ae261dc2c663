//! Alarms from devices: about a mapped channel, or the device itself (an IPC with one
//! channel, or a device with a township of its own); committed through the pipeline before
//! the device gets its 200, the same alarm within the dedup window counted, not raised again.

use super::handle::{Reply, Then};
use super::Server;
use crate::manscdp::{self, Body};
use crate::sip::transport::SOURCE;

/// An alarm to raise.
pub(super) struct AlarmJob {
    pub(super) device: String,
    pub(super) sn: Option<u64>,
    camera: alerts::registry::Camera,
    alarm: alerts::camera::DeviceAlarm,
    key: alerts::outbox::MessageKey,
}

impl Server {
    /// An alarm: about a mapped channel, or the device itself (an IPC with one channel, or a
    /// device with a township of its own). Raised before it is answered ([`Server::raise`]).
    pub(super) fn alarm(&self, s: &mut super::State, device: &str, body: &Body) -> Reply {
        let a = manscdp::alarm(body);
        let Some(camera) = self.alarm_camera(s, device, &a.subject) else {
            self.pipeline.metrics().rejected(SOURCE, "alarm_unmapped");
            tracing::info!(device, subject = %a.subject, "GB/T 28181 alarm about nothing mapped to a township; not raised");
            return Reply::status(200, "OK");
        };
        let offset = self.pipeline.offset();
        let at = a.time.as_deref().and_then(|t| local_time(t, offset));
        let key = alerts::outbox::MessageKey {
            key: format!(
                "gb28181:{device}:{}:{}:{}",
                a.subject,
                a.method.as_deref().unwrap_or(""),
                a.alarm_type.as_deref().unwrap_or("")
            ),
            window_ms: self.config.alarm_dedup.as_millis() as i64,
        };
        let job = AlarmJob {
            device: device.to_string(),
            sn: body.sn,
            camera,
            alarm: alerts::camera::DeviceAlarm {
                device: device.to_string(),
                method: a.method,
                alarm_type: a.alarm_type,
                priority: a.priority,
                at,
                description: a.description,
            },
            key,
        };
        Reply {
            then: Some(Then::Alarm(Box::new(job))),
            ..Reply::status(200, "OK")
        }
    }

    /// The camera an alarm is about.
    fn alarm_camera(
        &self,
        s: &super::State,
        device: &str,
        subject: &str,
    ) -> Option<alerts::registry::Camera> {
        let d = s.devices.by_id.get(device)?;
        if let Some(c) = d.channels.get(subject) {
            return super::tick::camera(device, subject, c);
        }
        let mapped: Vec<_> = d
            .channels
            .iter()
            .filter(|(_, c)| c.township.is_some())
            .collect();
        if let [(id, c)] = mapped.as_slice() {
            return super::tick::camera(device, id, c);
        }
        let roster = self.roster();
        let config = roster.devices.get(device)?;
        let name = config.name.clone().unwrap_or_else(|| device.to_string());
        let township = config.township.clone()?;
        Some(super::tick::device_camera(
            device,
            device,
            name,
            township,
            Default::default(),
        ))
    }

    /// Commits an alarm's event; `false` when the outbox could not take it.
    pub(super) async fn raise(&self, job: &AlarmJob) -> bool {
        match self
            .pipeline
            .camera_alarm(&job.camera, &job.alarm, job.key.clone())
            .await
        {
            Ok((id, repeated)) => {
                tracing::info!(device = %job.device, camera = %job.camera.id, %id, repeated, "GB/T 28181 alarm");
                true
            }
            Err(e) => {
                self.pipeline.metrics().rejected(SOURCE, e.reason());
                false
            }
        }
    }
}

/// A device's local time (`2024-05-01T08:30:00`, with or without fractions, `T` or a space)
/// in the gateway's zone.
fn local_time(
    text: &str,
    offset: chrono::FixedOffset,
) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let t = text.trim().replace(' ', "T");
    let naive = chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    naive.and_local_timezone(offset).single()
}
