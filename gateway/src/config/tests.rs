use super::*;

const GOOD: &str = r#"
[gateway]
data_dir = "state"

[api]
listen = "127.0.0.1:18080"
[[api.tokens]]
name = "ops"
token = "0123456789abcdef-ops"
scope = "admin"
[[api.tokens]]
name = "lanjiang-center"
token = "0123456789abcdef-lj"
scope = "township:lanjiang"

[[townships]]
code = "lanjiang"
name = "兰江街道"
webhook = { url = "http://127.0.0.1:9000/lanjiang", secret = "s3cret" }

[[townships]]
code = "yunshan"
name = "云山街道"

[[units]]
id = "unit-0001"
name = "兰溪某商场"
township = "lanjiang"
cameras = ["cam-0001"]
gb26875_address = 889

[[cameras]]
id = "cam-0001"
name = "兰江路口东"
township = "lanjiang"
url = "rtsp://127.0.0.1:8554/cam1"
"#;

fn errors(text: &str) -> String {
    match parse(Path::new("/etc/gw/gateway.toml"), text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_complete_config_loads() {
    let c = parse(Path::new("/etc/gw/gateway.toml"), GOOD).unwrap();
    assert_eq!(
        c.data_dir,
        Path::new("/etc/gw/state"),
        "relative to the config file"
    );
    assert_eq!(c.api.listen.port(), 18080);
    assert_eq!(c.api.tokens.len(), 2);
    assert_eq!(c.api.tokens[1].scope, Scope::Township("lanjiang".into()));
    assert_eq!(c.registry.townships().len(), 2);
    assert!(c.registry.township("yunshan").unwrap().webhook.is_none());
    let u = c.registry.unit("unit-0001").unwrap();
    assert_eq!(u.gb26875_address, Some(889));
    assert_eq!(c.offset.local_minus_utc(), 8 * 3600);
    assert_eq!(c.dedup_window, Duration::from_secs(60));
}

#[test]
fn unknown_section_names_file_line_and_key() {
    let e = errors(&format!("{GOOD}\n[mqttx]\nurl = \"x\"\n"));
    assert!(e.starts_with("/etc/gw/gateway.toml:"), "{e}");
    assert!(e.contains("unknown field `mqttx`"), "{e}");
    let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
    assert_eq!(GOOD.lines().count() + 2, line, "{e}");
}

#[test]
fn unknown_key_in_a_table() {
    let e = errors(&GOOD.replace("name = \"兰溪某商场\"", "name = \"兰溪某商场\"\ncolour = 1"));
    assert!(e.contains("unknown field `colour`"), "{e}");
}

#[test]
fn unit_in_a_township_that_does_not_exist() {
    let text = GOOD.replacen(
        "township = \"lanjiang\"\ncameras",
        "township = \"lanjaing\"\ncameras",
        1,
    );
    let e = errors(&text);
    let line = text.lines().position(|l| l.contains("lanjaing")).unwrap() + 1;
    assert!(
        e.starts_with(&format!("/etc/gw/gateway.toml:{line}:")),
        "{e}"
    );
    assert!(e.contains("township `lanjaing` does not exist"), "{e}");
    assert!(e.contains("known: lanjiang, yunshan"), "{e}");
}

#[test]
fn several_errors_are_reported_together() {
    let text = GOOD
        .replace(
            "scope = \"township:lanjiang\"",
            "scope = \"township:nowhere\"",
        )
        .replace("cameras = [\"cam-0001\"]", "cameras = [\"cam-9999\"]")
        .replace(
            "rtsp://127.0.0.1:8554/cam1",
            "rtsp://admin:pw@127.0.0.1:8554/cam1",
        );
    let e = errors(&text);
    assert!(e.contains("township `nowhere` does not exist"), "{e}");
    assert!(e.contains("camera `cam-9999` does not exist"), "{e}");
    assert!(e.contains("credentials must not be in the URL"), "{e}");
    assert!(!e.contains(":pw@"), "the password is not echoed: {e}");
    assert_eq!(e.lines().count(), 3, "{e}");
}

#[test]
fn secrets_from_env_and_file_and_never_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.key"), "from-file\n").unwrap();
    std::env::set_var("GW_TEST_TOKEN_1", "0123456789abcdef-env");
    let text = GOOD
        .replace(
            "token = \"0123456789abcdef-ops\"",
            "token_env = \"GW_TEST_TOKEN_1\"",
        )
        .replace("secret = \"s3cret\"", "secret_file = \"hook.key\"");
    let c = parse(&dir.path().join("gateway.toml"), &text).unwrap();
    assert_eq!(c.api.tokens[0].secret.expose(), "0123456789abcdef-env");
    let hook = c
        .registry
        .township("lanjiang")
        .unwrap()
        .webhook
        .as_ref()
        .unwrap();
    assert_eq!(hook.secret.expose(), "from-file");

    let e = errors(&GOOD.replace(
        "token = \"0123456789abcdef-ops\"",
        "token_env = \"GW_TEST_UNSET_VAR\"",
    ));
    assert!(
        e.contains("environment variable `GW_TEST_UNSET_VAR` is not set"),
        "{e}"
    );
    let e = errors(&GOOD.replace("token = \"0123456789abcdef-ops\"", "token = \"short\""));
    assert!(e.contains("shorter than 16"), "{e}");
    assert!(!e.contains("short\""), "{e}");
    let e = errors(&GOOD.replace(
        "secret = \"s3cret\"",
        "secret = \"s3cret\", secret_env = \"X\"",
    ));
    assert!(e.contains("exclusive"), "{e}");
}

#[test]
fn csv_registries_load_and_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("units.csv"),
        "id,name,township,heartbeat_timeout_s,gb26875_address,cameras\n\
         unit-1000,甲,lanjiang,60,1000,cam-0001\n\
         unit-1001,乙,yunshan,,,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cameras.csv"),
        "id,name,township,url,username,password_env,vqd_profile\n\
         cam-1000,路口,yunshan,rtsp://127.0.0.1:8554/x,admin,,night\n",
    )
    .unwrap();
    let text = GOOD.replace(
        "[[townships]]\ncode = \"lanjiang\"",
        "[registry]\nunits_csv = \"units.csv\"\ncameras_csv = \"cameras.csv\"\n\n\
         [vqd.profiles.night]\ndark_luma = 20\n\n[[townships]]\ncode = \"lanjiang\"",
    );
    let c = parse(&dir.path().join("gateway.toml"), &text).unwrap();
    assert_eq!(c.registry.unit_count(), 3);
    assert_eq!(
        c.registry.unit("unit-1000").unwrap().heartbeat_timeout_s,
        Some(60)
    );
    assert_eq!(
        c.registry.camera("cam-1000").unwrap().username.as_deref(),
        Some("admin")
    );
    assert_eq!(
        c.registry
            .camera("cam-1000")
            .unwrap()
            .vqd_profile
            .as_deref(),
        Some("night")
    );

    std::fs::write(
        dir.path().join("units.csv"),
        "id,name,township\nunit-1000,甲,lanjiang\nunit-1001,乙,nowhere\nunit-0001,dup,lanjiang\n",
    )
    .unwrap();
    let e = errors_at(&dir, &text);
    assert!(
        e.contains("units.csv:3:3: unit `unit-1001` `township`: township `nowhere` does not exist"),
        "{e}"
    );
    assert!(
        e.contains("units.csv:4:1: unit `unit-0001` is defined twice"),
        "{e}"
    );

    // a vendor export's extra columns are ignored, with one warning naming them
    std::fs::write(
        dir.path().join("units.csv"),
        "id,name,township,colour,备注\nunit-1000,甲,lanjiang,red,x\n",
    )
    .unwrap();
    let c = parse(&dir.path().join("gateway.toml"), &text).unwrap();
    assert_eq!(c.registry.unit_count(), 2);
    let w = c.warnings.join("\n");
    assert!(
        w.contains("units.csv:1: columns ignored (not known to the gateway): `colour`, `备注`"),
        "{w}"
    );

    // header errors on the header's own line, after comment lines
    std::fs::write(
        dir.path().join("units.csv"),
        "# exported 2026-11-30\n# by the county office\nid,name\nunit-1000,甲\n",
    )
    .unwrap();
    let e = errors_at(&dir, &text);
    assert!(e.contains("units.csv:3: missing column `township`"), "{e}");
    // and rows keep their real lines too
    std::fs::write(
        dir.path().join("units.csv"),
        "# exported 2026-11-30\nid,name,township\nunit-1000,甲,lanjiang\nunit-1001,乙,nowhere\n",
    )
    .unwrap();
    let e = errors_at(&dir, &text);
    assert!(
        e.contains("units.csv:4:3: unit `unit-1001` `township`"),
        "{e}"
    );
}

/// Before: a GBK file (Excel's default in a Chinese locale) gave one "invalid utf-8" error per
/// row and no hint.
#[test]
fn csv_registries_saved_as_gbk_are_read_and_unreadable_ones_say_how_to_save_them() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace(
        "[[townships]]\ncode = \"lanjiang\"",
        "[registry]\nunits_csv = \"units.csv\"\n\n[[townships]]\ncode = \"lanjiang\"",
    );
    let utf8 =
        "id,name,township\nunit-1000,兰江街道消防控制室,lanjiang\nunit-1001,云山单位,yunshan\n";
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(utf8);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&gbk).is_err(), "really not UTF-8");
    std::fs::write(dir.path().join("units.csv"), &gbk).unwrap();
    let c = parse(&dir.path().join("gateway.toml"), &text).unwrap();
    assert_eq!(
        c.registry.unit("unit-1000").unwrap().name,
        "兰江街道消防控制室"
    );
    assert!(
        c.warnings.join("\n").contains("read as GBK/GB18030"),
        "{:?}",
        c.warnings
    );

    // UTF-8 with a BOM (Excel's "CSV UTF-8")
    std::fs::write(
        dir.path().join("units.csv"),
        [&b"\xEF\xBB\xBF"[..], utf8.as_bytes()].concat(),
    )
    .unwrap();
    let c = parse(&dir.path().join("gateway.toml"), &text).unwrap();
    assert_eq!(c.registry.unit("unit-1001").unwrap().name, "云山单位");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    std::fs::write(
        dir.path().join("units.csv"),
        [0x80u8, 0xff, 0x00, 0xfe, 0x81],
    )
    .unwrap();
    let e = errors_at(&dir, &text);
    assert_eq!(e.lines().count(), 1, "one error: {e}");
    assert!(
        e.contains("save it from Excel or WPS as \"CSV UTF-8"),
        "{e}"
    );
}

/// Before: a missing cameras file gave one error and then one more for every unit naming a
/// camera.
#[test]
fn a_missing_registry_file_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut units = String::from("id,name,township,cameras\n");
    for n in 0..48 {
        units += &format!("csv-{n:04},单位,lanjiang,cam-{n:04}\n");
    }
    std::fs::write(dir.path().join("units.csv"), units).unwrap();
    let text = GOOD.replace(
        "[[townships]]\ncode = \"lanjiang\"",
        "[registry]\nunits_csv = \"units.csv\"\ncameras_csv = \"cameras.csv\"\n\n[[townships]]\ncode = \"lanjiang\"",
    );
    let e = errors_at(&dir, &text);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("cameras.csv: cannot read registry"), "{e}");
}

fn errors_at(dir: &tempfile::TempDir, text: &str) -> String {
    match parse(&dir.path().join("gateway.toml"), text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.toml");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.registry.townships().len(), 16, "the 16 Lanxi townships");
    for code in gateway_sim::harness::LANXI_TOWNSHIPS {
        assert!(c.registry.township(code).is_some(), "{code}");
    }
}

#[test]
fn thresholds_load_and_bad_limits_are_named() {
    let ok = format!("{GOOD}\n[[thresholds]]\nanalog_type = 9\nabove = 0.3\nclear_below = 0.25\n\n[[thresholds]]\nanalog_type = 9\ncomponent_type = 17\nabove = 0.5\nclear_below = 0.4\n");
    let c = parse(Path::new("/etc/gw/gateway.toml"), &ok).unwrap();
    assert_eq!(c.thresholds.len(), 2);
    assert_eq!(
        c.thresholds[0].component_type,
        Some(17),
        "specific rules first"
    );
    let e = errors(&format!(
        "{GOOD}\n[[thresholds]]\nanalog_type = 9\nabove = 0.3\nclear_below = 0.35\n"
    ));
    assert!(
        e.contains("[[thresholds]] `clear_below` (0.35) must not be above `above` (0.3)"),
        "{e}"
    );
    let e = errors(&format!(
        "{GOOD}\n[[thresholds]]\nanalog_type = 77\nabove = 1\nclear_below = 0\n"
    ));
    assert!(e.contains("77 is not a GB/T 26875.3 analog type"), "{e}");
}

#[test]
fn a_low_band_threshold_loads() {
    let ok = format!("{GOOD}\n[[thresholds]]\nanalog_type = 4\nbelow = 0.1\nclear_above = 0.15\n");
    let c = parse(Path::new("/etc/gw/gateway.toml"), &ok).unwrap();
    let low = c.thresholds[0].limits.low.unwrap();
    assert_eq!((low.limit, low.clear), (0.1, 0.15));
    assert!(c.thresholds[0].limits.high.is_none());
    let e = errors(&format!(
        "{GOOD}\n[[thresholds]]\nanalog_type = 4\nbelow = 0.1\n"
    ));
    assert!(
        e.contains("[[thresholds]] `below` needs `clear_above`"),
        "{e}"
    );
}

#[test]
fn the_shipped_profiles_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.toml");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = c.profiles.0.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["electrical-fire-monitor", "water-pressure-level"]);
    let mqtt = c.mqtt.expect("the example config has [mqtt]");
    assert_eq!(
        *mqtt.profiles.get(),
        c.profiles,
        "the MQTT source reads them too"
    );
    // a realistic payload of each decodes into readings
    let efm = &c.profiles.0[0];
    let d = efm
        .decode(
            alerts::signal::Protocol::Mqtt,
            Some("unit-0001"),
            br#"{"ts": 1764295200, "ir": 125, "t": {"A": 36.5, "B": 37.1, "C": 36.8}, "state": "NORMAL"}"#,
        )
        .unwrap();
    assert_eq!(d.signals.len(), 5);
    let water = &c.profiles.0[1];
    let d = water
        .decode(
            alerts::signal::Protocol::Mqtt,
            None,
            br#"{"deviceId": "unit-0003", "time": "2026-11-28T10:00:00+08:00", "data": {"pressure_kpa": 350, "level_cm": 260, "battery": 87}, "alarm": false}"#,
        )
        .unwrap();
    assert_eq!(d.unit_id, "unit-0003");
    assert_eq!(d.signals.len(), 3);
}

const PROFILE: &str = r#"
[[profiles]]
name = "efm"
topic = "efm/{unit_id}/up"
[[profiles.fields]]
path = "$.ir"
analog_type = 9
scale = 0.001
above = 0.3
clear_below = 0.25
[[profiles.fields]]
path = "$.state"
status = { NORMAL = "normal", ALARM = ["fire", "manual"] }
"#;

#[test]
fn profiles_load_and_their_mistakes_are_named() {
    let c = parse(
        Path::new("/etc/gw/gateway.toml"),
        &format!("{GOOD}{PROFILE}"),
    )
    .unwrap();
    assert_eq!(c.profiles.0.len(), 1);
    assert_eq!(c.profiles.0[0].fields.len(), 2);
    let bad = |from: &str, to: &str| {
        assert!(PROFILE.contains(from), "{from}");
        errors(&format!("{GOOD}{}", PROFILE.replacen(from, to, 1)))
    };
    let e = bad("$.ir", "ir");
    assert!(
        e.contains("profile `efm` field `ir`: path `ir`: must start with `$`"),
        "{e}"
    );
    assert!(e.contains("/etc/gw/gateway.toml:"), "names the file: {e}");
    let e = bad("\"fire\", \"manual\"", "\"smoke\"");
    assert!(
        e.contains("`status` value `ALARM`: unknown StatusFlag `smoke`"),
        "{e}"
    );
    let e = bad("name = \"efm\"", "name = \"status\"");
    assert!(e.contains("the name is a standard channel's"), "{e}");
    let e = bad("efm/{unit_id}/up", "efm/+/up");
    assert!(
        e.contains("`unit_path` must say where the unit id is"),
        "{e}"
    );
    let e = bad(
        "analog_type = 9",
        "analog_type = 9\nstatus = { 1 = \"fire\" }",
    );
    assert!(e.contains("not both"), "{e}");
    let e = bad("clear_below = 0.25", "clear_below = 0.5");
    assert!(
        e.contains("`clear_below` (0.5) must not be above `above` (0.3)"),
        "{e}"
    );
    let e = bad("topic = ", "time_format = \"unix_ns\"\ntopic = ");
    assert!(
        e.contains("`time_format`: `unix_ns` is not one of rfc3339, unix_s, unix_ms"),
        "{e}"
    );
    let e = errors(&format!("{GOOD}{PROFILE}{PROFILE}"));
    assert!(e.contains("profile `efm` is defined twice"), "{e}");
}

#[test]
fn errors_in_a_profile_file_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vendor.toml"),
        PROFILE.replace("scale = 0.001", "scale = 0"),
    )
    .unwrap();
    let e = errors_at(
        &dir,
        &format!("[registry]\nprofile_files = [\"vendor.toml\", \"missing.toml\"]\n{GOOD}"),
    );
    assert!(e.contains("vendor.toml:"), "{e}");
    assert!(e.contains("`scale` must be a non-zero number"), "{e}");
    assert!(e.contains("cannot read `missing.toml`"), "{e}");
}

#[test]
fn video_settings_and_camera_links_load_and_their_mistakes_are_named() {
    let text = format!(
        "{GOOD}\n[vqd]\ninterval_s = 30\nmin_sharpness = 25.5\ncpu_budget = 0.25\n\
         [snapshots]\nmax_width = 0\n[linkage]\nvideo_deadline_ms = 1500\n\
         video_kinds = [\"fire.alarm\", \"fire.supervisory\"]\n\
         [[units]]\nid = \"unit-0002\"\nname = \"仓库\"\ntownship = \"lanjiang\"\n\
         [[units.camera_links]]\nsystem_addr = 1\ncomponent_addr = 77\ncameras = [\"cam-0001\"]\n"
    );
    let c = parse(Path::new("/etc/gw/gateway.toml"), &text).unwrap();
    let rtsp = c.rtsp.as_ref().unwrap();
    assert_eq!(rtsp.vqd.interval, Some(Duration::from_secs(30)));
    assert_eq!(rtsp.vqd.thresholds.min_sharpness, 25.5);
    assert_eq!(rtsp.vqd.thresholds.black_luma, 28.0, "the rest default");
    assert_eq!(c.video.pool.cpu_budget, 0.25);
    assert_eq!(c.video.snapshots.max_width, None);
    assert_eq!(c.video.linkage_deadline, Duration::from_millis(1500));
    assert_eq!(c.video.linkage_kinds.len(), 2);
    let u = c.registry.unit("unit-0002").unwrap();
    assert!(u.cameras.is_empty());
    assert_eq!(u.cameras_for(1, Some(77)), ["cam-0001".to_string()]);
    assert!(u.cameras_for(2, Some(77)).is_empty(), "another system");

    let e = errors(&format!(
        "{GOOD}\n[snapshots]\nquality = 40\n[linkage]\nvideo_kinds = [\"camera.offline\", \"fire.blaze\"]\n\
         [[units]]\nid = \"unit-0003\"\nname = \"x\"\ntownship = \"lanjiang\"\n\
         [[units.camera_links]]\ncomponent_addr = 5\ncameras = [\"cam-9\"]\n"
    ));
    assert!(e.contains("[snapshots] `quality` 40"), "{e}");
    assert!(
        e.contains("`camera.offline` is not a fire event kind"),
        "{e}"
    );
    assert!(e.contains("fire.blaze"), "{e}");
    assert!(e.contains("camera `cam-9` does not exist"), "{e}");
}

#[test]
fn cameras_pick_threshold_profiles_and_unknown_or_bad_ones_are_named() {
    let text = format!(
        "{GOOD}\n[vqd]\nbright_luma = 220\nmin_view_match = 0.4\n\
         [vqd.profiles.tunnel]\ndark_luma = 20\nmax_covered = 0.5\n\
         [[cameras]]\nid = \"cam-0002\"\nname = \"隧道\"\ntownship = \"lanjiang\"\n\
         url = \"rtsp://10.0.0.2/live\"\nvqd_profile = \"tunnel\"\n"
    );
    let c = parse(Path::new("/etc/gw/gateway.toml"), &text).unwrap();
    let vqd = &c.rtsp.as_ref().unwrap().vqd;
    let tunnel = vqd.profiles["tunnel"];
    assert_eq!((tunnel.dark_luma, tunnel.max_covered), (20.0, 0.5));
    assert_eq!(tunnel.bright_luma, 220.0, "[vqd]'s own settings under it");
    assert_eq!(tunnel.min_view_match, 0.4);
    assert_eq!(vqd.thresholds.dark_luma, 45.0, "[vqd] itself unchanged");
    let cam = c.registry.camera("cam-0002").unwrap();
    assert_eq!(cam.vqd_profile.as_deref(), Some("tunnel"));
    assert_eq!(c.registry.camera("cam-0001").unwrap().vqd_profile, None);

    let e = errors(&format!(
        "{GOOD}\n[vqd.profiles.dome]\nmax_covered = 2\nmin_view_match = -3\n\
         [[cameras]]\nid = \"cam-0003\"\nname = \"x\"\ntownship = \"lanjiang\"\n\
         url = \"rtsp://10.0.0.3/live\"\nvqd_profile = \"tunel\"\n"
    ));
    assert!(
        e.contains("camera `cam-0003` `vqd_profile`: no [vqd.profiles.tunel]"),
        "{e}"
    );
    assert!(
        e.contains(
            "[vqd.profiles.dome] `max_uniform`, `max_frozen_change` and `max_covered` are shares"
        ),
        "{e}"
    );
    assert!(
        e.contains("[vqd.profiles.dome] `min_view_match` is a correlation"),
        "{e}"
    );
    let e = errors(&format!("{GOOD}\n[vqd]\nbaseline_samples = 5000\n"));
    assert!(
        e.contains("`baseline_samples` 5000 is more than 1000"),
        "{e}"
    );
    let e = errors(&format!("{GOOD}\n[vqd.profiles.dome]\nmax_coverd = 0.5\n"));
    assert!(
        e.contains("max_coverd"),
        "a misspelt threshold is refused: {e}"
    );
}

#[test]
fn utc_offsets_are_parsed_as_offsets() {
    let h = |s: &str| parse_offset(s).map(|o| o.local_minus_utc());
    assert_eq!(h("+08:00"), Some(8 * 3600));
    assert_eq!(h("-05:30"), Some(-(5 * 3600 + 30 * 60)));
    assert_eq!(h("+00:00"), Some(0));
    for bad in ["08:00", "+8", "eight", "", "+08:00:00x"] {
        assert_eq!(h(bad), None, "{bad}");
    }
}

#[test]
fn gb28181_settings_load_and_their_mistakes_are_named() {
    let gb = "\n[gb28181]\nlisten_udp = \"127.0.0.1:5060\"\nsip_id = \"33078100002000000001\"\npassword = \"pw\"\nmedia = \"udp\"\n\n\
              [gb28181.civil_codes]\n\"33078101\" = \"lanjiang\"\n\n\
              [gb28181.channels]\n\"33078100001310000007\" = \"yunshan\"\n\n\
              [[gb28181.devices]]\nid = \"33078100001180000001\"\nmedia = \"tcp_active\"\n";
    let c = parse(Path::new("/etc/gw/gateway.toml"), &format!("{GOOD}{gb}")).unwrap();
    let g = c.gb28181.expect("[gb28181]");
    assert_eq!(g.media, ::gb28181::media::MediaTransport::Udp);
    assert_eq!(
        g.devices[0].media,
        Some(::gb28181::media::MediaTransport::TcpActive)
    );
    assert_eq!(
        g.channels,
        [("33078100001310000007".to_string(), "yunshan".to_string())]
    );
    assert_eq!(g.liveness.events_per_hour, 12);
    let bad = gb
        .replace(
            "\"33078100001310000007\" = \"yunshan\"",
            "\"331\" = \"nowhere\"",
        )
        .replace("media = \"udp\"", "media = \"udp\"\nevents_per_hour = 0");
    let e = errors(&format!("{GOOD}{bad}"));
    assert!(e.contains("`331` is not a 20-digit channel id"), "{e}");
    assert!(e.contains("`331`: no township `nowhere`"), "{e}");
    assert!(e.contains("`events_per_hour`"), "{e}");
    let e = errors(&format!(
        "{GOOD}{}",
        gb.replace("\"tcp_active\"", "\"sctp\"")
    ));
    assert!(e.contains("sctp") && e.contains("tcp_passive"), "{e}");
}
