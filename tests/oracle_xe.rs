//! Opt-in: dco's PL/SQL on a real Oracle database.
//!
//! Ignored by a plain `cargo test` (cargo prints it as ignored, with the reason); run it with
//! `DCO_ORACLE_URL=user/password@host:port/service cargo test --features oracle-tests --test oracle_xe -- --ignored`.
//! scripts/oracle-xe.sh starts Oracle XE in a container, creates a user with what dco needs
//! and prints the variables to set. Then:
//!
//! 1. a hub is started here, listening where the database can reach it: DCO_ORACLE_HUB is the
//!    `host:port` the database connects to (default `host.containers.internal:17790`), and the
//!    hub listens on DCO_ORACLE_HUB_LISTEN (default `0.0.0.0:` and that port); an echo worker
//!    serves proxy 5 and a worker that fails with return code 42 serves proxy 7;
//! 2. plsql/install_utl_tcp.sql is run statement by statement (the extproc body would need
//!    libdco.so and an extproc agent on the database host);
//! 3. the session is pointed at the hub (dco.set_hubs) and every block of plsql/examples.sql
//!    runs; their DBMS_OUTPUT lines are checked;
//! 4. plsql/uninstall.sql removes it all again.
//!
//! The `oracle` crate loads Oracle's client library (Instant Client, libclntsh.so) at run time:
//! it must be installed on the machine running this test (LD_LIBRARY_PATH).

mod common;

use std::path::{Path, PathBuf};

fn plsql(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plsql")
        .join(name)
}

/// One statement of a SQL*Plus script, as SQL*Plus would send it.
#[derive(Debug)]
struct Statement {
    file: String,
    line: usize,
    sql: String,
}

/// Reads a SQL*Plus script the way SQL*Plus does, line by line (as tests/plsql/parse.mjs):
/// PL/SQL units up to their "/" line, other statements up to the ";" that ends a line;
/// @/@@ includes followed (relative to plsql/); SET, PROMPT, WHENEVER, SHOW, EXIT, DEFINE
/// and UNDEFINE left out; &&name and &name replaced from `defines`.
fn script(name: &str, defines: &[(&str, &str)]) -> Vec<Statement> {
    let path = plsql(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let unit = |l: &str| {
        let u = l.trim_start().to_uppercase();
        let u = u.split_whitespace().collect::<Vec<_>>().join(" ");
        u.starts_with("DECLARE")
            || u.starts_with("BEGIN")
            || [
                "PACKAGE",
                "PROCEDURE",
                "FUNCTION",
                "TYPE",
                "TRIGGER",
                "LIBRARY",
            ]
            .iter()
            .any(|k| {
                u.starts_with(&format!("CREATE {k}"))
                    || u.starts_with(&format!("CREATE OR REPLACE {k}"))
            })
    };
    let substitute = |l: &str| -> String {
        let mut out = l.to_string();
        for (k, v) in defines {
            out = out
                .replace(&format!("&&{k}"), v)
                .replace(&format!("&{k}"), v);
        }
        assert!(
            !out.contains('&') || out.trim_start().starts_with("--"),
            "{name}: undefined substitution variable in {l:?}"
        );
        out
    };
    let mut out = Vec::new();
    let mut cur: Option<(usize, bool, Vec<String>)> = None;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let trimmed = line.trim();
        if let Some((start, is_unit, lines)) = cur.as_mut() {
            if trimmed == "/" {
                out.push(Statement {
                    file: name.into(),
                    line: *start,
                    sql: lines.join("\n"),
                });
                cur = None;
                continue;
            }
            lines.push(substitute(line));
            if !*is_unit && trimmed.ends_with(';') {
                let mut sql = lines.join("\n");
                sql.truncate(sql.trim_end().len() - 1);
                out.push(Statement {
                    file: name.into(),
                    line: *start,
                    sql,
                });
                cur = None;
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        if let Some(inc) = trimmed.strip_prefix('@') {
            out.extend(script(inc.trim_start_matches('@').trim(), defines));
            continue;
        }
        let first = trimmed
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        if [
            "SET", "PROMPT", "WHENEVER", "SHOW", "EXIT", "DEFINE", "UNDEFINE",
        ]
        .contains(&first.as_str())
        {
            continue;
        }
        let is_unit = unit(line);
        cur = Some((n, is_unit, vec![substitute(line)]));
        if !is_unit && trimmed.ends_with(';') {
            let mut sql = substitute(line);
            sql.truncate(sql.trim_end().len() - 1);
            out.push(Statement {
                file: name.into(),
                line: n,
                sql,
            });
            cur = None;
        }
    }
    assert!(cur.is_none(), "{name}: the last statement has no end");
    out
}
/// What runs against a real database: built only with `--features oracle-tests` (the
/// `oracle` crate and its C library are not compiled otherwise).
#[cfg(feature = "oracle-tests")]
mod on_oracle {
    use super::*;
    use common::{dco_bin, echo_worker, Proc, TempDir};
    use dco::wire::HubAddr;
    use dco::worker::{Delivery, Outcome, ReplyBuf, WorkerConfig};
    use oracle::sql_type::OracleType;
    use oracle::Connection;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Compilation errors of the dco packages, in words.
    fn compile_errors(conn: &Connection) -> Vec<String> {
        let rows = conn
            .query_as::<(String, String, i64, i64, String)>(
                "SELECT name, type, line, position, text FROM user_errors \
                 WHERE name IN ('DCO', 'DCO_PDU') ORDER BY name, type, sequence",
                &[],
            )
            .expect("query user_errors");
        rows.map(|r| {
            let (name, ty, line, pos, text) = r.expect("user_errors row");
            format!("{ty} {name} line {line}:{pos} {text}")
        })
        .collect()
    }

    /// Runs the statements of a script; on a failure says which one and what the compiler said.
    fn run_script(conn: &Connection, statements: &[Statement]) {
        for s in statements {
            if let Err(e) = conn.execute(&s.sql, &[]) {
                panic!(
                    "{}:{}: {e}\ncompilation errors: {:#?}\nstatement:\n{}",
                    s.file,
                    s.line,
                    compile_errors(conn),
                    s.sql
                );
            }
            if let Some(w) = conn.last_warning() {
                panic!(
                    "{}:{}: {w}\ncompilation errors: {:#?}",
                    s.file,
                    s.line,
                    compile_errors(conn)
                );
            }
        }
    }

    /// The DBMS_OUTPUT lines the session has produced since the last call.
    fn output(conn: &Connection) -> Vec<String> {
        let mut lines = Vec::new();
        let mut stmt = conn
            .statement("BEGIN DBMS_OUTPUT.GET_LINE(:1, :2); END;")
            .build()
            .expect("prepare GET_LINE");
        loop {
            stmt.execute(&[&OracleType::Varchar2(32767), &OracleType::Int64])
                .expect("DBMS_OUTPUT.GET_LINE");
            let status: i64 = stmt.bind_value(2).expect("status");
            if status != 0 {
                return lines;
            }
            let line: Option<String> = stmt.bind_value(1).expect("line");
            lines.push(line.unwrap_or_default());
        }
    }

    /// A hub listening on `listen` (reachable by the database), killed when dropped.
    struct XeHub {
        _proc: Proc,
        local: String,
        _dir: TempDir,
    }

    fn start_hub(listen: &str) -> XeHub {
        let dir = TempDir::new("oracle-xe-hub");
        let child = Command::new(dco_bin())
            // The database reaches the hub from another address (its container).
            .args([
                "hub",
                "--listen",
                listen,
                "--allow-remote",
                "--proxy-ids",
                "6,7",
                "--data",
            ])
            .arg(dir.path())
            .env("DCO_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn dco hub");
        let mut proc = Proc(child);
        let addr_file = dir.path().join("hub.addr");
        let until = Instant::now() + Duration::from_secs(20);
        let bound = loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file) {
                if s.ends_with('\n') {
                    break s.trim().to_string();
                }
            }
            if let Ok(Some(st)) = proc.0.try_wait() {
                panic!("the hub exited at start ({st}): is {listen} free?");
            }
            assert!(Instant::now() < until, "the hub did not start on {listen}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let port = bound.rsplit(':').next().expect("port");
        XeHub {
            _proc: proc,
            local: format!("127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// A worker thread serving proxy 7 that fails every request with return code 42.
    struct FailingWorker {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<dco::Result<()>>>,
    }

    impl FailingWorker {
        fn start(hub: &str) -> FailingWorker {
            let cfg = WorkerConfig::new(HubAddr::parse_list(hub).expect("hub address"), vec![7]);
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let thread = std::thread::spawn(move || {
                let mut handler = |_d: &Delivery<'_>, reply: &mut ReplyBuf<'_>| {
                    reply.write(b"insufficient funds");
                    Outcome::Failure(42)
                };
                dco::worker::run(&cfg, &mut handler, &s)
            });
            FailingWorker {
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for FailingWorker {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Waits until `n` workers serve `proxy` (per `dco stats`).
    fn wait_workers(hub: &str, proxy: i32, n: u64) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new(dco_bin())
                .args(["stats", "--json", "--hub", hub])
                .output()
                .expect("dco stats");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let have = v["proxies"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["id"] == proxy)
                .and_then(|p| p["workers"].as_u64())
                .unwrap_or(0);
            if have == n {
                return;
            }
            assert!(
                Instant::now() < until,
                "proxy {proxy}: {have} workers, want {n}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    #[ignore = "needs a real Oracle: set DCO_ORACLE_URL and run with -- --ignored"]
    fn plsql_examples_run_on_oracle() {
        let url = std::env::var("DCO_ORACLE_URL").unwrap_or_else(|_| {
            panic!(
                "DCO_ORACLE_URL is not set, so nothing can run against Oracle. Set it to \
                 user/password@host:port/service (scripts/oracle-xe.sh starts Oracle XE in a \
                 container and prints it) to install dco's PL/SQL there and run \
                 plsql/examples.sql against a hub started by this test."
            )
        });
        let (credentials, connect_string) = url
            .rsplit_once('@')
            .expect("DCO_ORACLE_URL: user/password@host:port/service");
        let (user, password) = credentials
            .split_once('/')
            .expect("DCO_ORACLE_URL: user/password@host:port/service");
        let db_hub = std::env::var("DCO_ORACLE_HUB")
            .unwrap_or_else(|_| "host.containers.internal:17790".to_string());
        let port = db_hub
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .expect("DCO_ORACLE_HUB: host:port");
        let listen =
            std::env::var("DCO_ORACLE_HUB_LISTEN").unwrap_or_else(|_| format!("0.0.0.0:{port}"));

        let hub = start_hub(&listen);
        let _echo = echo_worker(&hub.local, 5);
        let _failing = FailingWorker::start(&hub.local);
        wait_workers(&hub.local, 5, 1);
        wait_workers(&hub.local, 7, 1);

        let conn = Connection::connect(user, password, connect_string).unwrap_or_else(|e| {
            panic!(
                "cannot connect to {connect_string} as {user}: {e}\n(DPI-1047 means Oracle's \
                 client library is missing here: install Instant Client and set LD_LIBRARY_PATH)"
            )
        });

        // Install: the UTL_TCP body.
        run_script(&conn, &script("uninstall.sql", &[]));
        run_script(&conn, &script("install_utl_tcp.sql", &[]));
        assert!(compile_errors(&conn).is_empty());

        conn.execute("BEGIN DBMS_OUTPUT.ENABLE(NULL); END;", &[])
            .expect("DBMS_OUTPUT.ENABLE");
        conn.execute("BEGIN dco.set_hubs(:1); END;", &[&db_hub])
            .expect("dco.set_hubs");

        // The examples, block by block.
        let mut printed = Vec::new();
        for s in script("examples.sql", &[]) {
            if let Err(e) = conn.execute(&s.sql, &[]) {
                panic!(
                    "examples.sql:{}: {e}\noutput so far: {printed:#?}\nblock:\n{}",
                    s.line, s.sql
                );
            }
            printed.extend(output(&conn));
        }
        let want_exact = [
            "call_sync: hello from PL/SQL",
            "batch: 300 replies read in reverse, 0 wrong",
            "binary: -42 2.5 3.25 end",
            "large: 100000 bytes",
            "no_route: -20103",
            "unknown_id: -20106",
            "timeout: -20102",
            "app_fail: rcode 42, DCO_E_APP_FAIL: insufficient funds",
            "closed",
        ];
        for want in want_exact {
            assert!(
                printed.iter().any(|l| l == want),
                "examples.sql did not print {want:?}; it printed {printed:#?}"
            );
        }
        assert!(
            printed
                .iter()
                .any(|l| l.starts_with("one-way: sent as request ")),
            "no one-way line in {printed:#?}"
        );

        // The same session again after close: a new hub session works.
        let mut again = conn
            .statement(
                "DECLARE r BLOB; BEGIN dco.line('again'); dco.call_sync(5, r, 5000); \
                 :1 := UTL_RAW.CAST_TO_VARCHAR2(DBMS_LOB.SUBSTR(r, 100, 1)); END;",
            )
            .build()
            .expect("prepare");
        again
            .execute(&[&OracleType::Varchar2(100)])
            .expect("call_sync after close");
        let text: String = again.bind_value(1).expect("reply");
        assert_eq!(text, "again\n");

        run_script(&conn, &script("uninstall.sql", &[]));
        let left: i64 = conn
            .query_row_as(
                "SELECT COUNT(*) FROM user_objects WHERE object_name IN ('DCO', 'DCO_PDU', 'DCO_HTTP', 'DCO_LIB')",
                &[],
            )
            .expect("count objects");
        assert_eq!(left, 0, "uninstall.sql left dco objects behind");
    }
}

/// Without the feature, the test is listed as ignored with what it needs.
#[cfg(not(feature = "oracle-tests"))]
#[test]
#[ignore = "needs a real Oracle: run with --features oracle-tests, DCO_ORACLE_URL and -- --ignored"]
fn plsql_examples_run_on_oracle() {}

/// The script reader used above, on the real scripts (runs without Oracle).
#[test]
fn scripts_split_into_the_statements_sqlplus_would_send() {
    let install = script("install_utl_tcp.sql", &[]);
    let firsts: Vec<String> = install
        .iter()
        .map(|s| {
            s.sql
                .split_whitespace()
                .take(5)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        firsts,
        [
            "CREATE OR REPLACE PACKAGE dco",
            "CREATE OR REPLACE PACKAGE BODY",
            "CREATE OR REPLACE PACKAGE dco_pdu",
            "CREATE OR REPLACE PACKAGE BODY",
            "CREATE OR REPLACE PACKAGE dco_http",
            "CREATE OR REPLACE PACKAGE BODY",
            "DECLARE n PLS_INTEGER := 0;",
        ]
    );
    assert!(install[1].sql.contains("UTL_TCP.OPEN_CONNECTION"));
    for s in &install {
        assert!(
            !s.sql.trim_end().ends_with('/'),
            "{}:{} keeps its / line",
            s.file,
            s.line
        );
    }
    let ext = script(
        "install_extproc.sql",
        &[("libdco_path", "/opt/dco/lib/libdco.so")],
    );
    assert_eq!(
        ext[0].sql,
        "CREATE OR REPLACE LIBRARY dco_lib AS '/opt/dco/lib/libdco.so';"
    );
    assert!(ext[2].sql.contains("LANGUAGE C LIBRARY dco_lib"));
    let examples = script("examples.sql", &[]);
    assert_eq!(examples.len(), 9, "examples.sql has 9 blocks");
    assert!(examples.iter().all(|s| {
        let u = s.sql.trim_start().to_uppercase();
        (u.starts_with("DECLARE") || u.starts_with("BEGIN")) && u.trim_end().ends_with("END;")
    }));
}
