//! The extproc face (src/extproc) without an Oracle server: tests/c/extproc_emulator.c plays
//! Oracle's extproc agent toward libdco.so (it exports `ociepmsg` and `ociepacm`, dlopens the
//! library and calls every `dco_ext_*` entry point with the argument list of its PL/SQL call
//! spec), one database session per process, against real hubs and workers (tests/common).
//!
//! The emulator is built twice: with the ociep* symbols exported (-rdynamic), where every
//! error must arrive as its ORA-201nn exception, and without them, where the library must load
//! and return the negative DCO_E_* codes instead. Compiler flags: -std=c11 -Wall -Wextra
//! -Werror -pedantic, plus -fsanitize=address,undefined when a probe run works here (the mode
//! chosen is printed to stderr).

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::cbuild::{lib_dir, out_dir, root, SANITIZE, STRICT};
use common::{echo_worker, slow_echo_worker, ClosedPort, Hub, InProc};
use dco::worker::{Delivery, Outcome, ReplyBuf};

/// Longest one emulator run may take before it counts as hung (a guard, not a measurement).
const HANG_GUARD: Duration = Duration::from_secs(40);

/// Proxy ids: the `dco worker echo` process, the in-process workers, the slow `dco worker
/// echo --delay-ms` process, and one nobody serves.
const ECHO: i32 = 5;
const APP: i32 = 21;
const GATE: i32 = 22;
const CTRL: i32 = 23;
const SLOW: i32 = 24;
const UNSERVED: i32 = 777;

const SOURCE: &str = "tests/c/extproc_emulator.c";

/// The two builds of the emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Oracle {
    /// `ociepmsg` and `ociepacm` defined and exported from the executable.
    Present,
    /// No ociep* symbol anywhere in the process.
    Absent,
}

const BOTH: [Oracle; 2] = [Oracle::Present, Oracle::Absent];

/// `cc` for one build of the emulator (`extra`: sanitizer flags, or -fsyntax-only and
/// defines).
fn cc(oracle: Oracle, extra: &[&str], out: Option<&Path>) -> Result<(), String> {
    let mut c = Command::new("cc");
    c.args(STRICT).args(extra);
    match oracle {
        Oracle::Present => c.args(["-DEMULATOR_WITH_OCI=1", "-rdynamic"]),
        Oracle::Absent => c.arg("-DEMULATOR_WITH_OCI=0"),
    };
    c.arg("-I")
        .arg(root().join("include"))
        .arg(root().join(SOURCE));
    if let Some(out) = out {
        c.arg("-o").arg(out).arg("-ldl");
    }
    let output = c.output().map_err(|e| format!("cannot run cc: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cc {SOURCE} ({oracle:?}) failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The compiled emulators and how to run them.
struct Emulator {
    dir: PathBuf,
    /// Environment for sanitized runs.
    env: Vec<(&'static str, &'static str)>,
    /// Why the emulator could not be built, if it could not.
    error: Option<String>,
}

impl Emulator {
    fn exe(&self, oracle: Oracle) -> PathBuf {
        if let Some(e) = &self.error {
            panic!("{e}");
        }
        self.dir.join(match oracle {
            Oracle::Present => "extproc_emulator",
            Oracle::Absent => "extproc_emulator_no_oracle",
        })
    }

    fn lib(&self) -> PathBuf {
        self.dir.join("libdco.so")
    }

    /// Runs `scenario` with `proxies` as one database session (one process) with DCO_HUB =
    /// `hub`, killing it (and failing) if it outlives the hang guard.
    fn run(&self, oracle: Oracle, scenario: &str, proxies: &[i32], hub: &str) -> Ran {
        let mut c = Command::new(self.exe(oracle));
        c.arg(self.lib())
            .arg(scenario)
            .args(proxies.iter().map(|p| p.to_string()))
            .envs(self.env.iter().copied())
            .env("DCO_HUB", hub)
            .env("DCO_LOG", "warn");
        run(c, &format!("{scenario} ({oracle:?})"))
    }

    /// Runs `scenario` and asserts that all its checks passed, and that at least `min` ran.
    fn pass(&self, oracle: Oracle, scenario: &str, proxies: &[i32], hub: &str, min: u32) {
        let o = self.run(oracle, scenario, proxies, hub);
        assert_eq!(o.status.code(), Some(0), "{}", o.show());
        let n = o.checks(scenario).unwrap_or(0);
        assert!(
            n >= min,
            "{scenario} ({oracle:?}): only {n} checks ran, want at least {min}:\n{}",
            o.show()
        );
        assert!(
            !o.stderr.contains("FAILED"),
            "{scenario} ({oracle:?}) exited 0 but reported failures:\n{}",
            o.show()
        );
    }
}

fn emulator() -> &'static Emulator {
    static E: OnceLock<Emulator> = OnceLock::new();
    E.get_or_init(build)
}

/// Compiles both builds, with the sanitizers when a probe run of both works with them (with
/// leak detection, else without), else without sanitizers.
fn build() -> Emulator {
    let dir = out_dir("extproc");
    // A snapshot of libdco.so (a hard link: cargo replaces the file rather than rewriting it),
    // so a `cargo build` running meanwhile cannot swap the library under the runs.
    let (from, to) = (lib_dir().join("libdco.so"), dir.join("libdco.so"));
    if std::fs::hard_link(&from, &to).is_err() {
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    }
    let mut em = Emulator {
        dir,
        env: Vec::new(),
        error: None,
    };
    let compile_both = |flags: &[&str]| -> Result<(), String> {
        let handles: Vec<_> = BOTH
            .iter()
            .map(|&o| {
                let out = em.dir.join(match o {
                    Oracle::Present => "extproc_emulator",
                    Oracle::Absent => "extproc_emulator_no_oracle",
                });
                let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
                std::thread::spawn(move || {
                    let flags: Vec<&str> = flags.iter().map(|s| s.as_str()).collect();
                    cc(o, &flags, Some(&out))
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("compile thread"))
    };
    if compile_both(SANITIZE).is_ok() {
        let ubsan = ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
        let candidates: [(&str, Vec<(&'static str, &'static str)>); 2] = [
            (
                "with leak detection",
                vec![("ASAN_OPTIONS", "detect_leaks=1"), ubsan],
            ),
            (
                "without leak detection",
                vec![("ASAN_OPTIONS", "detect_leaks=0"), ubsan],
            ),
        ];
        for (what, env) in candidates {
            em.env = env;
            let ok = BOTH.iter().all(|&o| {
                let out = em.run(o, "probe", &[], "127.0.0.1:1");
                out.status.success() && out.stdout.starts_with("probe ok")
            });
            if ok {
                eprintln!("extproc: the emulator runs with -fsanitize=address,undefined, {what}");
                return em;
            }
        }
    }
    eprintln!("extproc: sanitizers do not work here; the emulator runs without them");
    em.env = Vec::new();
    if let Err(e) = compile_both(&[]) {
        em.error = Some(e);
    }
    em
}

/// What a finished run said.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn show(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// N of the summary line "extproc_emulator SCENARIO (...): N checks, M failed".
    fn checks(&self, scenario: &str) -> Option<u32> {
        self.summary(&format!("extproc_emulator {scenario} ("))
            .map(|(n, _)| n)
    }

    /// (N, M) of the last summary line starting with `prefix`.
    fn summary(&self, prefix: &str) -> Option<(u32, u32)> {
        let line = self.stdout.lines().rev().find(|l| l.starts_with(prefix))?;
        let (_, rest) = line.rsplit_once(": ")?;
        let mut w = rest.split(' ');
        let n = w.next()?.parse().ok()?;
        let m = w.nth(1)?.parse().ok()?;
        Some((n, m))
    }
}

/// Runs `cmd`, killing it (and failing) if it outlives the hang guard.
fn run(mut cmd: Command, what: &str) -> Ran {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut p = common::Proc(child);
    let mut out = p.0.stdout.take().expect("stdout");
    let mut err = p.0.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let until = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(st) = p.0.try_wait().expect("wait for the emulator") {
            break st;
        }
        if Instant::now() > until {
            p.kill();
            panic!("{what} still ran after {HANG_GUARD:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    Ran {
        status,
        stdout,
        stderr,
    }
}

/// The application worker: "fail N" fails with return code N (42 without a number) and says
/// so in its reply; "failbig" fails with code 9 and an 81 kB reply, "ab" then three-byte
/// characters, so that both the exception message (500 bytes) and last_error (32767 bytes)
/// are cut inside a character unless they take care; anything else is answered in upper case.
fn app(d: &Delivery<'_>, reply: &mut ReplyBuf<'_>) -> Outcome {
    if d.body == b"failbig" {
        let mut text = String::from("ab");
        text.push_str(&"€".repeat(27_000));
        reply.write(text.as_bytes());
        return Outcome::Failure(9);
    }
    if let Some(rest) = d.body.strip_prefix(b"fail") {
        let code = std::str::from_utf8(rest)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(42);
        reply.write(format!("failed on purpose with code {code}").as_bytes());
        return Outcome::Failure(code);
    }
    reply.write(&d.body.to_ascii_uppercase());
    Outcome::Success
}

/// Keys opened by the control worker; the gate worker holds "hold KEY ..." until KEY is open,
/// so "no reply yet" is certain rather than a race.
#[derive(Default)]
struct Gates {
    open: Mutex<HashSet<String>>,
    changed: Condvar,
    shutdown: AtomicBool,
}

/// Opens every gate when dropped, so the gate worker can stop.
struct OpenAll(Arc<Gates>);

impl Drop for OpenAll {
    fn drop(&mut self) {
        self.0.shutdown.store(true, Ordering::SeqCst);
        self.0.changed.notify_all();
    }
}

fn second_word(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string()
}

fn gate(gates: Arc<Gates>) -> impl FnMut(&Delivery<'_>, &mut ReplyBuf<'_>) -> Outcome {
    move |d, reply| {
        let key = second_word(d.body);
        // A hang guard only: a failed emulator run must not hold the worker for ever.
        let until = Instant::now() + Duration::from_secs(60);
        let mut open = gates.open.lock().unwrap();
        while !open.contains(&key)
            && !gates.shutdown.load(Ordering::SeqCst)
            && Instant::now() < until
        {
            open = gates
                .changed
                .wait_timeout(open, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        drop(open);
        reply.write(d.body);
        Outcome::Success
    }
}

fn control(gates: Arc<Gates>) -> impl FnMut(&Delivery<'_>, &mut ReplyBuf<'_>) -> Outcome {
    move |d, reply| {
        let key = second_word(d.body);
        gates.open.lock().unwrap().insert(key.clone());
        gates.changed.notify_all();
        reply.write(format!("opened {key}").as_bytes());
        Outcome::Success
    }
}

/// A hub with the `dco worker echo` process serving ECHO, ready to route.
fn hub_with_echo() -> (Hub, common::Proc) {
    let hub = Hub::start(&[]);
    let w = echo_worker(&hub.addr, ECHO);
    hub.wait_workers(ECHO, 1);
    (hub, w)
}

// ---------------------------------------------------------------------------------------------

/// The call specs in the emulator are checked against include/dco.h at compile time, and the
/// check fails when they differ (a build with a deliberately wrong spec: MAXLEN by value).
#[test]
fn header_prototypes_match_the_call_specs() {
    for o in BOTH {
        cc(o, &["-fsyntax-only"], None).unwrap_or_else(|e| panic!("{e}"));
    }
    let e = cc(
        Oracle::Present,
        &["-fsyntax-only", "-DEMULATOR_WRONG_SPEC"],
        None,
    )
    .expect_err("a wrong call spec must not compile");
    for f in [
        "dco_ext_read_request",
        "dco_ext_read_chunk",
        "dco_ext_call_sync",
        "dco_ext_call",
    ] {
        assert!(
            e.contains(&format!("{f} does not match its call spec")),
            "{f} not reported:\n{e}"
        );
    }
    assert!(!e.contains("dco_ext_write does not match"), "{e}");
}

/// One database session per process, each scenario against a real hub, the `dco worker echo`
/// process and in-process workers: the caller's API (line, write, call_sync, buffered sends,
/// flush, out-of-order reads, NULL indicators, MAXLEN smaller than the reply, a reply over
/// 32767 bytes read in chunks, one-way, cancel, unknown ids, invalid arguments, no route),
/// application failures, timeouts, and close. Each with Oracle present and absent.
#[test]
fn one_database_session_per_process() {
    let em = emulator();
    let (hub, _echo) = hub_with_echo();
    let gates = Arc::new(Gates::default());
    let _app = InProc::start(&hub.addr, vec![APP], app);
    let _gate = InProc::start(&hub.addr, vec![GATE], gate(gates.clone()));
    let _ctrl = InProc::start(&hub.addr, vec![CTRL], control(gates.clone()));
    // Dropped before the gate worker: releases whatever it still holds.
    let _open_all = OpenAll(gates);
    for p in [APP, GATE, CTRL] {
        hub.wait_workers(p, 1);
    }
    for o in BOTH {
        em.pass(o, "calls", &[ECHO, UNSERVED], &hub.addr, 650);
        em.pass(o, "app", &[APP], &hub.addr, 50);
        em.pass(o, "gate", &[GATE, CTRL, ECHO], &hub.addr, 60);
        em.pass(o, "close", &[ECHO], &hub.addr, 45);
    }

    // The checks bite: against a worker that answers in upper case instead of echoing, the
    // same scenario fails, and says where.
    let out = em.run(Oracle::Present, "calls", &[APP, UNSERVED], &hub.addr);
    assert_eq!(out.status.code(), Some(1), "{}", out.show());
    assert!(
        out.stderr.contains("FAILED") && out.stderr.contains("differs from"),
        "{}",
        out.show()
    );
    let (_, failed) = out.summary("extproc_emulator calls (").unwrap_or((0, 0));
    assert!(failed >= 10, "only {failed} checks failed:\n{}", out.show());
}

/// How long the slow worker holds each request: far beyond the 200 ms timeouts of the "queue"
/// scenario, so a timeout there is certain, not a race.
const SLOW_DELAY_MS: u64 = 1500;

/// dco_ext_call (`dco.call`): queue_on_timeout 0 against the echo worker returns the echo;
/// queue_on_timeout 1 against a worker slower than the timeout raises ORA-20114 (queued), the
/// request goes on, and its answer is read later with dco_ext_read_request of
/// dco_ext_last_request_id; 0 against it raises ORA-20102 and gives the request up. Also
/// long replies by chunks, invalid arguments and no route. Each with Oracle present and absent.
#[test]
fn call_with_queue_on_timeout_raises_queued_and_parks_the_answer() {
    let em = emulator();
    let (hub, _echo) = hub_with_echo();
    let _slow = slow_echo_worker(&hub.addr, SLOW, SLOW_DELAY_MS);
    hub.wait_workers(SLOW, 1);
    for o in BOTH {
        em.pass(o, "queue", &[ECHO, SLOW, UNSERVED], &hub.addr, 100);
    }
}

/// dco_ext_call_service and dco_ext_send_request_to (`dco.call(service => ...)`,
/// `dco.send_request(service => ...)`): a routed service answers, one without a route raises
/// ORA-20103, bad names ORA-20101. Each with Oracle present and absent.
#[test]
fn a_service_by_name_is_routed_by_the_hub() {
    let em = emulator();
    let hub = Hub::start(&["--route", &format!("echo.svc={ECHO}")]);
    let _echo = echo_worker(&hub.addr, ECHO);
    hub.wait_workers(ECHO, 1);
    for o in BOTH {
        em.pass(o, "service", &[ECHO], &hub.addr, 20);
    }
}

/// Two sessions (forked processes) at once with the same request ids: neither sees the
/// other's replies or ids.
#[test]
fn two_database_sessions_at_once() {
    let em = emulator();
    let (hub, _echo) = hub_with_echo();
    for o in BOTH {
        let out = em.run(o, "sessions", &[ECHO], &hub.addr);
        assert_eq!(out.status.code(), Some(0), "{}", out.show());
        for (s, min) in [("sessions/A", 60), ("sessions/B", 75)] {
            let (n, m) = out
                .summary(&format!("extproc_emulator {s}: "))
                .unwrap_or_else(|| panic!("{s} did not report:\n{}", out.show()));
            assert!(
                n >= min && m == 0,
                "{s}: {n} checks, {m} failed:\n{}",
                out.show()
            );
        }
        assert_eq!(out.checks("sessions"), Some(3), "{}", out.show());
    }
}

/// DCO_HUB points at a closed port: ORA-20104, at once for a send, after the timeout for a
/// call or a read (they keep trying until then, as through a hub restart).
#[test]
fn unreachable_hub_raises_not_connected() {
    let em = emulator();
    let closed = ClosedPort::new();
    for o in BOTH {
        em.pass(o, "not_connected", &[ECHO], &closed.addr, 40);
    }
}

/// A hub with --quota 2 --max-frame 4096: ORA-20105 (busy) and ORA-20107 (too large).
#[test]
fn hub_limits_raise_busy_and_too_large() {
    let em = emulator();
    let hub = Hub::start(&["--quota", "2", "--max-frame", "4096"]);
    for o in BOTH {
        em.pass(o, "limits", &[UNSERVED], &hub.addr, 35);
    }
}

/// A malformed DCO_HUB: every call raises ORA-20101, none crashes.
#[test]
fn malformed_hub_list_raises_invalid() {
    let em = emulator();
    for o in BOTH {
        em.pass(o, "bad_hub", &[ECHO], "no port here", 30);
    }
}
