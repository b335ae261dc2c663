//! TLS on the API: certificates made by openssl at test time, a real rustls client.

use crate::common::*;
use gateway_sim::harness::{township_secret, Gateway, TestConfig};
use gateway_sim::receiver::Receiver;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// `name.pem` and `name.key` in `dir`: self-signed (a CA) or signed by `ca`, for 127.0.0.1.
fn issue(dir: &Path, name: &str, ca: Option<&str>) {
    let key = dir.join(format!("{name}.key"));
    let pem = dir.join(format!("{name}.pem"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ok = match ca {
        None => Command::new("openssl")
            .args(["req", "-x509", "-days", "2", "-subj"])
            .arg(format!("/CN={name}"))
            .args(ec)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&pem)
            .output()
            .unwrap(),
        Some(ca) => {
            let csr = dir.join(format!("{name}.csr"));
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
            let req = Command::new("openssl")
                .args(["req", "-subj"])
                .arg(format!("/CN={name}"))
                .args(ec)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .output()
                .unwrap();
            assert!(req.status.success(), "{req:?}");
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(dir.join(format!("{ca}.pem")))
                .arg("-CAkey")
                .arg(dir.join(format!("{ca}.key")))
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&pem)
                .output()
                .unwrap()
        }
    };
    assert!(ok.status.success(), "openssl: {ok:?}");
}

/// A client that trusts only `ca` (and shows `identity`, when given: cert and key PEM).
fn client(dir: &Path, ca: &str, identity: Option<&str>) -> reqwest::Client {
    let root = std::fs::read(dir.join(format!("{ca}.pem"))).unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap())
        .timeout(Duration::from_secs(5));
    if let Some(name) = identity {
        let mut pem = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("{name}.key"))).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn healthz(gw: &Gateway, client: &reqwest::Client) -> Result<u16, String> {
    match client.get(gw.url("/healthz")).send().await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// Before: the API spoke plain HTTP only — tokens and alarms crossed the network in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_speaks_tls_rotates_its_certificate_on_reload_and_can_require_client_certificates()
{
    gateway_sim::harness::require("openssl", "openssl").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, ca) in [
        ("ca-a", None),
        ("server-a", Some("ca-a")),
        ("ca-b", None),
        ("server-b", Some("ca-b")),
        ("clients", None),
        ("township-app", Some("clients")),
    ] {
        issue(d, name, ca);
    }
    std::fs::copy(d.join("server-a.pem"), d.join("api.pem")).unwrap();
    std::fs::copy(d.join("server-a.key"), d.join("api.key")).unwrap();
    let secrets = [("lanjiang".to_string(), township_secret("lanjiang"))];
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), &secrets, true)
        .await
        .unwrap();
    let base = format!("http://{}", receiver.addr());
    let mut config = TestConfig::new(&d.join("data"), &base, &["lanjiang"], 1);
    config.api_extra =
        "header_timeout_s = 1\ntls_cert = \"api.pem\"\ntls_key = \"api.key\"\n".into();
    let path = config.write(d);
    let gw = Gateway::start_https(&bin(), &path, client(d, "ca-a", None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // HTTPS serves, plain HTTP does not
    let a = client(d, "ca-a", None);
    let push = a
        .post(gw.url("/api/v1/ingest/lanjiang-u1/status"))
        .bearer_auth(INGEST_TOKEN)
        .json(&fire(1))
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 202);
    receiver
        .wait_for(WAIT, "the alarm", |d| !d.is_empty())
        .await
        .unwrap();
    let plain = reqwest::get(format!("http://{}/healthz", gw.addr)).await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // a connection that never starts its handshake is closed after header_timeout_s
    let mut idle = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    let m = gw.metrics().await;
    assert!(
        metric(&m, "gateway_api_tls_handshake_failures_total") >= 2.0,
        "{m}"
    );

    // the outbox commands reach the running gateway over TLS (they pin its certificate)
    let (code, out, err) = run_cli(&["outbox", "stats"], &path);
    assert_eq!(code, 0, "{out}{err}");

    // a new certificate (another CA) in the same files, then a reload: new connections get it
    std::fs::copy(d.join("server-b.pem"), d.join("api.pem")).unwrap();
    std::fs::copy(d.join("server-b.key"), d.join("api.key")).unwrap();
    let reload = a
        .post(gw.url("/api/v1/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200);
    assert_eq!(healthz(&gw, &client(d, "ca-b", None)).await, Ok(200));
    assert!(healthz(&gw, &client(d, "ca-a", None)).await.is_err());

    // mutual TLS: a client certificate of `tls_client_ca` is required
    config.api_extra += "tls_client_ca = \"clients.pem\"\n";
    config.write(d);
    let b = client(d, "ca-b", None);
    let reload = b
        .post(gw.url("/api/v1/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200);
    assert!(healthz(&gw, &client(d, "ca-b", None)).await.is_err());
    let app = client(d, "ca-b", Some("township-app"));
    assert_eq!(healthz(&gw, &app).await, Ok(200));
    let (code, _, err) = run_cli(&["outbox", "stats"], &path);
    assert_ne!(code, 0);
    assert!(err.contains("client certificates"), "{err}");
}

/// A TLS setting that cannot work is a config error naming the file, not a failed start.
#[test]
fn tls_files_that_do_not_work_are_config_errors() {
    gateway_sim::harness::require("openssl", "openssl").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    issue(d, "ca", None);
    issue(d, "one", Some("ca"));
    issue(d, "other", Some("ca"));
    let mut config = TestConfig::new(&d.join("data"), "http://127.0.0.1:9", &["lanjiang"], 1);
    for (extra, says) in [
        (
            "tls_cert = \"missing.pem\"\ntls_key = \"one.key\"\n",
            "missing.pem",
        ),
        (
            "tls_cert = \"one.pem\"\ntls_key = \"other.key\"\n",
            "tls_key",
        ),
        ("tls_cert = \"one.pem\"\n", "go together"),
        (
            "tls_cert = \"one.key\"\ntls_key = \"one.key\"\n",
            "no certificate",
        ),
    ] {
        config.api_extra = extra.into();
        let path = config.write(d);
        let (code, out, err) = run_cli(&["check"], &path);
        assert_eq!(code, 2, "{extra}: {out}{err}");
        assert!(err.contains(says), "{extra}: {err}");
    }
}
