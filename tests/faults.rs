//! Disk faults injected through the journal's failpoints (the test build has them; see
//! src/journal/disk.rs): a full disk, a failing fdatasync, a power loss. No root needed.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Hub, InProc, TempDir};
use dco::client::{Session, SessionConfig};
use dco::journal::{Journal, JournalConfig};
use dco::wire::HubAddr;
use dco::worker::Outcome;

fn session(addr: &str) -> Session {
    let mut cfg = SessionConfig::with_hubs(HubAddr::parse_list(addr).unwrap());
    cfg.connect_timeout = Duration::from_secs(2);
    Session::new(cfg)
}

/// Deliveries seen per (session, request).
type Seen = Arc<Mutex<HashMap<(u64, u64), u32>>>;

/// An echo worker in this process that counts the deliveries of each (session, request).
fn counting_worker(addr: &str, proxy: i32) -> (InProc, Seen) {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let s = seen.clone();
    let w = InProc::start(addr, vec![proxy], move |d, r| {
        *s.lock().unwrap().entry((d.session, d.request)).or_insert(0) += 1;
        r.write(d.body);
        Outcome::Success
    });
    (w, seen)
}

#[test]
fn a_full_disk_drains_takes_new_work_without_a_restart_and_reruns_nothing_answered() {
    let dir = TempDir::new("fault-full");
    let flag = std::env::temp_dir().join(format!("dco-disk-full-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let fp = format!("journal::allocate=return(enospc@{})", flag.display());
    let mut hub = Hub::start_env(
        dir,
        &[
            "--segment-mb",
            "1",
            "--max-frame",
            "65536",
            "--proxy-ids",
            "2",
            "--answer-reserve",
            "17000",
        ],
        &[("FAILPOINTS", &fp)],
    );
    // Once the journal is open (the hub answers), the disk is full: no new segment can be
    // allocated.
    hub.stats();
    std::fs::write(&flag, b"").unwrap();
    let mut s = session(&hub.addr);
    let body = vec![7u8; 16 * 1024];
    let (accepted, refused) = common::send_until_busy(&mut s, 2, &body, 2000);
    let e = refused.expect("the journal must fill up");
    assert!(e.message.contains("journal"), "{e}");
    assert!(accepted.len() > 20, "{} accepted", accepted.len());
    let st = hub.stats();
    assert_eq!(st["hub"]["journal_full"], true);
    assert!(st["hub"]["journal_owed"].as_u64().unwrap() > 0);

    // The backlog is served, every answer whole: the reserve holds them.
    let (w, seen) = counting_worker(&hub.addr, 2);
    for id in &accepted {
        assert_eq!(
            s.read(*id, Some(Duration::from_secs(20))).unwrap().body,
            body,
            "request {id}"
        );
    }
    // The disk is still full, but the space of the finished work is reused: new work is
    // taken again without a restart.
    common::call_until_taken(&mut s, 2, b"again", Duration::from_secs(20));
    assert_eq!(hub.stats()["hub"]["journal_full"], false);
    drop(s);
    drop(w);
    let ran: HashMap<(u64, u64), u32> = seen.lock().unwrap().clone();
    assert!(
        ran.values().all(|n| *n == 1),
        "a request ran twice: {ran:?}"
    );

    // Restarts, graceful and not: nothing answered runs again.
    hub.terminate_and_restart();
    hub.kill_and_restart();
    let (w2, seen2) = counting_worker(&hub.addr, 2);
    hub.wait_workers(2, 1);
    std::thread::sleep(Duration::from_millis(500));
    drop(w2);
    assert!(
        seen2.lock().unwrap().is_empty(),
        "answered requests ran again after a restart: {:?}",
        seen2.lock().unwrap()
    );
    let _ = std::fs::remove_file(&flag);
}

#[test]
fn a_failed_fdatasync_stops_the_hub_before_it_acknowledges() {
    a_failed_journal_operation_stops_the_hub_before_it_acknowledges("sync");
}

#[test]
fn a_failed_write_of_a_rounds_records_stops_the_hub_before_it_acknowledges() {
    a_failed_journal_operation_stops_the_hub_before_it_acknowledges("write");
}

/// Failpoint `journal::{what}` starts failing with EIO between two requests.
fn a_failed_journal_operation_stops_the_hub_before_it_acknowledges(what: &str) {
    let dir = TempDir::new(&format!("fault-{what}"));
    let flag = std::env::temp_dir().join(format!("dco-{what}-fails-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let fp = format!("journal::{what}=return(eio@{})", flag.display());
    let mut hub = Hub::start_env(dir, &["--proxy-ids", "1"], &[("FAILPOINTS", &fp)]);
    hub.stats();
    let mut cfg = SessionConfig::with_hubs(HubAddr::parse_list(&hub.addr).unwrap());
    // The flush below waits out its whole timeout for a hub that is gone: keep it short.
    cfg.flush_timeout = Duration::from_secs(2);
    let mut s = Session::new(cfg);
    s.write(b"before").unwrap();
    s.send(1, true, false).unwrap();
    s.flush().unwrap();
    // The device starts failing: the request is not acknowledged, the hub stops.
    std::fs::write(&flag, b"").unwrap();
    s.write(b"after").unwrap();
    s.send(1, true, false).unwrap();
    assert!(
        s.flush().is_err(),
        "a request was acknowledged after a failed sync"
    );
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = hub.proc.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < until,
            "the hub kept running after a failed sync"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(70));
    let _ = std::fs::remove_file(&flag);
}

/// Opens the journal in `dir` as recovery would and returns every (session, request) it
/// knows of: accepted, answered or confirmed.
fn known_requests(dir: &std::path::Path) -> std::io::Result<HashSet<(u64, u64)>> {
    let mut known = HashSet::new();
    let mut cfg = JournalConfig::new(dir);
    cfg.segment_size = 1 << 20;
    let (_j, _report) = Journal::open(cfg, Box::new(|| {}), |_, _, p| {
        if p.len() >= 16 {
            let s = u64::from_le_bytes(p[0..8].try_into().unwrap());
            let r = u64::from_le_bytes(p[8..16].try_into().unwrap());
            known.insert((s, r));
        }
    })?;
    Ok(known)
}

/// Puts back, in place of each segment file, what the last completed sync of it made durable
/// (the `journal::shadow` copies): a power loss at this moment.
fn lose_power(journal: &std::path::Path, shadow: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    for e in std::fs::read_dir(journal).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "seg") {
            continue;
        }
        let ino = std::fs::metadata(&p).unwrap().ino();
        let copy = shadow.join(ino.to_string());
        let bytes = std::fs::read(&copy)
            .unwrap_or_else(|e| panic!("no synced copy of {}: {e}", p.display()));
        std::fs::write(&p, bytes).unwrap();
    }
}

#[test]
fn after_a_power_loss_at_any_point_recovery_knows_every_request_a_worker_got() {
    for (round, kill_after) in [1usize, 300, 900, 1700].into_iter().enumerate() {
        let dir = TempDir::new("fault-power");
        let shadow = TempDir::new("fault-power-shadow");
        let journal = dir.path().join("journal");
        let fp = format!("journal::shadow=return({})", shadow.path().display());
        let mut hub = Hub::start_env(
            dir,
            &[
                "--segment-mb",
                "1",
                "--max-frame",
                "65536",
                "--proxy-ids",
                "1",
            ],
            &[("FAILPOINTS", &fp)],
        );
        let (w, seen) = counting_worker(&hub.addr, 1);
        hub.wait_workers(1, 1);
        let delivered = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let caller = {
            let addr = hub.addr.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = session(&addr);
                let mut n = 0u64;
                while n < 2000 && !stop.load(Ordering::SeqCst) {
                    for _ in 0..50 {
                        if s.write(format!("request {n}").as_bytes()).is_err()
                            || s.send(1, true, false).is_err()
                        {
                            break;
                        }
                        n += 1;
                    }
                    if s.submit().is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                let acked = s.last_request_id() - s.unacknowledged() as u64;
                (s.session_id(), acked)
            })
        };
        let until = Instant::now() + Duration::from_secs(60);
        while seen.lock().unwrap().len() < kill_after {
            assert!(
                Instant::now() < until,
                "round {round}: the run did not get going"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // The power goes: the hub dies at once, and the disk keeps only what was synced.
        hub.proc.kill();
        delivered.store(seen.lock().unwrap().len(), Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        drop(w);
        let (sid, acked) = caller.join().unwrap();
        // One caller: its requests are told apart by their ids (a worker sees a tag in place
        // of the session id).
        let got: Vec<(u64, u64)> = seen
            .lock()
            .unwrap()
            .keys()
            .map(|(_, r)| (sid, *r))
            .collect();
        lose_power(&journal, shadow.path());
        let known = known_requests(&journal).unwrap_or_else(|e| {
            panic!("round {round}: recovery refused a journal after a power loss: {e}")
        });
        for k in &got {
            assert!(
                known.contains(k),
                "round {round}: request {k:?} reached a worker, but recovery does not know it \
                 ({} delivered, {} known)",
                got.len(),
                known.len()
            );
        }
        // And nothing acknowledged is lost.
        for r in 1..=acked {
            assert!(
                known.contains(&(sid, r)),
                "round {round}: request {r} was acknowledged, but recovery does not know it"
            );
        }
    }
}
