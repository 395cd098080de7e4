//! An agent that prints as fast as it can: the host's memory stays
//! bounded (it keeps a screen, not the output), a terminal that stops
//! reading is dropped instead of slowing the agent, and attaching still
//! works once the flood is over.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_core::host::client;
use tandem_core::paths::Paths;
use tandem_core::protocol::{self, ClientMode};

use crate::common::{TestEnv, wait_within};

/// Bytes the agent prints: 1 GiB.
const FLOOD: u64 = 1 << 30;

fn pss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Pss:")?.split_whitespace().next()?.parse().ok()))
        .unwrap_or(0)
}

fn log_ends_with(dir: &Path, marker: &str) -> bool {
    std::fs::read(dir.join("pty.log")).is_ok_and(|bytes| {
        let tail = &bytes[bytes.len().saturating_sub(4096)..];
        String::from_utf8_lossy(tail).contains(marker)
    })
}

/// A stalled terminal that the host dropped: read now, it gets what was
/// queued for it when it fell behind (at most `host::CLIENT_QUEUE`
/// frames of at most 64 KiB, and a socket buffer), then the end of the
/// stream. One the host kept would get the whole flood, its end marker,
/// and no end (the agent still runs).
fn assert_dropped(mut stalled: std::os::unix::net::UnixStream) {
    stalled.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let (mut got, mut ended) = (0usize, false);
    loop {
        match protocol::read_frame(&mut stalled) {
            Ok(Some((_, payload))) => {
                got += payload.len();
                ended |= payload.windows(b"FLOOD-END".len()).any(|w| w == b"FLOOD-END");
            }
            Ok(None) => break,
            Err(e) => panic!("the stalled terminal was not dropped: after {got} bytes, {e}"),
        }
    }
    let bound = tandem_core::host::CLIENT_QUEUE * 64 * 1024 + (16 << 20);
    assert!(got < bound, "the stalled terminal got {got} bytes, more than a dropped one can");
    assert!(!ended, "the stalled terminal got the end of the flood");
}

#[test]
fn a_gigabyte_of_output_keeps_the_host_small_and_the_agent_unblocked() {
    let env = TestEnv::new();
    let agent = format!(
        "sh -c 'yes \"a flood line of agent output 0123456789abcdefghijklmnopqrstuvwxyz\" | head -c {FLOOD}; \
         echo; echo FLOOD-END; exec sleep 1000'"
    );
    env.ok(&["new", "flood", "--bg", "--agent", &agent]);
    let id = env.session("flood")["id"].as_str().expect("id").to_owned();
    let paths = Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| env.tandem_home.clone())).expect("paths");
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let host: i32 = db.query_row("SELECT host_pid FROM sessions WHERE id = ?1", [&id], |r| r.get(0)).expect("host");

    // A terminal that attaches and then never reads.
    let stalled = client::connect(&paths, &id, ClientMode::Attach { rows: 24, cols: 80 }).expect("attach");

    let started = Instant::now();
    let mut peak = 0;
    let dir = paths.session_dir(&id);
    while !log_ends_with(&dir, "FLOOD-END") {
        peak = peak.max(pss_kib(host));
        assert!(started.elapsed() < Duration::from_secs(600), "the flood did not end in 10 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_dropped(stalled);
    eprintln!("1 GiB through the host in {:?}, its PSS peaked at {peak} KiB", started.elapsed());
    assert!(peak > 0, "the host's memory was read");
    assert!(peak < 64 * 1024, "the host grew to {peak} KiB for 1 GiB of output");

    // Attaching works afterwards: the screen shows the end of the flood.
    let mut stream = client::connect(&paths, &id, ClientMode::Attach { rows: 24, cols: 80 }).expect("attach again");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let redraw = wait_within("the redraw", Duration::from_secs(10), || {
        let (kind, payload) = protocol::read_frame(&mut stream).ok()??;
        (kind == protocol::KIND_DATA).then(|| String::from_utf8_lossy(&payload).into_owned())
    });
    assert!(redraw.contains("FLOOD-END"), "{redraw}");
    env.ok(&["stop", "flood"]);
}
