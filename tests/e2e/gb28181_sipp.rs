//! GB/T 28181 against a SIP tool nobody here wrote: SIPp (Debian `sip-tester`) plays a device —
//! REGISTER with a digest answer it computes itself, a keepalive, a catalog response split in
//! two MESSAGEs (the SN of our query extracted and repeated), an alarm — and answers the
//! platform's queries, subscription and alarm Response out of its call.

use crate::common::*;
use crate::gb28181::{section, udp, PASSWORD, SERVER_ID};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const DEVICE: &str = "34020000001320000077";
const CH1: &str = "34020000001310000771";
const CH2: &str = "34020000001310000772";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/sipp")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_with_digest_keeps_alive_sends_a_two_part_catalog_and_an_alarm() {
    gateway_sim::harness::require("sipp", "sip-tester").unwrap();
    let devices = format!("[[gb28181.devices]]\nid = \"{DEVICE}\"\ntownship = \"lanjiang\"\n");
    let env = Env::start(&["lanjiang"], |c| c.extra += &section(&devices)).await;
    let server = udp(&env);
    let work = env.dir.path().join("sipp");
    std::fs::create_dir_all(&work).unwrap();
    let mut sipp = tokio::process::Command::new("sipp");
    sipp.current_dir(&work)
        .arg(server.to_string())
        .args(["-sf", scenario("device.xml").to_str().unwrap()])
        .args(["-oocsf", scenario("queries.xml").to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-m", "1"])
        .args(["-au", DEVICE, "-ap", PASSWORD])
        .args([
            "-key",
            "server_id",
            SERVER_ID,
            "-key",
            "domain",
            &SERVER_ID[..10],
        ])
        .args([
            "-key", "device", DEVICE, "-key", "ch1", CH1, "-key", "ch2", CH2,
        ])
        .args([
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(40), sipp.output())
        .await
        .expect("sipp ends within its own timeout")
        .expect("sipp runs");
    let errors: String = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        out.status.success(),
        "sipp failed ({:?}): {}\n{}\nerrors: {errors}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // the catalog from its two MESSAGEs: both channels, channel 2 OFF
    let (s, d) = env
        .get(
            &format!("/api/v1/gb28181/devices/{DEVICE}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["online"], true, "{d}");
    assert_eq!(d["keepalives"], 1, "{d}");
    assert_eq!(d["user_agent"], "SIPp", "{d}");
    let channels = d["channels"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = channels
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(CH1, "东门一号", "on"), (CH2, "东门二号", "off")],
        "{d}"
    );
    assert!(d["catalog_at"].is_string(), "the catalog came whole: {d}");

    // the OFF channel and the alarm reach the township
    let got = env
        .receiver
        .wait_for(WAIT, "camera.offline of channel 2 and the alarm", |d| {
            let kinds: Vec<(&str, &str)> = d
                .iter()
                .filter_map(|d| {
                    let b = d.body.as_ref()?;
                    Some((b["kind"].as_str()?, b["source"]["id"].as_str()?))
                })
                .collect();
            kinds.contains(&("camera.offline", CH2)) && kinds.contains(&("camera.alarm", CH1))
        })
        .await
        .unwrap();
    let alarm = got
        .iter()
        .filter_map(|d| d.body.as_ref())
        .find(|b| b["kind"] == "camera.alarm")
        .unwrap();
    assert_eq!(alarm["camera"]["alarm"]["type_name"], "视频丢失");
    assert_eq!(alarm["camera"]["alarm"]["description"], "视频丢失");
    assert_eq!(
        alarm["occurred_at"], "2026-12-01T10:00:00.000+08:00",
        "the device's local time"
    );
    assert!(got.iter().all(|d| d.township == "lanjiang"));
}
