//! The MQTT source against a real mosquitto: PUBACK only after commit, persistent session,
//! reconnect, rejections counted.

use crate::common::*;
use gateway_sim::mosquitto::{Mosquitto, Publisher};
use gateway_sim::receiver::Behavior;
use std::collections::BTreeSet;
use std::time::Duration;

async fn start(townships: &[&str], extra: &str) -> (Env, Mosquitto) {
    let broker = Mosquitto::start_temp()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mqtt = format!(
        "\n[mqtt]\nurl = \"{}\"\nclient_id = \"gw-{}\"\nreconnect_initial_ms = 50\nreconnect_max_ms = 500\n{extra}\n",
        broker.url(),
        broker.port
    );
    let env = Env::start(townships, |c| c.extra += &mqtt).await;
    env.wait_metric("gateway_mqtt_subscribed", 1.0).await;
    (env, broker)
}

fn addrs(env: &Env, township: &str) -> BTreeSet<u64> {
    env.receiver
        .deliveries()
        .iter()
        .filter(|d| d.township == township)
        .filter_map(|d| d.body.as_ref()?["fire"]["component_addr"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_alarms_are_delivered_and_bad_messages_counted_and_acknowledged() {
    let (env, broker) = start(
        &["lanjiang", "yunshan"],
        "topics = [\"fire/#\"]\nmax_payload_bytes = 2048",
    )
    .await;
    let mut publisher = Publisher::connect(broker.port, "pub-a");
    let messages: Vec<(&str, Vec<u8>)> = vec![
        ("fire/lanjiang-u1/status", fire(1).to_string().into()),
        ("fire/yunshan-u1/status", b"{\"system_type\": 1,".to_vec()),
        ("fire/nobody/status", fire(2).to_string().into()),
        ("fire/lanjiang-u1/alarms", fire(3).to_string().into()),
        ("fire/lanjiang-u1/status", vec![b' '; 4096]),
        (
            "fire/lanjiang-u1/status",
            br#"{"system_type": 1, "system_addr": 1, "status": ["smoke"]}"#.to_vec(),
        ),
        ("fire/a/b/c", fire(4).to_string().into()),
        ("fire/yunshan-u2/status", fire(5).to_string().into()),
    ];
    publisher.publish_all(&messages, WAIT).await;
    let got = env
        .receiver
        .wait_for(WAIT, "two alarms", |d| d.len() == 2)
        .await
        .unwrap();
    for d in &got {
        assert_eq!(d.body.as_ref().unwrap()["source"]["protocol"], "mqtt");
    }
    assert_eq!(addrs(&env, "lanjiang"), BTreeSet::from([1]));
    assert_eq!(addrs(&env, "yunshan"), BTreeSet::from([5]));
    env.wait_metric("gateway_ingest_messages_total{source=\"mqtt\"}", 8.0)
        .await;
    let m = env.metrics().await;
    for reason in [
        "malformed_json",
        "unknown_unit",
        "unknown_channel",
        "too_large",
        "invalid_payload",
        "unknown_topic",
    ] {
        let series =
            format!("gateway_ingest_rejected_total{{reason=\"{reason}\",source=\"mqtt\"}}");
        assert_eq!(metric(&m, &series), 1.0, "{series}");
    }
    assert_eq!(env.get("/readyz", None).await.0, 200, "gateway healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_unacknowledged_messages_loses_none_of_them() {
    kill_9_loses_nothing("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_kill_9_with_unacknowledged_messages_loses_none_of_them() {
    // MQTT 5 keeps the session only with a session expiry interval: without it the broker
    // would drop the unacknowledged messages with the connection
    kill_9_loses_nothing("version = \"5\"").await;
}

async fn kill_9_loses_nothing(extra: &str) {
    let (mut env, broker) = start(&["lanjiang"], extra).await;
    // an outbox that holds 3: the 4th message onwards waits, unacknowledged
    let mut env_outbox_small = std::fs::read_to_string(&env.config_path).unwrap();
    assert!(!env_outbox_small.contains("[outbox]"));
    env_outbox_small = env_outbox_small.replace(
        "[delivery]",
        "[outbox]\nmax_pending_events = 3\n\n[delivery]",
    );
    std::fs::write(&env.config_path, env_outbox_small).unwrap();
    env.gw.kill9();
    env.restart().await;
    env.wait_metric("gateway_mqtt_subscribed", 1.0).await;
    env.receiver.set_behavior("lanjiang", Behavior::Always(503));

    let mut publisher = Publisher::connect(broker.port, "pub-b");
    for n in 100..110 {
        publisher
            .publish("fire/lanjiang-u1/status", fire(n).to_string())
            .await;
    }
    publisher.wait_acked(10, WAIT).await.unwrap();
    env.wait_metric("gateway_outbox_pending_events", 3.0).await;
    env.wait_metric("gateway_ingest_messages_total{source=\"mqtt\"}", 10.0)
        .await;

    env.gw.kill9();
    env.receiver.set_behavior("lanjiang", Behavior::Accept);
    env.restart().await;
    let want: BTreeSet<u64> = (100..110).collect();
    crate::wait_for_addrs(&env, "lanjiang", &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing_and_is_logged_once() {
    broker_restart_loses_nothing("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_a_broker_restart_mid_stream_loses_nothing_and_is_logged_once() {
    broker_restart_loses_nothing("version = \"5\"").await;
}

async fn broker_restart_loses_nothing(extra: &str) {
    let (env, mut broker) = start(&["lanjiang"], extra).await;
    let mut publisher = Publisher::connect(broker.port, "pub-c");
    for n in 200..230 {
        publisher
            .publish("fire/lanjiang-u1/status", fire(n).to_string())
            .await;
    }
    publisher.wait_acked(30, WAIT).await.unwrap();
    broker.restart().await.unwrap();
    for n in 230..260 {
        publisher
            .publish("fire/lanjiang-u1/status", fire(n).to_string())
            .await;
    }
    publisher.wait_acked(60, WAIT).await.unwrap();
    let want: BTreeSet<u64> = (200..260).collect();
    crate::wait_for_addrs(&env, "lanjiang", &want).await;
    let log = env.gw.log();
    assert_eq!(log.matches("MQTT connection lost").count(), 1, "{log}");
    assert_eq!(log.matches("MQTT reconnected").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_in_flight_window_is_processed_without_stalling() {
    // More messages than max_in_flight arrive at once: polling pauses (back-pressure) while acks
    // queue up. Acks must never wait on the paused poll loop, or both stall for good (an earlier
    // version stopped at ~1,800 of 5,000 here).
    let (env, broker) = start(&["lanjiang"], "max_in_flight = 64").await;
    let mut publisher = Publisher::connect(broker.port, "pub-d");
    for n in 0..5000u32 {
        let reading = serde_json::json!({"system_type": 1, "system_addr": 1, "component_type": 17,
            "component_addr": n, "analog_type": 9, "value": 0.3});
        publisher
            .publish("fire/lanjiang-u1/analog", reading.to_string())
            .await;
    }
    publisher.wait_acked(5000, WAIT).await.unwrap();
    env.wait_metric("gateway_ingest_messages_total{source=\"mqtt\"}", 5000.0)
        .await;
    assert_eq!(
        metric(&env.metrics().await, "gateway_mqtt_connection_errors_total"),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_a_private_ca_and_a_password_file() {
    let broker = Mosquitto::start_tls_temp("gateway", "broker-pass-7f3a9")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tls = broker.tls().unwrap().clone();
    let pass_file = broker.dir().join("mqtt.pass");
    std::fs::write(&pass_file, format!("{}\n", tls.password)).unwrap();
    let mqtt = format!(
        "\n[mqtt]\nurl = \"mqtts://localhost:{}\"\nclient_id = \"gw-tls\"\nca_file = {:?}\n\
         username = \"gateway\"\npassword_file = {:?}\n",
        broker.port,
        tls.ca_file.display().to_string(),
        pass_file.display().to_string()
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &mqtt).await;
    env.wait_metric("gateway_mqtt_subscribed", 1.0).await;

    let status = std::process::Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &broker.port.to_string(), "-q", "1"])
        .arg("--cafile")
        .arg(&tls.ca_file)
        .args([
            "-u",
            "gateway",
            "-P",
            &tls.password,
            "-i",
            "pub-tls",
            "-t",
            "fire/lanjiang-u1/status",
        ])
        .args(["-m", &fire(77).to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "mosquitto_pub over TLS: {status}");
    let got = env
        .receiver
        .wait_for(WAIT, "the alarm over mqtts", |d| !d.is_empty())
        .await
        .unwrap();
    assert_eq!(got[0].body.as_ref().unwrap()["source"]["protocol"], "mqtt");
    assert_eq!(got[0].body.as_ref().unwrap()["fire"]["component_addr"], 77);
    assert!(
        !env.gw.log().contains(&tls.password),
        "the broker password leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_message_is_acknowledged_counted_and_dropped_and_ingestion_goes_on() {
    one_oversized_message_does_not_stop_ingestion("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_a_20_mb_message_is_acknowledged_counted_and_dropped_and_ingestion_goes_on() {
    one_oversized_message_does_not_stop_ingestion("version = \"5\"").await;
}

/// Before: rumqttc's packet limit broke the connection before the PUBACK; the persistent
/// session handed the message back on every reconnect and nothing after it was processed.
async fn one_oversized_message_does_not_stop_ingestion(extra: &str) {
    let (env, broker) = start(&["lanjiang"], &format!("topics = [\"fire/#\"]\n{extra}")).await;
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), vec![b'x'; 20 << 20]).unwrap();
    let publish = |args: &[&str]| {
        let status = std::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1"])
            .args(["-t", "fire/lanjiang-u1/status"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "mosquitto_pub: {status}");
    };
    publish(&["-i", "pub-big", "-f", &big.path().display().to_string()]);
    publish(&["-i", "pub-small", "-m", &fire(9).to_string()]);
    let got = env
        .receiver
        .wait_for(WAIT, "the alarm sent after the oversized message", |d| {
            !d.is_empty()
        })
        .await
        .unwrap();
    assert_eq!(got[0].body.as_ref().unwrap()["fire"]["component_addr"], 9);
    env.wait_metric(
        "gateway_ingest_rejected_total{reason=\"too_large\",source=\"mqtt\"}",
        1.0,
    )
    .await;
    // acknowledged: the connection was never broken, so nothing comes back
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = env.metrics().await;
    assert_eq!(
        metric(&m, "gateway_mqtt_connects_total"),
        1.0,
        "one connection"
    );
    assert_eq!(
        metric(
            &m,
            "gateway_ingest_rejected_total{reason=\"too_large\",source=\"mqtt\"}"
        ),
        1.0
    );
    assert!(
        env.gw.log().contains("MQTT payload too large; discarded"),
        "logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_in_a_shared_subscription_split_one_stream() {
    let (env, broker) = start(&["lanjiang"], "shared_group = \"gateways\"").await;
    // a second gateway: its own API port, outbox and client id, the same group and townships
    let mut second = env.config.clone();
    second.data_dir = env.dir.path().join("data-b");
    second.extra = second
        .extra
        .replace("client_id = \"gw-", "client_id = \"gw-b-");
    let dir_b = env.dir.path().join("b");
    std::fs::create_dir_all(&dir_b).unwrap();
    let gw_b = gateway_sim::harness::Gateway::start(&bin(), &second.write(&dir_b))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(&gw_b.metrics().await, "gateway_mqtt_subscribed") != 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "second gateway never subscribed:\n{}",
            gw_b.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut publisher = Publisher::connect(broker.port, "pub-e");
    for n in 300..500 {
        publisher
            .publish("fire/lanjiang-u1/status", fire(n).to_string())
            .await;
    }
    publisher.wait_acked(200, WAIT).await.unwrap();
    let want: BTreeSet<u64> = (300..500).collect();
    crate::wait_for_addrs(&env, "lanjiang", &want).await;
    let series = "gateway_ingest_messages_total{source=\"mqtt\"}";
    let (a, b) = (
        metric(&env.metrics().await, series),
        metric(&gw_b.metrics().await, series),
    );
    assert!(
        a > 0.0 && b > 0.0,
        "both gateways take a share: {a} and {b}"
    );
    assert_eq!(a + b, 200.0, "each message went to exactly one gateway");
    assert_eq!(
        env.receiver.deliveries().len(),
        200,
        "no event delivered twice"
    );
}
