use super::*;
use crate::sip::Transport;

const DEV: &str = "34020000001180000001";
const CH1: &str = "34020000001310000001";
const CH2: &str = "34020000001310000002";

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    }
}

fn item(id: &str, status: Option<&str>, event: Option<&str>) -> CatalogItem {
    CatalogItem {
        id: id.into(),
        name: Some("北门".into()),
        status: status.map(Into::into),
        event: event.map(Into::into),
        ..CatalogItem::default()
    }
}

fn mapped(_: &Device, _: &CatalogItem) -> Option<String> {
    Some("yunshan".into())
}

/// The state changes among observations: (camera, to, reason).
fn changes(obs: &[CameraObservation]) -> Vec<(String, CameraState, Option<String>)> {
    obs.iter()
        .filter_map(|o| match &o.what {
            Observed::Changed(c) => Some((o.camera.clone(), c.to, c.reason.clone())),
            _ => None,
        })
        .collect()
}

/// The first state change among observations.
fn first_change(obs: &[CameraObservation]) -> &StateChange {
    obs.iter()
        .find_map(|o| match &o.what {
            Observed::Changed(c) => Some(c),
            _ => None,
        })
        .expect("a state change")
}

/// A device registered at `t0()` with a catalog of `items`, mapped by `map`.
fn registered_with(
    items: Vec<CatalogItem>,
    map: impl Fn(&Device, &CatalogItem) -> Option<String>,
) -> Devices {
    let mut d = Devices::default();
    d.registered(DEV, peer(1), Duration::seconds(3600), None, t0());
    d.catalog(DEV, items, map);
    d
}

fn t0() -> DateTime<Utc> {
    "2026-12-01T08:00:00Z".parse().unwrap()
}

#[test]
fn a_device_is_offline_after_its_missed_keepalives_and_back_on_the_next() {
    let cfg = LivenessConfig::default();
    let t = t0();
    let mut d = registered_with(
        vec![item(CH1, Some("ON"), None), item(CH2, Some("OFF"), None)],
        mapped,
    );
    let first = d.tick(&cfg, t);
    // CH1 online at first look: nothing to tell; CH2 off: an event
    assert_eq!(
        changes(&first),
        vec![(CH2.into(), CameraState::Offline, Some("channel_off".into()))]
    );
    // keepalives every 60 s hold it online
    for i in 1..=5 {
        let at = t + Duration::seconds(60 * i);
        d.keepalive(DEV, peer(1), Some("OK"), vec![], at).unwrap();
        assert!(changes(&d.tick(&cfg, at)).is_empty());
    }
    let last = t + Duration::seconds(300);
    // silent: offline exactly 3 × 60 s after the last keepalive, not a second earlier
    assert!(changes(&d.tick(&cfg, last + Duration::seconds(179))).is_empty());
    let off = d.tick(&cfg, last + Duration::seconds(180));
    assert_eq!(
        changes(&off),
        vec![(
            CH1.into(),
            CameraState::Offline,
            Some("keepalive_timeout".into())
        )]
    );
    assert_eq!(
        first_change(&off).at,
        last,
        "offline since the last sign of life"
    );
    // CH2 was already offline: its reason changes, its state does not — nothing to tell
    let back = last + Duration::seconds(400);
    d.keepalive(DEV, peer(1), Some("OK"), vec![], back).unwrap();
    let on = d.tick(&cfg, back);
    assert_eq!(changes(&on), vec![(CH1.into(), CameraState::Online, None)]);
    assert_eq!(first_change(&on).away, Some(Duration::seconds(400)));
}

#[test]
fn unregister_expiry_and_keepalives_without_a_registration() {
    let cfg = LivenessConfig::default();
    let mut d = Devices::default();
    let t = t0();
    assert_eq!(
        d.keepalive(DEV, peer(1), None, vec![], t),
        Err(NotRegistered::Unknown)
    );
    d.registered(DEV, peer(1), Duration::seconds(100), None, t);
    d.catalog(DEV, vec![item(CH1, Some("ON"), None)], mapped);
    d.tick(&cfg, t);
    // keepalives keep coming, but the registration runs out
    d.keepalive(DEV, peer(1), None, vec![], t + Duration::seconds(60))
        .unwrap();
    let expired = d.tick(&cfg, t + Duration::seconds(100));
    assert_eq!(
        changes(&expired),
        vec![(
            CH1.into(),
            CameraState::Offline,
            Some("registration_expired".into())
        )]
    );
    assert_eq!(
        d.keepalive(DEV, peer(1), None, vec![], t + Duration::seconds(120)),
        Err(NotRegistered::Expired)
    );
    // registers again from another port: the binding moves, online again
    let moved = d.registered(
        DEV,
        peer(2),
        Duration::seconds(3600),
        None,
        t + Duration::seconds(130),
    );
    assert_eq!(moved, Some(peer(1)));
    assert_eq!(d.by_id[DEV].peer, peer(2));
    let on = d.tick(&cfg, t + Duration::seconds(130));
    assert_eq!(changes(&on), vec![(CH1.into(), CameraState::Online, None)]);
    d.unregistered(DEV, t + Duration::seconds(140));
    let off = d.tick(&cfg, t + Duration::seconds(140));
    assert_eq!(
        changes(&off),
        vec![(
            CH1.into(),
            CameraState::Offline,
            Some("unregistered".into())
        )]
    );
}

#[test]
fn notifies_change_status_unknown_status_is_not_guessed_and_unmapped_channels_are_not_watched() {
    let cfg = LivenessConfig::default();
    let t = t0();
    let mut d = registered_with(
        vec![item(CH1, Some("ON"), None), item(CH2, None, None)],
        |_, i| (i.id == CH1).then(|| "yunshan".to_string()),
    );
    d.catalog(
        DEV,
        vec![item("34020000002150000001", Some("ON"), None)],
        mapped,
    );
    assert_eq!(
        d.by_id[DEV].channels.len(),
        2,
        "a business group is no camera"
    );
    assert!(changes(&d.tick(&cfg, t)).is_empty());
    // a NOTIFY: video lost on CH1 (only the id and the event)
    d.catalog(DEV, vec![item(CH1, None, Some("VLOST"))], mapped);
    assert_eq!(
        d.by_id[DEV].channels[CH1].item.name.as_deref(),
        Some("北门")
    );
    assert_eq!(
        changes(&d.tick(&cfg, t + Duration::seconds(5))),
        vec![(CH1.into(), CameraState::Offline, Some("vlost".into()))]
    );
    d.catalog(DEV, vec![item(CH1, None, Some("ON"))], mapped);
    assert_eq!(
        changes(&d.tick(&cfg, t + Duration::seconds(6))),
        vec![(CH1.into(), CameraState::Online, None)]
    );
    d.catalog(DEV, vec![item(CH1, None, Some("DEL"))], mapped);
    assert!(!d.by_id[DEV].channels.contains_key(CH1));
}

#[test]
fn a_flapping_channel_is_held_to_its_event_budget_and_its_township_corrected_later() {
    let cfg = LivenessConfig::default(); // 12 events an hour
    let t = t0();
    let mut d = registered_with(vec![item(CH1, Some("ON"), None)], mapped);
    assert!(changes(&d.tick(&cfg, t)).is_empty());
    // the channel turns OFF and ON every 10 s for 10 minutes: 60 changes
    let (mut told, mut entered, mut held) = (0, 0, 0);
    let mut heard = CameraState::Online;
    for i in 1..=60 {
        let at = t + Duration::seconds(10 * i);
        d.keepalive(DEV, peer(1), Some("OK"), vec![], at).unwrap();
        let status = if i % 2 == 1 { "OFF" } else { "ON" };
        d.catalog(DEV, vec![item(CH1, Some(status), None)], mapped);
        let seen = d.tick(&cfg, at);
        let now_in = seen.iter().find_map(|o| match o.what {
            Observed::Entered { state, .. } => Some(state),
            _ => None,
        });
        match changes(&seen).last() {
            Some(c) => {
                told += 1;
                heard = c.1;
            }
            // a change away from what the township heard, not told: held back
            None if now_in.is_some_and(|s| s != heard) => held += 1,
            None => {}
        }
        entered += usize::from(now_in.is_some());
    }
    // every state entered is logged (uptime stays true); the township hears 12, plus one per
    // five minutes of refill
    assert_eq!(entered, 60);
    assert!((12..=14).contains(&told), "{told} events told");
    let ch = &d.by_id[DEV].channels[CH1];
    assert_eq!(ch.suppressed, held);
    assert!(held >= 20, "{held} held back");
    // it settles in the state the township did not hear last — corrected once the budget allows
    let (last, want) = match heard {
        CameraState::Online => ("OFF", CameraState::Offline),
        _ => ("ON", CameraState::Online),
    };
    let off_at = t + Duration::seconds(610);
    d.keepalive(DEV, peer(1), Some("OK"), vec![], off_at)
        .unwrap();
    d.catalog(DEV, vec![item(CH1, Some(last), None)], mapped);
    let mut corrected = Vec::new();
    for s in 0..=600 {
        let at = off_at + Duration::seconds(s);
        if s % 60 == 0 {
            d.keepalive(DEV, peer(1), Some("OK"), vec![], at).unwrap();
        }
        corrected.extend(changes(&d.tick(&cfg, at)));
    }
    assert_eq!(corrected.iter().map(|c| c.1).collect::<Vec<_>>(), [want]);
    assert_eq!(d.by_id[DEV].channels[CH1].reported, Some(want));
}
