//! The C ABI from C: the programs of c_examples/ and tests/c/ are compiled with `cc` against
//! include/dco.h and the libdco.so built for this test profile, then run against real hubs and
//! workers (tests/common).
//!
//! Compiler flags: -std=c11 -Wall -Wextra -Werror -pedantic, plus
//! -fsanitize=address,undefined -fno-sanitize-recover=all when a probe program built that way
//! runs on this machine (the mode chosen is printed to stderr).

mod common;
#[path = "http_worker/server.rs"]
mod server;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::cbuild::{lib_dir, out_dir, root, SANITIZE, STRICT};
use common::{echo_worker, slow_echo_worker, ClosedPort, Hub, Proc};
use dco::client::{Session, SessionConfig};
use dco::wire::HubAddr;
use dco::Status;

/// Longest any one C program may run before it counts as hung (a guard, not a performance check).
const HANG_GUARD: Duration = Duration::from_secs(40);

/// The C sources, relative to the crate root, by program name.
const SOURCES: &[(&str, &str)] = &[
    ("call_sync", "c_examples/call_sync.c"),
    ("batch", "c_examples/batch.c"),
    ("worker", "c_examples/worker.c"),
    ("threads", "c_examples/threads.c"),
    ("pool_worker", "c_examples/pool_worker.c"),
    ("http_call", "c_examples/http_call.c"),
    ("bad_input", "tests/c/bad_input.c"),
];

/// The compiled programs and how to run them.
struct Programs {
    dir: PathBuf,
    /// Environment for running sanitized programs.
    env: Vec<(&'static str, &'static str)>,
    /// Compile errors by program name: only the tests using that program fail.
    errors: Vec<(&'static str, String)>,
}

impl Programs {
    /// The path of program `name`; fails the test if it did not compile.
    fn path(&self, name: &str) -> PathBuf {
        if let Some((_, e)) = self.errors.iter().find(|(n, _)| *n == name) {
            panic!("{e}");
        }
        self.dir.join(name)
    }

    /// A command for program `name` with the sanitizer environment.
    fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(self.path(name));
        c.envs(self.env.iter().copied()).env("DCO_LOG", "warn");
        c
    }
}

/// Compiles every program once per test process; a compile error fails the tests that run that
/// program.
fn programs() -> &'static Programs {
    static P: OnceLock<Programs> = OnceLock::new();
    P.get_or_init(build_all)
}

/// `cc` with the strict flags, `extra` flags, the source and the libdco.so in `lib` (with an
/// rpath, so the program finds it there).
fn compile(src: &Path, out: &Path, extra: &[&str], lib: &Path) -> Result<(), String> {
    let output = Command::new("cc")
        .args(STRICT)
        .args(extra)
        .arg("-I")
        .arg(root().join("include"))
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg(format!("-L{}", lib.display()))
        .arg("-ldco")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-pthread")
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cc {} failed:\n{}",
            src.display(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Finds out whether sanitized programs linked with libdco run here: with leak detection, else
/// without, else not at all.
fn sanitizer_mode(dir: &Path) -> (Vec<&'static str>, Vec<(&'static str, &'static str)>) {
    let src = dir.join("probe.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <string.h>\n#include \"dco.h\"\n\
         int main(void) {\n\
           dco_session *s = dco_session_new(\"127.0.0.1:1\");\n\
           if (s == NULL || dco_line(\"probe\") != DCO_OK) return 1;\n\
           dco_session_free(s);\n\
           dco_close();\n\
           puts(strcmp(dco_result_name(DCO_OK), \"DCO_OK\") == 0 ? \"probe ok\" : \"bad\");\n\
           return 0;\n}\n",
    )
    .expect("write probe.c");
    let exe = dir.join("probe");
    let ubsan = ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    let candidates: [(&str, Vec<(&str, &str)>); 2] = [
        (
            "with leak detection",
            vec![("ASAN_OPTIONS", "detect_leaks=1"), ubsan],
        ),
        (
            "without leak detection",
            vec![("ASAN_OPTIONS", "detect_leaks=0"), ubsan],
        ),
    ];
    if compile(&src, &exe, SANITIZE, dir).is_ok() {
        for (what, env) in candidates {
            let ok = Command::new(&exe)
                .envs(env.iter().copied())
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"probe ok"));
            if ok {
                eprintln!("c_abi: C programs run with -fsanitize=address,undefined, {what}");
                return (SANITIZE.to_vec(), env);
            }
        }
    }
    eprintln!("c_abi: sanitizers do not work here; C programs run without them");
    (Vec::new(), Vec::new())
}

fn build_all() -> Programs {
    let dir = out_dir("c_abi");
    // A snapshot of this profile's libdco beside the programs (a hard link: cargo replaces the
    // file rather than rewriting it), so a `cargo build` running meanwhile cannot swap the
    // library under them.
    for lib in ["libdco.so", "libdco.a"] {
        let (from, to) = (lib_dir().join(lib), dir.join(lib));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        }
    }
    // Programs linked with -ldco record the library's SONAME, libdco.so.0.
    let _ = std::fs::remove_file(dir.join("libdco.so.0"));
    std::os::unix::fs::symlink("libdco.so", dir.join("libdco.so.0")).expect("link libdco.so.0");
    let (flags, env) = sanitizer_mode(&dir);
    let mut errors = Vec::new();
    // Two at a time: the machine may have two cores and other tests running.
    for pair in SOURCES.chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .map(|(name, src)| {
                let (src, out, flags) = (root().join(src), dir.join(name), flags.clone());
                let lib = dir.clone();
                (
                    *name,
                    std::thread::spawn(move || compile(&src, &out, &flags, &lib)),
                )
            })
            .collect();
        for (name, h) in handles {
            if let Err(e) = h.join().expect("compile thread") {
                errors.push((name, e));
            }
        }
    }
    // call_sync linked with the static library too, with the libraries Rust code needs.
    let output = Command::new("cc")
        .args(STRICT)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join("c_examples/call_sync.c"))
        .arg("-o")
        .arg(dir.join("call_sync-static"))
        .arg(dir.join("libdco.a"))
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .output()
        .expect("run cc");
    if !output.status.success() {
        let e = format!(
            "linking call_sync with libdco.a failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        errors.push(("call_sync-static", e));
    }
    Programs { dir, env, errors }
}

/// What a finished program said.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Everything, for assertion messages.
    fn show(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with `stdin` as its input, killing it (and failing) if it outlives the hang guard.
fn run(mut cmd: Command, stdin: &[u8]) -> Outcome {
    let (status, stdout, stderr) = run_bytes(&mut cmd, stdin);
    Outcome {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn run_bytes(cmd: &mut Command, stdin: &[u8]) -> (ExitStatus, Vec<u8>, Vec<u8>) {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut p = Proc(child);
    let mut input = p.0.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
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
        if let Some(st) = p.0.try_wait().expect("wait for the program") {
            break st;
        }
        if Instant::now() > until {
            p.kill();
            let e = err_t.join().unwrap_or_default();
            panic!(
                "{cmd:?} still ran after {HANG_GUARD:?}; killed it. stderr:\n{}",
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = feeder.join();
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    (status, stdout, stderr)
}

/// A hub with one echo worker serving `proxy`, ready to route.
fn hub_with_echo(proxy: i32) -> (Hub, Proc) {
    let hub = Hub::start(&[]);
    let w = echo_worker(&hub.addr, proxy);
    hub.wait_workers(proxy, 1);
    (hub, w)
}

fn session(hub: &Hub) -> Session {
    Session::new(SessionConfig::with_hubs(
        HubAddr::parse_list(&hub.addr).expect("hub address"),
    ))
}

// ---------------------------------------------------------------------------------------------

/// include/dco.h compiles on its own as strict C99/C11 and as C++ (cpp_compat), so any C or C++
/// program can include it first.
#[test]
fn header_compiles_standalone_in_c_and_cpp() {
    let dir = common::TempDir::new("header");
    let src = dir.path().join("only_header.c");
    std::fs::write(
        &src,
        "#include \"dco.h\"\nint main(void) { return dco_result_name(DCO_OK) == 0; }\n",
    )
    .unwrap();
    for std in ["-std=c99", "-std=c11"] {
        let out = Command::new("cc")
            .args([
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
                "-I",
            ])
            .arg(root().join("include"))
            .arg(&src)
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "dco.h does not compile with {std}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cpp = dir.path().join("only_header.cpp");
    std::fs::copy(&src, &cpp).unwrap();
    match Command::new("c++")
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-I",
        ])
        .arg(root().join("include"))
        .arg(&cpp)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "dco.h does not compile as C++:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("c_abi: no C++ compiler ({e}); the C++ check was not run"),
    }
}

/// Every function libdco.so exports is declared in dco.h, and every declared one is exported.
#[test]
fn exported_symbols_match_the_header() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib_dir().join("libdco.so"))
        .output()
        .expect("run nm (binutils)");
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exported: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().rev();
            let (name, kind) = (f.next()?, f.next()?);
            (kind == "T" && name.starts_with("dco_")).then(|| name.to_string())
        })
        .collect();
    exported.sort();

    let header = std::fs::read_to_string(root().join("include/dco.h")).unwrap();
    let code = strip_c_comments(&header);
    let mut declared: Vec<String> = Vec::new();
    for (i, _) in code.match_indices("dco_") {
        let rest = &code[i..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        // A function declaration: the name is directly followed by its parameter list, and
        // is not the `(*dco_handler)` of a function pointer typedef.
        let before: String = code[..i].chars().filter(|c| !c.is_whitespace()).collect();
        if after.starts_with('(') && !before.ends_with("(*") {
            declared.push(name);
        }
    }
    declared.sort();
    declared.dedup();
    assert!(declared.len() >= 30, "found only {declared:?} in dco.h");
    assert_eq!(
        exported, declared,
        "libdco.so's exported dco_* functions (left) differ from dco.h's declarations (right)"
    );
}

fn strip_c_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        // Whichever comment starts first (a `//` inside a block comment is part of it).
        let block = rest.find("/*").unwrap_or(usize::MAX);
        let line = rest.find("//").unwrap_or(usize::MAX);
        match (block, line) {
            (usize::MAX, usize::MAX) => {
                out.push_str(rest);
                return out;
            }
            (b, l) if b < l => {
                out.push_str(&rest[..b]);
                match rest[b + 2..].find("*/") {
                    Some(e) => rest = &rest[b + 2 + e + 2..],
                    None => return out,
                }
            }
            (_, l) => {
                out.push_str(&rest[..l]);
                match rest[l..].find('\n') {
                    Some(e) => rest = &rest[l + e..],
                    None => return out,
                }
            }
        }
    }
}

/// call_sync.c against an echo worker: lines, raw standard input larger than its first buffer,
/// an empty body, an unserved proxy, no hub, usage errors, and the static library build.
#[test]
fn call_sync_against_echo_worker() {
    let p = programs();
    let (hub, _echo) = hub_with_echo(5);
    let call = |args: &[&str], stdin: &[u8]| {
        let mut c = p.cmd("call_sync");
        c.args(args).env("DCO_HUB", &hub.addr);
        run(c, stdin)
    };

    let o = call(&["5", "hello", "two words"], b"");
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "hello\ntwo words\n");

    // Binary standard input, larger than the program's 4096-byte first buffer: the reply is
    // read whole with dco_read_request(dco_last_request_id(), ...).
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 + i / 977) as u8).collect();
    let mut c = p.cmd("call_sync");
    c.args(["5", "-"]).env("DCO_HUB", &hub.addr);
    let (st, out, err) = run_bytes(&mut c, &data);
    assert!(st.success(), "{st:?}: {}", String::from_utf8_lossy(&err));
    assert!(
        out == data,
        "the echoed {} bytes differ from the {} sent",
        out.len(),
        data.len()
    );

    // Text, then raw bytes, then text: dco_line and dco_write append to the same body.
    let o = call(&["5", "a", "-", "c"], b"b\0b");
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "a\nb\0bc\n");

    // An empty body gives an empty reply.
    let o = call(&["5", "-"], b"");
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "");

    // dco_call with DCO_QUEUE_ON_TIMEOUT against a worker slower than the timeout: DCO_E_QUEUED,
    // then the parked answer read with dco_read_request(dco_last_request_id(), ...). Without
    // the flag the same call times out.
    let _slow = slow_echo_worker(&hub.addr, 15, 600);
    hub.wait_workers(15, 1);
    let o = call(&["-t", "100", "-q", "15", "later"], b"");
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "later\n");
    assert!(o.stderr.contains("queued"), "{}", o.show());
    let o = call(&["-t", "100", "15", "never"], b"");
    assert_eq!(o.code(), Some(1), "{}", o.show());
    assert!(o.stderr.contains("DCO_E_TIMEOUT"), "{}", o.show());

    // Nobody serves proxy 6.
    let o = call(&["6", "x"], b"");
    assert_eq!(o.code(), Some(1), "{}", o.show());
    assert!(o.stderr.contains("DCO_E_NO_ROUTE"), "{}", o.show());
    assert!(
        o.stderr.contains("no worker serves proxy 6"),
        "{}",
        o.show()
    );
    assert_eq!(o.stdout, "");

    // A timeout of 0 with a reply that cannot be there yet... is not certain with an echo
    // worker, so timeouts are checked in bad_input.c. No hub at all: the call keeps trying
    // until its timeout, then says so.
    let closed = ClosedPort::new();
    let mut c = p.cmd("call_sync");
    c.args(["-t", "300", "5", "x"]).env("DCO_HUB", &closed.addr);
    let o = run(c, b"");
    assert_eq!(o.code(), Some(1), "{}", o.show());
    assert!(o.stderr.contains("DCO_E_NOT_CONNECTED"), "{}", o.show());

    // Usage errors.
    // (A first argument that is not a number names a service: see the test after this one.)
    for args in [&[][..], &["5"], &["-t", "soon", "5", "x"]] {
        let o = call(args, b"");
        assert_eq!(o.code(), Some(2), "{args:?}: {}", o.show());
        assert!(o.stderr.contains("usage"), "{}", o.show());
    }

    // The same program linked with libdco.a.
    let mut c = Command::new(p.path("call_sync-static"));
    c.args(["5", "static", "link"]).env("DCO_HUB", &hub.addr);
    let o = run(c, b"");
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "static\nlink\n");
}

/// batch.c: 300 buffered requests, one flush, read back in reverse order; a reply larger than
/// the buffer read snprintf-style, then whole.
#[test]
fn a_c_caller_names_a_service_the_hub_routes() {
    let p = programs();
    let hub = Hub::start(&[
        "--route",
        "echo.svc=6",
        "--route",
        "idle.svc=7",
        "--proxy-ids",
        "7",
    ]);
    let _echo = echo_worker(&hub.addr, 6);
    hub.wait_workers(6, 1);
    let call = |args: &[&str]| {
        let mut c = p.cmd("call_sync");
        c.args(args).env("DCO_HUB", &hub.addr);
        run(c, b"")
    };
    let o = call(&["echo.svc", "by", "name"]);
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "by\nname\n");
    // No route: DCO_E_NO_ROUTE with the name in the words.
    let o = call(&["nobody.svc", "x"]);
    assert_eq!(o.code(), Some(1), "{}", o.show());
    assert!(
        o.stderr.contains("DCO_E_NO_ROUTE") && o.stderr.contains("nobody.svc"),
        "{}",
        o.show()
    );
    // A routed service with no worker: the sync call's deadline passes.
    let o = call(&["-t", "300", "idle.svc", "x"]);
    assert!(o.stderr.contains("DCO_E_TIMEOUT"), "{}", o.show());
}

#[test]
fn batch_reads_replies_in_reverse_order() {
    let p = programs();
    let (hub, _echo) = hub_with_echo(6);
    let mut c = p.cmd("batch");
    c.arg("6").env("DCO_HUB", &hub.addr);
    let o = run(c, b"");
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert!(
        o.stdout
            .contains("300 buffered requests, one flush, replies read in reverse order: ok"),
        "{}",
        o.show()
    );
    assert!(
        o.stdout
            .contains("200000 byte reply read with a 100 byte buffer, then whole: ok"),
        "{}",
        o.show()
    );
    // Usage errors are told apart from failures.
    let o = run(p.cmd("batch"), b"");
    assert_eq!(o.code(), Some(2), "{}", o.show());
    // And a proxy nobody serves fails the checks, with the reason.
    let mut c = p.cmd("batch");
    c.arg("66").env("DCO_HUB", &hub.addr);
    let o = run(c, b"");
    assert_eq!(o.code(), Some(1), "{}", o.show());
    assert!(o.stderr.contains("DCO_E_NO_ROUTE"), "{}", o.show());
}

/// threads.c: thread sessions and dco_session_new handles in parallel threads.
#[test]
fn threads_use_their_own_sessions() {
    let p = programs();
    let (hub, _echo) = hub_with_echo(7);
    let mut c = p.cmd("threads");
    c.arg("7").env("DCO_HUB", &hub.addr);
    let o = run(c, b"");
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert!(
        o.stdout.contains("threads: 400 calls right out of 400"),
        "{}",
        o.show()
    );
}

/// Starts worker.c serving `proxies` on `hub`, with its standard output piped.
fn c_worker(p: &Programs, hub: &Hub, proxies: &[&str]) -> Proc {
    let child = p
        .cmd("worker")
        .args(proxies)
        .env("DCO_HUB", &hub.addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start worker.c");
    Proc(child)
}

/// Waits for a stopped worker.c and returns its standard output.
fn stopped_worker_output(w: &mut Proc, signal: i32) -> String {
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(w.pid() as i32, signal);
    }
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = w.0.try_wait().expect("wait for worker.c") {
            break st;
        }
        assert!(
            Instant::now() < until,
            "worker.c did not stop within 10 s of signal {signal}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    w.0.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read worker.c output");
    assert!(
        status.success(),
        "worker.c exited with {status:?} after signal {signal}: {out}"
    );
    out
}

/// worker.c as a real worker process: called from C (call_sync.c) and from Rust (Session), with
/// success and application failures and their return codes; stopped by SIGTERM, then SIGINT.
#[test]
fn c_worker_serves_c_and_rust_callers() {
    let p = programs();
    let hub = Hub::start(&["--proxy", "8:backoff-ms=20"]);
    let mut w = c_worker(p, &hub, &["8", "9"]);
    hub.wait_workers(8, 1);
    hub.wait_workers(9, 1);

    let call = |args: &[&str]| {
        let mut c = p.cmd("call_sync");
        c.args(args).env("DCO_HUB", &hub.addr);
        run(c, b"")
    };
    // From C.
    let o = call(&["8", "hello", "World"]);
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "HELLO\nWORLD\n");
    let o = call(&["9", "mixed Case 123"]);
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, "MIXED CASE 123\n");
    let o = call(&["8", "fail 17"]);
    assert_eq!(o.code(), Some(1), "{}", o.show());
    assert!(o.stderr.contains("DCO_E_APP_FAIL"), "{}", o.show());
    assert!(o.stderr.contains("worker return code 17"), "{}", o.show());
    assert!(
        o.stderr.contains("failed on purpose with code 17"),
        "{}",
        o.show()
    );
    assert_eq!(o.stdout, "");

    // dco_reply_retry: the hub retries (attempt 3 answers); dco_reply_forward: proxy 8 hands
    // the text on to proxy 9, whose answer reaches the caller; remaining_ms: the time left,
    // here the call's 10 s deadline.
    let mut c = p.cmd("call_sync");
    c.args(["8", "-"]).env("DCO_HUB", &hub.addr);
    let (st, out, err) = run_bytes(&mut c, b"retry");
    assert!(st.success(), "{st:?}: {}", String::from_utf8_lossy(&err));
    assert_eq!(out, b"done on attempt 3");
    let mut c = p.cmd("call_sync");
    c.args(["8", "-"]).env("DCO_HUB", &hub.addr);
    let (st, out, err) = run_bytes(&mut c, b"forward 9 passed on");
    assert!(st.success(), "{st:?}: {}", String::from_utf8_lossy(&err));
    assert_eq!(out, b"PASSED ON");
    let mut c = p.cmd("call_sync");
    c.args(["8", "-"]).env("DCO_HUB", &hub.addr);
    let (st, out, err) = run_bytes(&mut c, b"time");
    assert!(st.success(), "{st:?}: {}", String::from_utf8_lossy(&err));
    let left: i64 = String::from_utf8_lossy(&out).parse().unwrap();
    assert!(left > 0 && left <= 10_000, "time left {left} ms");

    // A body larger than the handler's 256-byte chunks: the reply is written in many pieces.
    let body: Vec<u8> = (0..10_000).map(|i| b"abcdefghij-xyz "[i % 15]).collect();
    let mut c = p.cmd("call_sync");
    c.args(["9", "-"]).env("DCO_HUB", &hub.addr);
    let (st, out, err) = run_bytes(&mut c, &body);
    assert!(st.success(), "{st:?}: {}", String::from_utf8_lossy(&err));
    assert!(
        out == body.to_ascii_uppercase(),
        "the reply is not the body in upper case"
    );

    // From Rust.
    let mut s = session(&hub);
    s.line("from rust").unwrap();
    let r = s
        .call(9, Some(Duration::from_secs(10)))
        .expect("call worker.c");
    assert_eq!(r.body, b"FROM RUST\n");
    assert_eq!(r.rcode, 0);
    s.line("fail").unwrap();
    let e = s
        .call(8, Some(Duration::from_secs(10)))
        .expect_err("an application failure");
    assert_eq!(e.status, Status::AppFail, "{e}");
    assert_eq!(e.rcode, 42, "{e}");
    assert!(e.message.contains("failed on purpose with code 42"), "{e}");
    s.write(b"fail 3").unwrap();
    let e = s
        .call(9, Some(Duration::from_secs(10)))
        .expect_err("an application failure");
    assert_eq!((e.status, e.rcode), (Status::AppFail, 3), "{e}");
    // A session goes on after an application failure.
    s.write(b"ok").unwrap();
    assert_eq!(
        s.call(8, Some(Duration::from_secs(10))).unwrap().body,
        b"OK"
    );

    // SIGTERM: dco_worker_stop from the signal handler; the worker reports what it served.
    let out = stopped_worker_output(&mut w, libc::SIGTERM);
    assert!(out.contains("worker: serving 2 proxy id(s)"), "{out}");
    // 8 calls, plus 3 deliveries of "retry", 2 of the forwarded request and 1 of "time".
    assert!(
        out.contains("stopped after 14 request(s), 3 failed on purpose"),
        "{out}"
    );
    hub.wait_workers(8, 0);
    hub.wait_workers(9, 0);

    // SIGINT stops it the same way.
    let mut w = c_worker(p, &hub, &["8"]);
    hub.wait_workers(8, 1);
    s.line("again").unwrap();
    assert_eq!(
        s.call(8, Some(Duration::from_secs(10))).unwrap().body,
        b"AGAIN\n"
    );
    let out = stopped_worker_output(&mut w, libc::SIGINT);
    assert!(
        out.contains("stopped after 1 request(s), 0 failed on purpose"),
        "{out}"
    );

    // Bad arguments: a usage error, and a negative proxy refused by dco_worker_new.
    let o = run(p.cmd("worker"), b"");
    assert_eq!(o.code(), Some(2), "{}", o.show());
    let mut c = p.cmd("worker");
    c.arg("-3").env("DCO_HUB", &hub.addr);
    let o = run(c, b"");
    assert_eq!(o.code(), Some(1), "{}", o.show());
    assert!(o.stderr.contains("DCO_E_INVALID"), "{}", o.show());
}

/// pool_worker.c: a C handler on 8 threads at once, its cancelled flag, the return code beside
/// a success, and the init and done hooks around a graceful stop that finishes what is in
/// flight.
#[test]
fn c_pool_worker_runs_requests_at_once_with_hooks() {
    let p = programs();
    let hub = Hub::start(&[]);
    let mut w = {
        let child = p
            .cmd("pool_worker")
            .args(["-n", "8", "11"])
            .env("DCO_HUB", &hub.addr)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start pool_worker.c");
        Proc(child)
    };
    hub.wait_workers(11, 1);
    let mut s = session(&hub);
    let ids: Vec<u64> = (0..16)
        .map(|_| {
            s.write(b"sleep 300").unwrap();
            s.send(11, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    for id in ids {
        let r = s.read(id, Some(Duration::from_secs(20))).unwrap();
        assert_eq!(r.body, b"slept 300");
    }
    s.write(b"status").unwrap();
    let r = s.call(11, Some(Duration::from_secs(10))).unwrap();
    assert_eq!((r.body.as_slice(), r.rcode), (&b"status 201"[..], 201));
    // Past its deadline the hub cancels the request at the worker: the handler sees
    // d->cancelled turn 1 and stops sleeping.
    s.write(b"sleep 5000").unwrap();
    let e = s.call(11, Some(Duration::from_millis(300))).unwrap_err();
    assert_eq!(e.status, Status::Timeout, "{e}");
    // Four requests in flight when SIGTERM comes: they are answered before the worker exits.
    let ids: Vec<u64> = (0..4)
        .map(|_| {
            s.write(b"sleep 400").unwrap();
            s.send(11, true, false).unwrap()
        })
        .collect();
    s.flush().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while hub.stats()["workers"][0]["inflight"].as_u64().unwrap_or(0) < 4 {
        assert!(
            Instant::now() < until,
            "the worker never held the 4 requests"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = stopped_worker_output(&mut w, libc::SIGTERM);
    for id in ids {
        let r = s.read(id, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(r.body, b"slept 400");
    }
    assert!(out.starts_with("pool_worker: init\n"), "{out}");
    assert!(
        out.contains("done: served 22, at most 8 at once, 1 cancelled while running"),
        "{out}"
    );

    // An init hook that fails: no proxy is announced, and dco_worker_run says why.
    let mut c = p.cmd("pool_worker");
    c.args(["12"])
        .env("DCO_HUB", &hub.addr)
        .env("POOL_WORKER_FAIL_INIT", "7");
    let o = run(c, b"");
    assert_eq!(o.code(), Some(3), "{}", o.show());
    assert!(
        o.stderr.contains("DCO_E_APP_FAIL (rcode 7)"),
        "{}",
        o.show()
    );
    assert!(o.stderr.contains("init hook returned 7"), "{}", o.show());
    assert!(!o.stdout.contains("init"), "{}", o.show());
    let v = hub.stats();
    assert!(
        !v["proxies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["id"] == 12),
        "{v}"
    );
}

/// http_call.c: a C caller of a REST API through `dco worker http` and a real HTTP server.
#[test]
fn c_caller_of_an_http_proxy() {
    let p = programs();
    let srv = server::HttpServer::start();
    let hub = Hub::start(&[]);
    let _w = Proc(
        Command::new(common::dco_bin())
            .args(["worker", "http", "--proxy", "30", "--hub", &hub.addr])
            .args(["--base-url", &srv.url()])
            .env("DCO_LOG", "error")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn dco worker http"),
    );
    hub.wait_workers(30, 1);
    let http = |args: &[&str]| {
        let mut c = p.cmd("http_call");
        c.args(args).env("DCO_HUB", &hub.addr);
        run(c, b"")
    };
    let o = http(&[
        "30",
        "POST",
        "/echo/sms",
        r#"{"to":"+4512345678","text":"hi"}"#,
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert_eq!(o.stdout, r#"{"to":"+4512345678","text":"hi"}"#);
    assert!(o.stderr.contains("HTTP 200"), "{}", o.show());
    let o = http(&["30", "GET", "/status/404"]);
    assert_eq!(o.code(), Some(4), "{}", o.show());
    assert!(o.stderr.contains("HTTP 404"), "{}", o.show());
    assert!(o.stderr.contains("status 404"), "{}", o.show());
}

/// tests/c/bad_input.c: every bad-input path of the C ABI, each with its result code.
#[test]
fn bad_input_gives_the_documented_codes() {
    let p = programs();
    let (live, _echo) = hub_with_echo(11);
    let quota = Hub::start(&["--quota", "2"]);
    let closed = ClosedPort::new();
    let mut c = p.cmd("bad_input");
    c.args([&live.addr, &closed.addr, &quota.addr, "11", "12"])
        .env_remove("DCO_HUB");
    let o = run(c, b"");
    eprintln!("{}", o.stderr);
    assert_eq!(o.code(), Some(0), "{}", o.show());
    assert!(o.stdout.contains(", 0 failed"), "{}", o.show());
    let checks: u32 = o
        .stdout
        .trim()
        .strip_prefix("bad_input: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(checks >= 200, "only {checks} checks ran: {}", o.show());
}
