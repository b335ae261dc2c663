use super::*;
use alerts::signal::{Component, StatusFlag};

fn loc(kind: u8, addr: u32) -> Location {
    Location {
        system_type: 1,
        system_addr: 1,
        component: Some(Component { kind, addr }),
    }
}

fn flags(names: &[StatusFlag]) -> StatusFlags {
    names.iter().copied().collect()
}

/// An electrical-fire monitor reporting residual current in mA and three cable temperatures.
fn electrical() -> VendorProfile {
    let temp = |phase: &str, addr| Field {
        path: JsonPath::parse(&format!("$.temps.{phase}")).unwrap(),
        optional: true,
        location: loc(18, addr),
        reading: Reading::Analog {
            analog_type: 3,
            scale: 1.0,
            offset: 0.0,
            limits: Limits::from_values(Some(70.0), Some(65.0), None, None).ok(),
        },
    };
    VendorProfile {
        name: "efm".into(),
        topic: Some(TopicPattern::parse_vendor("efm/{unit_id}/up").unwrap()),
        unit_path: None,
        time: Some((JsonPath::parse("$.time").unwrap(), TimeFormat::UnixMillis)),
        fields: vec![
            Field {
                path: JsonPath::parse("$.residualCurrent").unwrap(),
                optional: false,
                location: loc(17, 1),
                reading: Reading::Analog {
                    analog_type: 9,
                    scale: 0.001,
                    offset: 0.0,
                    limits: Limits::from_values(Some(0.3), Some(0.25), None, None).ok(),
                },
            },
            temp("A", 2),
            temp("B", 3),
            temp("C", 4),
            Field {
                path: JsonPath::parse("$.alarm").unwrap(),
                optional: true,
                location: loc(16, 1),
                reading: Reading::Status {
                    map: vec![
                        ("0".into(), flags(&[StatusFlag::Normal])),
                        ("1".into(), flags(&[StatusFlag::Fire])),
                        ("2".into(), flags(&[StatusFlag::Fault])),
                    ],
                    description: Some("剩余电流报警".into()),
                },
            },
        ],
    }
}

#[test]
fn a_sample_payload_maps_to_signals() {
    let p = electrical();
    let d = p
        .decode(
            Protocol::Mqtt,
            Some("unit-0001"),
            br#"{"time": 1764295200000, "residualCurrent": 312, "temps": {"A": 41.5, "B": "42", "C": null}, "alarm": 1}"#,
        )
        .unwrap();
    assert_eq!(d.unit_id, "unit-0001");
    assert_eq!(d.signals.len(), 4, "C is null and optional: skipped");
    let analog: Vec<(u8, f64, Location)> = d
        .signals
        .iter()
        .filter_map(|s| match &s.body {
            SignalBody::Analog(a) => Some((a.analog_type, a.value, a.location)),
            _ => None,
        })
        .collect();
    assert_eq!(
        analog,
        vec![
            (9, 0.312, loc(17, 1)),
            (3, 41.5, loc(18, 2)),
            (3, 42.0, loc(18, 3))
        ]
    );
    let SignalBody::Status(st) = &d.signals[3].body else {
        panic!("the last signal is the status");
    };
    assert!(st.flags.contains(StatusFlag::Fire));
    assert_eq!(st.description.as_deref(), Some("剩余电流报警"));
    let t = d.signals[0].occurred_at.unwrap();
    assert_eq!(t.to_rfc3339(), "2025-11-28T02:00:00+00:00");
    assert!(d.signals.iter().all(|s| s.unit_id == "unit-0001"));
}

#[test]
fn bad_payloads_name_the_field() {
    let p = electrical();
    let e = |body: &str| {
        p.decode(Protocol::Mqtt, Some("u"), body.as_bytes())
            .unwrap_err()
    };
    let missing = e(r#"{"temps": {}}"#);
    assert_eq!(
        missing.to_string(),
        "profile `efm`: `$.residualCurrent` is missing"
    );
    assert_eq!(missing.reason(), "invalid_payload");
    let wrong = e(r#"{"residualCurrent": "lots"}"#);
    assert_eq!(
        wrong.to_string(),
        "profile `efm`: `$.residualCurrent`: expected a number (or numeric string), found a string"
    );
    let unmapped = e(r#"{"residualCurrent": 1, "alarm": 7}"#);
    assert_eq!(
        unmapped.to_string(),
        "profile `efm`: `$.alarm`: value 7 is not in the map (known: 0, 1, 2)"
    );
    assert_eq!(unmapped.reason(), "unmapped_value");
    assert_eq!(e("{not json").reason(), "malformed_json");
    let time = e(r#"{"time": "yesterday", "residualCurrent": 1}"#);
    assert!(time.to_string().contains("`$.time`"), "{time}");
}

#[test]
fn the_unit_may_come_from_the_payload_and_the_topic_picks_the_profile() {
    let mut water = electrical();
    water.name = "water".into();
    water.topic = Some(TopicPattern::parse_vendor("water/+/report").unwrap());
    water.unit_path = Some(JsonPath::parse("$.dev.id").unwrap());
    water.time = None;
    let d = water
        .decode(
            Protocol::Http,
            None,
            br#"{"dev": {"id": 42}, "residualCurrent": 0}"#,
        )
        .unwrap();
    assert_eq!(d.unit_id, "42");
    assert_eq!(d.signals[0].protocol, Protocol::Http);
    assert_eq!(
        d.signals[0].occurred_at, None,
        "no time path: time of receipt"
    );
    let e = water
        .decode(Protocol::Mqtt, None, br#"{"residualCurrent": 0}"#)
        .unwrap_err();
    assert_eq!(e.to_string(), "profile `water`: `$.dev.id` is missing");

    let profiles = Profiles(vec![electrical(), water]);
    let (p, unit) = profiles.for_topic("efm/u9/up").unwrap();
    assert_eq!((p.name.as_str(), unit), ("efm", Some("u9")));
    let (p, unit) = profiles.for_topic("water/site-3/report").unwrap();
    assert_eq!((p.name.as_str(), unit), ("water", None));
    assert!(profiles.for_topic("fire/u1/status").is_none());
    assert_eq!(profiles.filters(), vec!["efm/+/up", "water/+/report"]);
    assert!(profiles.by_name("water").is_some());
}
