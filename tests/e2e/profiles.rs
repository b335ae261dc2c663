//! Vendor profiles end to end: the shipped electrical-fire and water profiles read real MQTT
//! traffic through a real mosquitto, thresholds raise and clear with hysteresis, and vendor
//! payloads pushed over HTTP map the same way.

use crate::common::*;
use gateway_sim::mosquitto::{Mosquitto, Publisher};
use serde_json::{json, Value};
use std::path::Path;

fn shipped_profiles() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/profiles");
    let files: Vec<String> = ["electrical-fire-monitor.toml", "water-pressure-level.toml"]
        .iter()
        .map(|f| format!("{:?}", dir.join(f).display().to_string()))
        .collect();
    format!("[registry]\nprofile_files = [{}]\n", files.join(", "))
}

fn efm(ir_ma: u32, state: &str) -> Vec<u8> {
    json!({"ts": 1764295200, "ir": ir_ma, "t": {"A": 41.5, "B": 40.0}, "state": state})
        .to_string()
        .into()
}

fn water(unit: &str, kpa: u32, alarm: Value) -> Vec<u8> {
    json!({"deviceId": unit, "time": "2026-11-28T10:00:00+08:00",
           "data": {"pressure_kpa": kpa, "level_cm": 260, "battery": 87}, "alarm": alarm})
    .to_string()
    .into()
}

fn analog(d: &gateway_sim::receiver::Delivery) -> Value {
    d.body.as_ref().unwrap()["fire"]["analog"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_profiles_map_mqtt_payloads_and_thresholds_hold_hysteresis() {
    let broker = Mosquitto::start_temp()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let extra = format!(
        "{}\n[mqtt]\nurl = \"{}\"\nclient_id = \"gw-profiles\"\n",
        shipped_profiles(),
        broker.url()
    );
    let env = Env::start(&["lanjiang", "yunshan"], |c| c.extra += &extra).await;
    env.wait_metric("gateway_mqtt_subscribed", 1.0).await;

    let mut publisher = Publisher::connect(broker.port, "pub-vendor");
    let messages: Vec<(&str, Vec<u8>)> = vec![
        ("efm/lanjiang-u1/up", efm(120, "NORMAL")), // first contact, all normal: nothing
        ("efm/lanjiang-u1/up", efm(312, "NORMAL")), // 0.312 A > 0.3: raised
        ("efm/lanjiang-u1/up", efm(280, "NORMAL")), // between the limits: still raised
        ("efm/lanjiang-u1/up", efm(320, "NORMAL")), // no second raise
        ("efm/lanjiang-u1/up", efm(240, "NORMAL")), // < 0.25: cleared
        ("efm/lanjiang-u1/up", efm(100, "ALARM")),  // the device's verdict: fire.alarm
        (
            "water/865000000000001/data",
            water("yunshan-u1", 80, json!(false)),
        ), // 0.08 MPa: low
        (
            "water/865000000000001/data",
            water("yunshan-u1", 120, json!(false)),
        ), // between
        (
            "water/865000000000001/data",
            water("yunshan-u1", 90, json!("maybe")),
        ), // unmapped
        (
            "water/865000000000002/data",
            water("nobody", 300, json!(false)),
        ), // unknown unit
        ("efm/lanjiang-u1/up", b"{\"ir\": \"lots\"}".to_vec()), // wrong type
    ];
    publisher.publish_all(&messages, WAIT).await;
    let got = env
        .receiver
        .wait_for(WAIT, "four events", |d| d.len() >= 4)
        .await
        .unwrap();
    env.wait_metric("gateway_ingest_messages_total{source=\"mqtt\"}", 11.0)
        .await;
    let lanjiang: Vec<_> = got.iter().filter(|d| d.township == "lanjiang").collect();
    let kinds: Vec<&str> = lanjiang.iter().map(|d| d.event_header.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "fire.analog_threshold",
            "fire.analog_threshold",
            "fire.alarm"
        ],
        "raised once, cleared once, then the alarm"
    );
    let raised = analog(lanjiang[0]);
    assert_eq!(raised["value"], 0.312);
    assert_eq!(raised["analog_type"], 9);
    assert_eq!(raised["above"], 0.3);
    assert_eq!(raised["clear_below"], 0.25);
    assert_eq!(raised["cleared"], Value::Null, "not a clear");
    let body = lanjiang[0].body.as_ref().unwrap();
    assert_eq!(body["fire"]["component_type"], 17);
    assert_eq!(body["severity"], "major");
    assert_eq!(body["source"]["protocol"], "mqtt");
    assert_eq!(body["occurred_at"], "2025-11-28T10:00:00.000+08:00");
    let cleared = analog(lanjiang[1]);
    assert_eq!(
        (cleared["value"].as_f64(), cleared["cleared"].as_bool()),
        (Some(0.24), Some(true))
    );
    assert_eq!(lanjiang[1].body.as_ref().unwrap()["severity"], "info");
    let alarm = lanjiang[2].body.as_ref().unwrap();
    assert_eq!(alarm["fire"]["component_type"], 16);
    assert_eq!(alarm["fire"]["description"], "电气火灾监控探测器");

    let yunshan: Vec<_> = got.iter().filter(|d| d.township == "yunshan").collect();
    assert_eq!(yunshan.len(), 1, "low pressure raised once");
    let low = analog(yunshan[0]);
    assert_eq!(low["value"], 0.08);
    assert_eq!(low["below"], 0.1);
    assert_eq!(low["clear_above"], 0.15);
    assert_eq!(low["unit"], "MPa");

    let m = env.metrics().await;
    for (reason, n) in [
        ("unmapped_value", 1.0),
        ("unknown_unit", 1.0),
        ("invalid_payload", 1.0),
    ] {
        let series =
            format!("gateway_ingest_rejected_total{{reason=\"{reason}\",source=\"mqtt\"}}");
        assert_eq!(metric(&m, &series), n, "{series}");
    }
    assert_eq!(env.get("/readyz", None).await.0, 200, "gateway healthy");
    assert_eq!(got.len(), 4, "nothing else was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_payload_pushed_over_http_maps_by_profile_name() {
    let env = Env::start(&["lanjiang"], |c| c.extra += &shipped_profiles()).await;
    let push = |body: &'static str| {
        let url = env
            .gw
            .url("/api/v1/ingest/lanjiang-u2/electrical-fire-monitor");
        let client = env.client.clone();
        async move {
            let r = client
                .post(url)
                .bearer_auth(gateway_sim::harness::INGEST_TOKEN)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) =
        push(r#"{"ts": 1764295200, "ir": 500, "t": {"A": 75.5}, "state": "NORMAL"}"#).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["events"].as_array().unwrap().len(),
        2,
        "current and temperature A: {body}"
    );
    let (status, body) = push(r#"{"ts": 1764295200, "ir": 10, "state": "SMOKE"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "unmapped_value", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`$.state`"),
        "{body}"
    );
    let got = env
        .receiver
        .wait_for(WAIT, "two threshold events", |d| d.len() == 2)
        .await
        .unwrap();
    let mut types: Vec<i64> = got
        .iter()
        .map(|d| analog(d)["analog_type"].as_i64().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, [3, 9]);
    assert!(got
        .iter()
        .all(|d| d.body.as_ref().unwrap()["source"]["protocol"] == "http"));
}

/// A profile's limits changed and reloaded are taken by the MQTT source at once, on the same
/// broker connection (its topics did not change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_profile_applies_to_mqtt_without_a_reconnect() {
    let broker = Mosquitto::start_temp()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/profiles/electrical-fire-monitor.toml");
    let profile = dir.path().join("efm.toml");
    std::fs::copy(&shipped, &profile).unwrap();
    let extra = format!(
        "[registry]\nprofile_files = [{:?}]\n\n[mqtt]\nurl = \"{}\"\nclient_id = \"gw-reload\"\n",
        profile.display().to_string(),
        broker.url()
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &extra).await;
    env.wait_metric("gateway_mqtt_subscribed", 1.0).await;
    let connects = metric(&env.metrics().await, "gateway_mqtt_connects_total");

    // 0.3 A is the shipped limit; raise it to 0.5 A (clearing at 0.45) and reload
    let text = std::fs::read_to_string(&profile).unwrap();
    let raised = text.replacen("above = 0.3 ", "above = 0.5 ", 1).replacen(
        "clear_below = 0.25",
        "clear_below = 0.45",
        1,
    );
    assert_ne!(raised, text, "the shipped profile's limit moved");
    std::fs::write(&profile, raised).unwrap();
    let (status, body) = env
        .post("/api/v1/admin/reload", Some(ADMIN_TOKEN), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // 0.4 A: above the old limit, under the new one — nothing; 0.6 A: raised
    let mut publisher = Publisher::connect(broker.port, "pub-reload");
    let messages: Vec<(&str, Vec<u8>)> = [120, 400, 600]
        .into_iter()
        .map(|ma| ("efm/lanjiang-u1/up", efm(ma, "NORMAL")))
        .collect();
    publisher.publish_all(&messages, WAIT).await;
    let got = env
        .receiver
        .wait_for(WAIT, "the raise at 0.6 A", |d| !d.is_empty())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.gw.log()));
    assert_eq!(got.len(), 1, "one raise only");
    assert_eq!(analog(&got[0])["value"], 0.6, "{:?}", got[0].body);
    assert_eq!(
        metric(&env.metrics().await, "gateway_mqtt_connects_total"),
        connects,
        "the broker connection was kept"
    );
}
