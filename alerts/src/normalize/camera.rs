//! `camera.*`: what a camera source observed becomes an event, worded here and nowhere else.
//!
//! | observation | event |
//! |---|---|
//! | state change to `online`, `offline`, `stalled`, `degraded` | `camera.online`, `camera.offline`, `camera.stalled`, `camera.degraded` |
//! | picture checks raised or cleared | `camera.quality` |
//! | ONVIF motion / tamper notification | `camera.motion` / `camera.tamper` |
//! | a state entered (uptime log only) | none |
//! | a device alarm (GB/T 28181) | `camera.alarm`, or `camera.tamper` for a tamper alarm |

use crate::camera::{
    CameraState, DeviceAlarm, Observed, OnvifKind, OnvifNotice, PictureCheck, PictureVerdict,
    StateChange,
};
use crate::event::{AlarmDetail, CameraDetail, Event, Kind, Source, SourceKind, TownshipRef};
use crate::registry::{Camera, Township};
use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};
use uuid::Uuid;

/// What wording a camera observation needs besides the observation.
#[derive(Debug, Clone, Copy)]
pub struct CameraContext<'a> {
    /// The camera.
    pub camera: &'a Camera,
    /// Its township.
    pub township: &'a Township,
    /// When the gateway took the observation in.
    pub received_at: DateTime<FixedOffset>,
}

/// The event an observation raises, if any.
pub fn camera_event(observed: &Observed, ctx: &CameraContext<'_>, id: Uuid) -> Option<Event> {
    match observed {
        Observed::Entered { .. } | Observed::Baseline(_) => None,
        Observed::Changed(t) => state_event(t, ctx, id),
        Observed::Picture(v) => Some(picture_event(v, ctx, id)),
        Observed::Onvif(n) => Some(onvif_event(n, ctx, id)),
    }
}

/// The label command-center staff read for a picture check.
pub fn check_label(check: PictureCheck) -> &'static str {
    match check {
        PictureCheck::Black => "黑屏/信号丢失",
        PictureCheck::Underexposed => "画面过暗",
        PictureCheck::Overexposed => "画面过亮",
        PictureCheck::LowContrast => "对比度低",
        PictureCheck::Occluded => "画面遮挡",
        PictureCheck::Blurred => "画面模糊",
        PictureCheck::Frozen => "画面冻结",
        PictureCheck::ColorCast => "偏色",
        PictureCheck::SceneChanged => "画面偏移",
    }
}

/// `camera.online|offline|stalled|degraded` of a state change.
fn state_event(t: &StateChange, ctx: &CameraContext<'_>, id: Uuid) -> Option<Event> {
    let kind = match t.to {
        CameraState::Online => Kind::CameraOnline,
        CameraState::Offline => Kind::CameraOffline,
        CameraState::Stalled => Kind::CameraStalled,
        CameraState::Degraded => Kind::CameraDegraded,
        CameraState::Unknown => return None,
    };
    let mut measured = Map::new();
    let m = &t.measured;
    if matches!(t.to, CameraState::Online | CameraState::Degraded) {
        measured.insert("fps".into(), Value::from(m.fps));
        if let Some(e) = m.expected_fps {
            measured.insert("expected_fps".into(), Value::from(e));
        }
        measured.insert("bitrate_kbps".into(), Value::from(m.bitrate_kbps));
        measured.insert("loss_ratio".into(), Value::from(m.loss_ratio));
        if let Some(k) = m.keyframe_interval_s {
            measured.insert("keyframe_interval_s".into(), Value::from(k));
        }
    }
    if let Some(away) = t.away {
        measured.insert("away_s".into(), Value::from(away.num_seconds()));
    }
    let what = match (t.to, &t.reason) {
        (CameraState::Offline, Some(r)) => format!("无法连接 ({r})"),
        (CameraState::Offline, None) => "无法连接".to_string(),
        (CameraState::Stalled, _) => "会话在线但无视频帧".to_string(),
        (CameraState::Degraded, Some(r)) => format!("{} ({r})", m.fps),
        (CameraState::Online, _) => match t.away {
            Some(a) => format!("中断 {} 秒后恢复", a.num_seconds()),
            None => "恢复正常".to_string(),
        },
        _ => String::new(),
    };
    let detail = CameraDetail {
        state: t.to.as_str().to_string(),
        reason: t.reason.clone(),
        measured,
        ..CameraDetail::default()
    };
    Some(envelope(ctx, id, kind, detail, t.at, &what))
}

/// `camera.quality` of a confirmed picture change.
fn picture_event(v: &PictureVerdict, ctx: &CameraContext<'_>, id: Uuid) -> Event {
    let names = |cs: &[PictureCheck]| cs.iter().map(|c| c.as_str().to_string()).collect();
    let labels = |cs: &[PictureCheck]| {
        let l: Vec<&str> = cs.iter().map(|&c| check_label(c)).collect();
        l.join("、")
    };
    let what = if v.failing.is_empty() {
        format!("图像恢复正常 ({})", labels(&v.cleared))
    } else {
        labels(&v.failing)
    };
    let detail = CameraDetail {
        state: CameraState::Online.as_str().into(),
        reason: v.failing.is_empty().then(|| "cleared".to_string()),
        measured: v.measured.clone(),
        failing_checks: names(&v.failing),
        cleared_checks: names(&v.cleared),
        alarm: None,
    };
    envelope(ctx, id, Kind::CameraQuality, detail, v.at, &what)
}

/// `camera.motion` / `camera.tamper` of an ONVIF notification.
fn onvif_event(n: &OnvifNotice, ctx: &CameraContext<'_>, id: Uuid) -> Event {
    let (kind, what) = match n.kind {
        OnvifKind::Motion => (Kind::CameraMotion, "移动侦测 (ONVIF)"),
        OnvifKind::Tamper => (Kind::CameraTamper, "遮挡/移位/失焦 (ONVIF)"),
    };
    let mut measured = Map::new();
    measured.insert("onvif_topic".into(), Value::from(n.topic.clone()));
    let detail = CameraDetail {
        state: CameraState::Online.as_str().into(),
        reason: Some(n.topic.clone()),
        measured,
        ..CameraDetail::default()
    };
    envelope(ctx, id, kind, detail, n.at, what)
}

/// `camera.alarm` (or `camera.tamper` for a device tamper alarm) of a device's alarm. The
/// device's time is kept when believable (see [`super::sanity::device_time`]).
pub fn device_alarm_event(a: &DeviceAlarm, ctx: &CameraContext<'_>, id: Uuid) -> Event {
    let method_name = a.method.as_deref().map(alarm_method_name);
    let type_name = alarm_type_name(a.method.as_deref(), a.alarm_type.as_deref());
    let tamper = a.method.as_deref() == Some("2") && a.alarm_type.as_deref() == Some("2");
    let kind = if tamper {
        Kind::CameraTamper
    } else {
        Kind::CameraAlarm
    };
    let description = a.description.as_deref().and_then(super::sanity::clean_text);
    let what = type_name
        .map(str::to_string)
        .or_else(|| description.clone())
        .or_else(|| method_name.map(str::to_string))
        .unwrap_or_else(|| "报警".to_string());
    let (at, skew) = super::sanity::device_time(a.at, ctx.received_at);
    let mut measured = Map::new();
    if let Some(s) = skew {
        measured.insert("clock_skew_s".into(), Value::from(s));
    }
    let detail = CameraDetail {
        state: CameraState::Online.as_str().into(),
        reason: type_name.map(str::to_string),
        measured,
        alarm: Some(AlarmDetail {
            device: a.device.clone(),
            method: a.method.clone(),
            method_name: method_name.map(str::to_string),
            alarm_type: a.alarm_type.clone(),
            type_name: type_name.map(str::to_string),
            priority: a.priority,
            description,
        }),
        ..CameraDetail::default()
    };
    let mut e = envelope(ctx, id, kind, detail, at.with_timezone(&chrono::Utc), &what);
    if let Some(p) = a.priority.filter(|p| (1..=4).contains(p)) {
        // level-1 alarms are the most severe
        e.severity = if p == 1 {
            crate::event::Severity::Critical
        } else {
            e.severity
        };
    }
    e
}

/// The name of a GB/T 28181 `AlarmMethod` (digits may be combined: the first names it).
pub fn alarm_method_name(method: &str) -> &'static str {
    match method.chars().next() {
        Some('1') => "电话报警",
        Some('2') => "设备报警",
        Some('3') => "短信报警",
        Some('4') => "GPS报警",
        Some('5') => "视频报警",
        Some('6') => "设备故障报警",
        _ => "其他报警",
    }
}

/// The name of a GB/T 28181 `AlarmType` for its method (unknown codes: none — kept raw).
pub fn alarm_type_name(method: Option<&str>, alarm_type: Option<&str>) -> Option<&'static str> {
    let m = method?.chars().next()?;
    Some(match (m, alarm_type?) {
        ('2', "1") => "视频丢失",
        ('2', "2") => "设备防拆",
        ('2', "3") => "存储设备磁盘满",
        ('2', "4") => "设备高温",
        ('2', "5") => "设备低温",
        ('5', "1") => "人工视频报警",
        ('5', "2") => "运动目标检测",
        ('5', "3") => "遗留物检测",
        ('5', "4") => "物体移除检测",
        ('5', "5") => "绊线检测",
        ('5', "6") => "入侵检测",
        ('5', "7") => "逆行检测",
        ('5', "8") => "徘徊检测",
        ('5', "9") => "流量统计",
        ('5', "10") => "密度检测",
        ('5', "11") => "视频异常检测",
        ('5', "12") => "快速移动",
        ('6', "1") => "存储设备磁盘故障",
        ('6', "2") => "存储设备风扇故障",
        _ => return None,
    })
}

/// A `camera.*` event: the camera as its source, the detail, a title saying what happened.
fn envelope(
    ctx: &CameraContext<'_>,
    id: Uuid,
    kind: Kind,
    detail: CameraDetail,
    occurred_at: DateTime<chrono::Utc>,
    what: &str,
) -> Event {
    let camera = ctx.camera;
    let source = Source {
        kind: SourceKind::Camera,
        id: camera.id.clone(),
        name: camera.name.clone(),
        protocol: camera.protocol(),
    };
    let occurred_at = occurred_at.with_timezone(ctx.received_at.offset());
    let township = TownshipRef::of(ctx.township);
    Event {
        title: format!("{} · {} · {what}", kind.label(), camera.name),
        camera: Some(detail),
        location: camera.place.block(),
        ..Event::envelope(id, kind, source, township, occurred_at, ctx.received_at)
    }
}
