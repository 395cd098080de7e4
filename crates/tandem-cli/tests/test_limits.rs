//! Limits, tried as attacks (issue 16): a sandboxed session cannot take
//! the machine's processes or memory; connections that say nothing, or
//! announce huge frames, cannot exhaust the supervisor's or a host's
//! threads and memory; an agent cannot make its host spawn a thread per
//! forwarded connection.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, wait_for, wait_within};

/// A field of `/proc/PID/status` (`Threads`, `VmRSS` in kB), as a number.
fn status_field(pid: i32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is alive");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn threads(pid: i32) -> u64 {
    status_field(pid, "Threads")
}

/// The session's host and agent pids, from the store.
fn pids(env: &TestEnv, slug: &str) -> (i32, i32) {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    db.query_row("SELECT host_pid, agent_pid FROM sessions WHERE slug = ?1", [slug], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("pids")
}

/// `pid` and every process below it, from `/proc/*/stat`.
fn process_tree(pid: i32) -> Vec<i32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some(ppid) = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)) else {
            continue;
        };
        if let Ok(ppid) = ppid.parse::<i32>() {
            parents.push((child, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// Waits for `file` to hold `done`; returns its text.
fn wait_file(file: &Path) -> String {
    wait_within(&format!("{} from the agent", file.display()), Duration::from_secs(30), || {
        std::fs::read_to_string(file).ok().filter(|t| t.contains("done"))
    })
}

fn require_bwrap() {
    assert!(
        tandem_core::sandbox::find("bwrap").is_some() || Path::new("/usr/bin/bwrap").exists(),
        "bwrap is not installed; scripts/test.sh installs it (apt-get install bubblewrap)"
    );
}

/// `tandem-<id>` folders anywhere in the cgroup hierarchies (4 levels
/// deep).
fn cgroups_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![PathBuf::from("/sys/fs/cgroup")];
    for _ in 0..5 {
        let mut next = Vec::new();
        for dir in level {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if entry.file_name().to_string_lossy() == name {
                        found.push(entry.path());
                    }
                    next.push(entry.path());
                }
            }
        }
        level = next;
    }
    found
}

#[test]
fn a_fork_bomb_in_a_sandboxed_session_stops_at_the_process_cap() {
    require_bwrap();
    let env = TestEnv::new();
    env.user_config("[sandbox]\nmax_processes = 40\n");
    let doctor = env.ok(&["doctor"]);
    assert!(doctor.contains("sandbox limit: processes at most 40, by "), "{doctor}");
    env.ok(&["new", "bomb", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    let id = env.session("bomb")["id"].as_str().expect("id").to_owned();
    let (_, agent) = pids(&env, "bomb");
    wait_for("the shell's prompt", || env.ok(&["logs", "bomb"]).contains(crate::common::PROMPT).then_some(()));
    env.ok(&["send", "bomb", "for i in $(seq 1000); do sleep 60 & done"]);
    // The loop forks as fast as it can, until bash says it cannot fork:
    // the cap is reached (without one, it never says so).
    wait_for("bash to say it cannot fork", || env.ok(&["logs", "bomb"]).contains("fork: ").then_some(()));
    let tree = process_tree(agent);
    assert!(tree.len() <= 40, "{} processes in the sandbox, more than its cap of 40", tree.len());
    // The machine's other processes are fine.
    assert!(std::process::Command::new("true").status().expect("true runs").success());
    env.ok(&["list"]);

    env.ok(&["stop", "bomb"]);
    env.wait_state("bomb", "stopped");
    wait_for("every process of the sandbox to be gone", || {
        (!tandem_core::process::group_alive(agent) && process_tree(agent).len() <= 1).then_some(())
    });
    let name = format!("tandem-{id}");
    wait_for("the session's cgroup to be removed", || cgroups_named(&name).is_empty().then_some(()));
}

/// Where the user's systemd answers, it holds the caps: the sandbox runs
/// in `systemd-run --user --scope -p TasksMax=… -p MemoryMax=…`. This
/// machine kind has no user systemd, so a stand-in `systemd-run` logs its
/// arguments and runs the command after `--`.
#[test]
fn the_users_systemd_holds_the_caps_where_it_answers() {
    require_bwrap();
    let mut env = TestEnv::new();
    let bin = env.tmp.path().join("fake-bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let log = env.tmp.path().join("systemd-run.log");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> \"{}\"\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n",
        log.display()
    );
    std::fs::write(bin.join("systemd-run"), script).expect("script");
    std::fs::set_permissions(bin.join("systemd-run"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    env.env.push(("PATH".to_owned(), format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display())));
    env.user_config("[sandbox]\nmax_processes = 100\nmax_memory = \"1G\"\n");
    let doctor = env.ok(&["doctor"]);
    assert!(doctor.contains("sandbox limit: processes at most 100, by systemd-run --user --scope"), "{doctor}");
    env.ok(&["new", "scoped", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    let id = env.session("scoped")["id"].as_str().expect("id").to_owned();
    let calls = wait_for("the sandbox's systemd-run", || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains(&format!("--unit=tandem-{id}-")))
    });
    let line = calls.lines().find(|l| l.contains("--unit=")).expect("the sandbox's call");
    assert!(
        line.starts_with("--user --scope --quiet --collect --unit=")
            && line.contains(" -p TasksMax=100 -p MemoryMax=1073741824 -- ")
            && line.contains("bwrap"),
        "{line}"
    );
    wait_for("the shell's prompt", || env.ok(&["logs", "scoped"]).contains(crate::common::PROMPT).then_some(()));
    assert!(cgroups_named(&format!("tandem-{id}")).is_empty(), "no cgroup of tandem's own beside the scope");
}

#[test]
fn a_sandboxed_session_is_held_to_its_memory_cap() {
    require_bwrap();
    let env = TestEnv::new();
    env.user_config("[sandbox]\nmax_memory = \"64M\"\n");
    let doctor = env.ok(&["doctor"]);
    assert!(doctor.contains("sandbox limit: memory at most 64 MiB, by "), "{doctor}");
    env.ok(&["new", "greedy", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    let worktree = env.path_of("greedy");
    wait_for("the shell's prompt", || env.ok(&["logs", "greedy"]).contains(crate::common::PROMPT).then_some(()));
    env.ok(&[
        "send",
        "greedy",
        "python3 -c 'b = bytearray(300 << 20); print(len(b))'; echo big=$? > mem.txt; python3 -c 'b = bytearray(8 << 20)'; echo small=$? >> mem.txt; echo done >> mem.txt",
    ]);
    let text = wait_file(&worktree.join("mem.txt"));
    assert!(!text.contains("big=0"), "300 MiB went past a 64 MiB cap: {text}");
    assert!(text.contains("small=0"), "8 MiB fits: {text}");
    let name = format!("tandem-{}", env.session("greedy")["id"].as_str().expect("id"));
    env.ok(&["stop", "greedy"]);
    env.wait_state("greedy", "stopped");
    wait_for("the session's cgroup to be removed", || cgroups_named(&name).is_empty().then_some(()));
}

#[test]
fn a_bad_limit_is_refused_with_nothing_made() {
    let env = TestEnv::new();
    let branches = env.git(&["branch", "--list"]);
    env.user_config("[sandbox]\nmax_memory = \"lots\"\n");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    assert!(err.contains("sandbox.max_memory: \"lots\" is not a size") && err.contains("config.toml"), "{err}");
    env.user_config("[sandbox]\ntmp_size = \"1Q\"\n");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    assert!(err.contains("sandbox.tmp_size: \"1Q\" is not a size"), "{err}");
    assert_eq!(env.sessions().len(), 0, "no session");
    assert_eq!(env.git(&["branch", "--list"]), branches, "no branch");
}

/// A request over the cap a server takes is refused by the client, with
/// the reason, rather than cut off by the server.
#[test]
fn a_request_too_large_for_the_supervisor_is_refused_clearly_with_nothing_made() {
    let mut env = TestEnv::new();
    let branches = env.git(&["branch", "--list"]);
    for i in 0..10 {
        env.env.push((format!("BIG_{i}"), "x".repeat(120_000)));
    }
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--base", "head"]);
    assert!(err.contains("more than the 1048575 the supervisor takes; shorten the prompt or the environment"), "{err}");
    env.env.clear();
    assert_eq!(env.sessions().len(), 0, "no session");
    assert_eq!(env.git(&["branch", "--list"]), branches, "no branch");
}

/// A connection to `socket` that says nothing is closed within the
/// hello timeout (5 s).
fn assert_quiet_connection_closed(socket: &Path) {
    let mut quiet = UnixStream::connect(socket).expect("connect");
    quiet.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let started = Instant::now();
    let read = quiet.read(&mut [0u8; 64]);
    assert!(
        matches!(read, Ok(0)) || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the quiet connection to {} was not closed: {read:?}",
        socket.display()
    );
    assert!(started.elapsed() < Duration::from_secs(10), "closed only after {:?}", started.elapsed());
}

/// The most threads server `pid` had until it took every one of `idle`:
/// a server that caps its connections closes one (the oldest that has
/// not said hello, or the new one) for each it takes past the cap, so
/// all are taken once all but the cap are closed. (One that does not cap
/// them closes them only at the hello timeout, with a thread each until
/// then.)
fn peak_threads_until_taken(pid: i32, idle: &[UnixStream]) -> u64 {
    let cap = tandem_core::socket::MAX_CONNECTIONS;
    let mut peak = threads(pid);
    let closed = || {
        idle.iter()
            .filter(|s| {
                s.set_nonblocking(true).expect("nonblocking");
                let read = (&mut &**s).read(&mut [0u8; 1]);
                matches!(read, Ok(0)) || read.is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    wait_for("the server to take every connection", || {
        peak = peak.max(threads(pid));
        (closed() >= idle.len().saturating_sub(cap)).then_some(())
    });
    peak.max(threads(pid))
}

#[test]
fn idle_connections_cannot_exhaust_the_supervisor() {
    let env = TestEnv::new();
    env.ok(&["list"]);
    let pid = env.supervisor_pid().expect("the supervisor runs");
    let socket = env.tandem_home.join("run/supervisor.sock");

    assert_quiet_connection_closed(&socket);
    let before = threads(pid);
    let idle: Vec<UnixStream> = (0..300).filter_map(|_| UnixStream::connect(&socket).ok()).collect();
    let during = peak_threads_until_taken(pid, &idle);
    let cap = tandem_core::socket::MAX_CONNECTIONS as u64;
    assert!(during <= before + cap + 4, "{} idle connections: {before} threads became {during}", idle.len());
    // Real clients still get in while the idle ones are held.
    let started = Instant::now();
    env.ok(&["list"]);
    assert!(started.elapsed() < Duration::from_secs(5), "`tandem list` took {:?}", started.elapsed());
    drop(idle);
}

/// Opens `count` connections to `socket`, each announcing a frame of
/// nearly [`tandem_core::protocol::MAX_FRAME_LEN`] and sending all but
/// its last byte; returns them, held open. Each has the smallest send
/// buffer, so once its write returns the server has read all of it but
/// a few KiB (or closed it): what it keeps of them is in its memory now.
fn huge_frames(socket: &Path, count: usize) -> Vec<UnixStream> {
    let len = tandem_core::protocol::MAX_FRAME_LEN - 1;
    let body = vec![b'x'; len - 1];
    (0..count)
        .filter_map(|_| {
            let mut stream = UnixStream::connect(socket).ok()?;
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &4096).ok()?;
            stream.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
            let _ = stream.write_all(&(len as u32).to_be_bytes());
            let _ = stream.write_all(&[1]);
            // Refused: the write fails once the server has closed.
            let _ = stream.write_all(&body[..body.len() - 1]);
            Some(stream)
        })
        .collect()
}

#[test]
fn idle_connections_and_huge_frames_cannot_exhaust_a_host() {
    let env = TestEnv::new();
    env.ok(&["new", "target", "--bg", "--agent", "shell", "--base", "head"]);
    let id = env.session("target")["id"].as_str().expect("id").to_owned();
    let (host, _) = pids(&env, "target");
    let socket = env.tandem_home.join(format!("run/h/{id}.sock"));
    wait_for("the shell's prompt", || env.ok(&["logs", "target"]).contains(crate::common::PROMPT).then_some(()));

    assert_quiet_connection_closed(&socket);
    let rss = status_field(host, "VmRSS");
    let held = huge_frames(&socket, 60);
    let grown = status_field(host, "VmRSS").saturating_sub(rss);
    assert!(grown < 40 * 1024, "60 huge frames grew the host by {} MiB", grown / 1024);
    drop(held);

    let before = threads(host);
    let idle: Vec<UnixStream> = (0..300).filter_map(|_| UnixStream::connect(&socket).ok()).collect();
    let during = peak_threads_until_taken(host, &idle);
    let cap = tandem_core::socket::MAX_CONNECTIONS as u64;
    assert!(during <= before + cap + 4, "{} idle connections: {before} threads became {during}", idle.len());
    // The host still takes a prompt.
    env.ok(&["send", "target", "echo still-$((20+1))"]);
    wait_for("the prompt to run", || env.ok(&["logs", "target"]).contains("still-21").then_some(()));
    drop(idle);
}

#[test]
fn huge_frames_cannot_grow_the_supervisor() {
    let env = TestEnv::new();
    env.ok(&["list"]);
    let pid = env.supervisor_pid().expect("the supervisor runs");
    let rss = status_field(pid, "VmRSS");
    let held = huge_frames(&env.tandem_home.join("run/supervisor.sock"), 60);
    let grown = status_field(pid, "VmRSS").saturating_sub(rss);
    assert!(grown < 40 * 1024, "60 huge frames grew the supervisor by {} MiB", grown / 1024);
    drop(held);
    env.ok(&["list"]);
}

#[test]
fn forwarded_connections_are_capped_in_the_host() {
    require_bwrap();
    let env = TestEnv::new();
    // An endpoint that holds every connection it gets.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn({
        let reached = std::sync::Arc::clone(&reached);
        move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                held.push(conn);
                reached.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    env.user_config(&format!("[sandbox]\nnetwork = \"off\"\nallow_net = [\"127.0.0.1:{port}\"]\n"));
    env.ok(&["new", "many", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    let worktree = env.path_of("many");
    let (host, _) = pids(&env, "many");
    wait_for("the shell's prompt", || env.ok(&["logs", "many"]).contains(crate::common::PROMPT).then_some(()));
    let before = threads(host);
    // Opens 300 connections, then says every 100 ms for a minute how many
    // it holds and how many were closed from the far end (refused).
    let script = format!(
        "import os, socket, time
held = []
for _ in range(300):
    try:
        held.append(socket.create_connection(('127.0.0.1', {port}), timeout=5))
    except OSError:
        pass
for s in held:
    s.setblocking(False)
def closed(s):
    try:
        return s.recv(1, socket.MSG_PEEK) == b''
    except BlockingIOError:
        return False
    except OSError:
        return True
for _ in range(600):
    open('conns.tmp', 'w').write('%d %d done' % (len(held), sum(closed(s) for s in held)))
    os.rename('conns.tmp', 'conns.txt')
    time.sleep(0.1)
"
    );
    std::fs::write(worktree.join("conns.py"), script).expect("script");
    env.ok(&["send", "many", "python3 conns.py"]);
    // The host has dealt with every connection once each either reached
    // the endpoint or was closed.
    let text = wait_within("every connection forwarded or refused", Duration::from_secs(60), || {
        let text = std::fs::read_to_string(worktree.join("conns.txt")).ok()?;
        let mut counts = text.split_whitespace().map(|n| n.parse::<usize>().ok());
        let (held, closed) = (counts.next()??, counts.next()??);
        (closed + reached.load(std::sync::atomic::Ordering::SeqCst) >= held).then_some(text)
    });
    let during = threads(host);
    let cap = tandem_core::socket::MAX_CONNECTIONS as u64;
    assert!(during <= before + 2 * cap + 4, "{text} connections: the host's {before} threads became {during}");
}

/// The private `/tmp` is a tmpfs held in memory: capped at
/// `sandbox.tmp_size` (bwrap's `--size`, which the fence passes from
/// `Fence::limits`).
#[test]
fn a_sandboxed_session_cannot_fill_its_private_tmp_past_its_cap() {
    require_bwrap();
    let env = TestEnv::new();
    env.user_config("[sandbox]\ntmp_size = \"8M\"\n");
    env.ok(&["new", "filler", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    let worktree = env.path_of("filler");
    wait_for("the shell's prompt", || env.ok(&["logs", "filler"]).contains(crate::common::PROMPT).then_some(()));
    env.ok(&[
        "send",
        "filler",
        "head -c 32M /dev/zero > /tmp/fill; echo big=$? > tmp.txt; rm -f /tmp/fill; head -c 1M /dev/zero > /tmp/fill; echo small=$? >> tmp.txt; echo done >> tmp.txt",
    ]);
    let text = wait_file(&worktree.join("tmp.txt"));
    assert!(!text.contains("big=0"), "32 MiB went into an 8 MiB /tmp: {text}");
    assert!(text.contains("small=0"), "1 MiB fits: {text}");
}
