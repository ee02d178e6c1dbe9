//! `dco hub --config FILE`: settings from a TOML file, flags over the file, the effective
//! configuration printed, a bad file refused with its line. Real hub processes.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dco_bin, Proc, TempDir};
use dco::client::{Session, SessionConfig};
use dco::wire::HubAddr;
use dco::Status;

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Starts `dco hub --config CFG` (its data directory `data`) and waits until it listens and has
/// written its process id: the hub, and the address it bound. Its log (errors only, some of
/// them provoked on purpose) is kept out of the test's output.
fn start_on_file(cfg: &str, data: &std::path::Path) -> (Proc, String) {
    let hub = Proc(
        Command::new(dco_bin())
            .args(["hub", "--config", cfg])
            .env("DCO_LOG", "error")
            .env_remove("DCO_SECRET")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(data.join("hub.addr")) {
            if s.ends_with('\n') && data.join("hub.pid").exists() {
                return (hub, s.trim().to_string());
            }
        }
        assert!(Instant::now() < until, "the hub did not start on its file");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn flags_win_over_the_file_and_print_config_shows_the_result() {
    let dir = TempDir::new("config-print");
    let cfg = write(
        &dir,
        "hub.toml",
        "keepalive-ms = 250\nproxy-ids = [7]\n\n[policy]\nattempts = 4\n\n[proxy.7]\nbackoff-ms = 20\n",
    );
    let out = Command::new(dco_bin())
        .args([
            "hub",
            "--config",
            &cfg,
            "--print-config",
            "--keepalive-ms",
            "400",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("keepalive-ms = 400\n"), "{text}");
    assert!(text.contains("proxy-ids = [7]\n"), "{text}");
    assert!(
        text.contains("[policy]\n") && text.contains("attempts = 4\n"),
        "{text}"
    );
    assert!(text.contains("[proxy.7]\nbackoff-ms = 20\n"), "{text}");
    // What it prints is itself a configuration the hub takes.
    let again = write(&dir, "again.toml", &text);
    let out = Command::new(dco_bin())
        .args(["hub", "--config", &again, "--print-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("keepalive-ms = 400\n"));
}

#[test]
fn a_hub_runs_on_its_file_with_a_secret_from_a_file() {
    let dir = TempDir::new("config-run");
    let data = dir.path().join("data");
    let secret = write(&dir, "secret", "s3cret\n");
    let cfg = write(
        &dir,
        "hub.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\nunix = \"none\"\ndata = {:?}\nsecret-file = {:?}\n\
             proxy-ids = [7]\n\n[proxy.7]\nattempts = 2\nmode = \"queue-on-timeout\"\n",
            data.to_str().unwrap(),
            secret
        ),
    );
    let (_hub, addr) = start_on_file(&cfg, &data);
    // Without the secret: refused. With it: the proxy's policy from the file is in force.
    let hubs = HubAddr::parse_list(&addr).unwrap();
    let mut cfg_plain = SessionConfig::with_hubs(hubs.clone());
    cfg_plain.secret = Vec::new();
    let mut s = Session::new(cfg_plain);
    s.write(b"x").unwrap();
    let e = s.call(7, Some(Duration::from_secs(2))).unwrap_err();
    assert_eq!(e.status, Status::Refused, "{e}");
    // With it, the proxy's mode from the file is in force: past its timeout a request to
    // proxy 7 (no worker yet) is parked, not timed out.
    let mut cfg_secret = SessionConfig::with_hubs(hubs);
    cfg_secret.secret = b"s3cret".to_vec();
    let mut s = Session::new(cfg_secret);
    s.write(b"x").unwrap();
    let e = s.call(7, Some(Duration::from_millis(300))).unwrap_err();
    assert_eq!(e.status, Status::Queued, "{e}");
    let stats = Command::new(dco_bin())
        .args(["stats", "--json", "--hub", &addr])
        .env("DCO_SECRET", "s3cret")
        .output()
        .unwrap();
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    // The caller without the secret is counted among the refused connections.
    assert!(
        v["hub"]["refused"]["DCO_E_REFUSED"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
    let policy = v["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == 7)
        .map(|p| p["policy"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(
        policy.contains("mode=queue-on-timeout") && policy.contains("attempts=2"),
        "{policy}: {v}"
    );
}

#[test]
fn a_bad_file_is_refused_with_its_line_and_nothing_starts() {
    let dir = TempDir::new("config-bad");
    let data = dir.path().join("data");
    for (text, needle) in [
        ("listen = \"127.0.0.1:0\"\nkeepalive = 3\n", "line 2"),
        ("quota = \"many\"\n", "line 1"),
        ("[policy]\nattempts = 0\n", "attempts"),
        ("[proxy.x]\nattempts = 2\n", "proxy"),
    ] {
        let cfg = write(&dir, "bad.toml", text);
        let out = Command::new(dco_bin())
            .args(["hub", "--config", &cfg, "--data"])
            .arg(&data)
            .args(["--unix", "none"])
            .env("DCO_LOG", "error")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text:?} was taken");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(!data.join("hub.addr").exists(), "{text:?}: a hub started");
    }
}

/// The policy the hub at `addr` applies to proxy `id`, from `dco stats --json`.
fn policy_of(addr: &str, id: i32) -> String {
    let out = Command::new(dco_bin())
        .args(["stats", "--json", "--hub", addr])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == id)
        .map(|p| p["policy"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn a_reload_changes_policies_without_dropping_anyone_and_a_bad_file_changes_nothing() {
    let dir = TempDir::new("config-reload");
    let data = dir.path().join("data");
    let body = |attempts: &str, extra: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\nunix = \"none\"\ndata = {:?}\nproxy-ids = [7]\n\n\
             [proxy.7]\nattempts = {attempts}\n{extra}",
            data.to_str().unwrap()
        )
    };
    let cfg = write(&dir, "hub.toml", &body("2", ""));
    // The refusals below are logged as errors: start_on_file keeps them out of the output.
    let (_hub, addr) = start_on_file(&cfg, &data);
    // A caller connected across the reload, with a request waiting for a worker.
    let mut s = Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&addr).unwrap(),
    ));
    s.write(b"waits").unwrap();
    let waiting = s.send(7, false, false).unwrap();
    s.flush().unwrap();
    assert!(policy_of(&addr, 7).contains("attempts=2"));
    let reload = || {
        Command::new(dco_bin())
            .args(["reload", "--data"])
            .arg(&data)
            .output()
            .unwrap()
    };

    // A good file: the new policy is in force, the caller and its request are still there.
    write(&dir, "hub.toml", &body("5", "backoff-ms = 40\n"));
    let out = reload();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reloaded"));
    let p = policy_of(&addr, 7);
    assert!(
        p.contains("attempts=5") && p.contains("backoff-ms=40"),
        "{p}"
    );
    assert!(s.is_connected());
    let e = s
        .read(waiting, Some(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(
        e.status,
        Status::Timeout,
        "the waiting request is still waiting: {e}"
    );

    // A bad file: refused with its reason, the policy in force stays.
    write(&dir, "hub.toml", &body("0", ""));
    let out = reload();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused") && err.contains("attempts"), "{err}");
    write(&dir, "hub.toml", "[proxy.7\nattempts = 3\n");
    let out = reload();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
    assert!(policy_of(&addr, 7).contains("attempts=5"));
    assert!(s.is_connected());
}

#[test]
fn every_setting_is_in_the_operations_guide() {
    let out = Command::new(dco_bin())
        .args(["hub", "--print-config"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/OPERATIONS.md"),
    )
    .unwrap();
    let mut keys = 0;
    for line in text.lines() {
        // `key = value`, and the commented defaults (`# unix = ...`, `# secret: ...`).
        let line = line.trim_start_matches("# ");
        let key = line.split([' ', '=', ':']).next().unwrap_or("").trim();
        if key.is_empty() || key.starts_with('[') {
            continue;
        }
        let key = if key == "secret" { "secret-file" } else { key };
        keys += 1;
        assert!(
            guide.contains(&format!("| `{key}`")),
            "setting `{key}` is not in docs/OPERATIONS.md §1"
        );
    }
    assert!(keys > 15, "{text}");
}

#[test]
fn reload_signals_nothing_but_a_dco_hub() {
    // A hub killed without quitting leaves DATA/hub.pid; by now that id may be anyone's.
    let dir = TempDir::new("config-stale-pid");
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(dir.path().join("hub.pid"), format!("{}\n", other.id())).unwrap();
    let out = Command::new(dco_bin())
        .args(["reload", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a running dco hub"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The other process was not signalled.
    assert!(other.try_wait().unwrap().is_none());
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn requests_name_services_that_routes_resolve_once_when_accepted() {
    let dir = TempDir::new("config-routes");
    let data = dir.path().join("data");
    let body = |moving_to: i32| {
        format!(
            "listen = \"127.0.0.1:0\"\nunix = \"none\"\ndata = {:?}\nproxy-ids = [7, 8]\n\n\
             [[route]]\nservice = \"echo.svc\"\nproxy = 7\n\n\
             [[route]]\nservice = \"moving.svc\"\nproxy = {moving_to}\n\n\
             [[route]]\nservice = \"later.svc\"\nproxy = 9\n",
            data.to_str().unwrap()
        )
    };
    let cfg = write(&dir, "hub.toml", &body(8));
    let (_hub, addr) = start_on_file(&cfg, &data);
    let _w7 = common::echo_worker(&addr, 7);
    let mut s = Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&addr).unwrap(),
    ));
    let t = Some(Duration::from_secs(10));
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        s.write(b"by name").unwrap();
        match s.call_service("echo.svc", dco::client::CallFlags::NONE, t) {
            Ok(r) => {
                assert_eq!(r.body, b"by name");
                break;
            }
            // The worker may not have announced itself yet.
            Err(e) if Instant::now() < until => {
                assert_eq!(e.status, Status::Timeout, "{e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    // An unknown service, and a name that cannot be one.
    s.write(b"x").unwrap();
    let e = s
        .call_service("nobody.svc", dco::client::CallFlags::NONE, t)
        .unwrap_err();
    assert_eq!(e.status, Status::NoRoute, "{e}");
    assert!(e.message.contains("nobody.svc"), "{e}");
    // A route declares its proxy: with no worker yet (proxy 9 is in no proxy-ids), the request
    // waits for one instead of failing.
    s.write(b"waits").unwrap();
    let later = s.send_to("later.svc", false, false).unwrap();
    let e = s.read(later, Some(Duration::from_millis(300))).unwrap_err();
    assert_eq!(e.status, Status::Timeout, "{e}");
    s.cancel(later).unwrap();
    s.clear_body();
    s.write(b"x").unwrap();
    let e = s.send_to("two words", false, false).unwrap_err();
    assert_eq!(e.status, Status::Invalid, "{e}");
    s.clear_body();
    // The name rides in the frame: a body that fits alone but not with the name is refused
    // before anything is sent (and kept).
    s.write(&vec![b'b'; s.body_limit() - 3]).unwrap();
    let e = s.send_to("echo.svc", false, false).unwrap_err();
    assert_eq!(e.status, Status::TooLarge, "{e}");
    s.clear_body();

    // moving.svc goes to proxy 8, which has no worker: the request waits there.
    s.write(b"first").unwrap();
    let first = s.send_to("moving.svc", true, false).unwrap();
    s.flush().unwrap();
    // The route moves to 7: new requests go there; the one accepted before stays on 8.
    write(&dir, "hub.toml", &body(7));
    let out = Command::new(dco_bin())
        .args(["reload", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.write(b"second").unwrap();
    let second = s.send_to("moving.svc", false, false).unwrap();
    assert_eq!(s.read(second, t).unwrap().body, b"second");
    let e = s.read(first, Some(Duration::from_millis(200))).unwrap_err();
    assert_eq!(e.status, Status::Timeout, "still waiting on proxy 8: {e}");
    let _w8 = common::echo_worker(&addr, 8);
    assert_eq!(s.read(first, t).unwrap().body, b"first");

    // The routes are in the printed configuration.
    let out = Command::new(dco_bin())
        .args(["hub", "--print-config", "--config", &cfg])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[[route]]\nservice = \"echo.svc\"\nproxy = 7"),
        "{text}"
    );
    // A flag wins over the file's route for the same service.
    let out = Command::new(dco_bin())
        .args([
            "hub",
            "--print-config",
            "--config",
            &cfg,
            "--route",
            "echo.svc=9",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("service = \"echo.svc\"\nproxy = 9")
            && !text.contains("service = \"echo.svc\"\nproxy = 7"),
        "{text}"
    );
}
