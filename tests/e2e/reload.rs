//! Config reload: SIGHUP and `POST /api/v1/admin/reload` read the config again and apply it
//! whole or not at all, without dropping connections.

use crate::common::*;
use gateway_sim::gbsim::{fire_alarm, Device};
use gateway_sim::receiver::Receiver;
use ingest::gb26875::command;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const DEVICE: u64 = 771;
const NEW_TOKEN: &str = "reloaded-ops-token-5d1e";

fn gb26875() -> String {
    format!(
        "[gb26875]\nlisten = \"127.0.0.1:0\"\n\n\
         [[units]]\nid = \"gb-unit\"\nname = \"传输装置单位\"\ntownship = \"lanjiang\"\ngb26875_address = {DEVICE}\n\n"
    )
}

/// Polls a push from `unit` until it is accepted (bounded).
async fn accepted(env: &Env, unit: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = env.push(unit, "status", &fire(3)).await;
        if status == 202 {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a push from {unit} still answered {status} {body}\n{}",
            env.gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Before: SIGHUP killed the gateway. Now it adds and removes units, moves a township's
/// webhook and takes a new token, while a GB/T 26875.3 device stays connected on its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_units_webhooks_and_tokens_without_dropping_a_connection() {
    let mut env = Env::start(&["lanjiang", "yunshan"], |c| c.extra += &gb26875()).await;
    let gb = env.gw.logged_addr("GB/T 26875.3 server listening").unwrap();
    let mut dev = Device::connect(gb, DEVICE, 88888).await.unwrap();
    let port = dev.stream().local_addr().unwrap().port();
    let hb = dev.frame(None);
    assert_eq!(
        dev.exchange(&hb, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    let (status, _) = env.push("lanjiang-u9", "status", &fire(3)).await;
    assert_ne!(status, 202, "an unregistered unit is refused");
    assert_eq!(env.get("/api/v1/townships", Some(NEW_TOKEN)).await.0, 401);

    // lanjiang's webhook moves to a second receiver
    let secrets = [(
        "lanjiang".to_string(),
        gateway_sim::harness::township_secret("lanjiang"),
    )];
    let moved = Receiver::start("127.0.0.1:0".parse().unwrap(), &secrets, true)
        .await
        .unwrap();
    env.config.townships[0].1 = Some(format!("http://{}/lanjiang", moved.addr()));
    env.config
        .units
        .push(("lanjiang-u9".into(), "lanjiang".into()));
    env.config.units.retain(|(id, _)| id != "yunshan-u2");
    env.config.extra +=
        &format!("[[api.tokens]]\nname = \"ops\"\ntoken = \"{NEW_TOKEN}\"\nscope = \"admin\"\n\n");
    env.config.write(env.dir.path());
    let hup = Command::new("kill")
        .args(["-HUP", &env.gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());

    let body = accepted(&env, "lanjiang-u9").await;
    let id = body["events"][0].as_str().unwrap().to_string();
    moved
        .wait_for(WAIT, "the new unit's event at the moved webhook", |d| {
            d.iter().any(|d| d.idempotency_key == id)
        })
        .await
        .unwrap();
    assert!(
        !env.receiver
            .deliveries()
            .iter()
            .any(|d| d.idempotency_key == id),
        "delivered to the old webhook"
    );
    assert_eq!(env.get("/api/v1/townships", Some(NEW_TOKEN)).await.0, 200);
    let (status, _) = env.get("/api/v1/units/yunshan-u2", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 404, "a removed unit is gone");
    assert_ne!(env.push("yunshan-u2", "status", &fire(1)).await.0, 202);

    // the device's connection is the same one, and still served
    assert_eq!(dev.stream().local_addr().unwrap().port(), port);
    let alarm = dev.frame(Some(fire_alarm(5, "reload")));
    let answer = dev.exchange(&alarm, WAIT).await.unwrap();
    assert_eq!(answer.header.command, command::CONFIRM);
    env.wait_metric("gateway_config_reloads_total{result=\"ok\"}", 1.0)
        .await;
    assert!(env.gw.log().contains("config reloaded"));
    env.gw.terminate().await.unwrap();
}

/// A reload that does not check, or that changes what only a restart applies, is refused
/// whole: the running config keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_is_refused_and_the_running_config_kept() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let path = "/api/v1/admin/reload";
    let township = township_token("lanjiang");
    assert_eq!(env.post(path, Some(&township), &json!({})).await.0, 403);

    // invalid: a unit in a township that does not exist
    let mut broken = env.config.clone();
    broken.units.push(("lanjiang-u7".into(), "nowhere".into()));
    broken.write(env.dir.path());
    let (status, body) = env.post(path, Some(ADMIN_TOKEN), &json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "config_invalid");
    let errors = body["error"]["errors"].to_string();
    assert!(errors.contains("nowhere"), "{body}");
    assert_eq!(env.push("lanjiang-u1", "status", &fire(1)).await.0, 202);
    assert_ne!(env.push("lanjiang-u7", "status", &fire(1)).await.0, 202);

    // valid, but the delivery settings only a restart applies
    let mut restart = env.config.clone();
    restart
        .units
        .push(("lanjiang-u7".into(), "lanjiang".into()));
    restart.extra = restart
        .extra
        .replace("timeout_ms = 2000", "timeout_ms = 3000");
    restart.write(env.dir.path());
    let (status, body) = env.post(path, Some(ADMIN_TOKEN), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "restart_required");
    assert!(
        body["error"]["errors"].to_string().contains("[delivery]"),
        "{body}"
    );
    assert_ne!(
        env.push("lanjiang-u7", "status", &fire(1)).await.0,
        202,
        "nothing applied"
    );

    // the same units change alone is taken
    let mut good = env.config.clone();
    good.units.push(("lanjiang-u7".into(), "lanjiang".into()));
    good.write(env.dir.path());
    let (status, body) = env.post(path, Some(ADMIN_TOKEN), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reloaded"]["units_added"], json!(["lanjiang-u7"]));
    assert_eq!(env.push("lanjiang-u7", "status", &fire(1)).await.0, 202);
    let m = env.metrics().await;
    for (result, n) in [("ok", 1.0), ("invalid", 1.0), ("restart_required", 1.0)] {
        let series = format!("gateway_config_reloads_total{{result=\"{result}\"}}");
        assert_eq!(metric(&m, &series), n, "{series}");
    }
}

/// A reload that adds a camera and removes another starts and stops only those sessions: the
/// untouched camera keeps its RTSP session (one PLAY, never reconnected), and pushes made
/// while the config changes are each delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_starts_and_stops_only_the_cameras_it_changes() {
    use crate::cameras::{camera, camera_toml, wait_camera, FAST_HEALTH};
    use gateway_sim::camsim::{CamSim, CamSimConfig};
    let sim = CamSim::start(CamSimConfig::local(3))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cams = |ids: &[u32]| {
        ids.iter()
            .map(|n| camera_toml(&format!("cam-{n}"), "lanjiang", &sim.url(*n), None))
            .collect::<String>()
    };
    let base = FAST_HEALTH.to_string() + FAST_RETRIES;
    let mut env = Env::start(&["lanjiang"], |c| c.extra = base.clone() + &cams(&[1, 2])).await;
    for id in ["cam-1", "cam-2"] {
        wait_camera(&env, id, "online", |c| c["state"] == "online").await;
    }
    assert_eq!((sim.plays(1), sim.plays(2)), ((1, 1), (1, 1)));
    let frames_before = camera(&env, "cam-1").await["frames_total"]
        .as_u64()
        .unwrap();

    env.config.extra = base.clone() + &cams(&[1, 3]);
    env.config.write(env.dir.path());
    let pushing = push_in_background(&env, "lanjiang-u1", 1..=60);
    let (status, body) = env
        .post("/api/v1/admin/reload", Some(ADMIN_TOKEN), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reloaded"]["cameras_added"], json!(["cam-3"]));
    assert_eq!(body["reloaded"]["cameras_removed"], json!(["cam-2"]));
    assert_eq!(body["reloaded"]["cameras_changed"], json!([]));

    wait_camera(&env, "cam-3", "online", |c| c["state"] == "online").await;
    gateway_sim::wait_until(WAIT, "cam-2's session to close", || {
        (sim.plays(2).1 == 0).then_some(())
    })
    .await
    .unwrap();
    let (status, _) = env.get("/api/v1/cameras/cam-2", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 404);
    let c1 = camera(&env, "cam-1").await;
    assert_eq!(sim.plays(1), (1, 1), "cam-1 kept its one session");
    assert_eq!(c1["reconnects"], 0, "{c1}");
    assert!(c1["frames_total"].as_u64().unwrap() > frames_before, "{c1}");

    let ids = pushing.await.unwrap();
    let got = env
        .receiver
        .wait_for(WAIT, "every push of the reload", |d| {
            ids.iter()
                .all(|id| d.iter().any(|d| &d.idempotency_key == id))
        })
        .await
        .unwrap();
    for id in &ids {
        let n = got.iter().filter(|d| &d.idempotency_key == id).count();
        assert_eq!(n, 1, "{id} delivered {n} times");
    }
    env.gw.terminate().await.unwrap();
}
