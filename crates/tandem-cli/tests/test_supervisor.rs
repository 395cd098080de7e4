//! The supervisor: started on demand, private socket, and agents that
//! survive its death (even `kill -9`).

use std::os::unix::fs::PermissionsExt;

use crate::common::{TestEnv, wait_for};

#[test]
fn agents_survive_a_kill_9_of_the_supervisor_and_attach_still_works() {
    let env = TestEnv::new();
    env.ok(&["new", "survivor", "--bg", "--agent", "shell"]);
    env.wait_state("survivor", "running");
    let pid = env.supervisor_pid().expect("a supervisor started on demand");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill -9");
    wait_for("the supervisor to die", || (!tandem_core::process::is_alive(pid)).then_some(()));

    // No supervisor: the host still serves attach.
    let mut term = env.pty(&["attach", "survivor"], 24, 80);
    term.wait_for(crate::common::PROMPT);
    term.type_line("echo still-$((40+2))");
    term.wait_for("still-42");
    term.send(b"\x1c");
    assert_eq!(term.wait_exit(), 0);

    // The next command that needs a supervisor starts a new one, which
    // finds the session still running.
    let status = env.ok(&["daemon", "start"]);
    let new_pid = env.supervisor_pid().expect("new supervisor");
    assert_ne!(new_pid, pid, "{status}");
    let s = env.wait_state("survivor", "running");
    assert_eq!(s["name"], "survivor");
    env.ok(&["stop", "survivor"]);
    env.wait_state("survivor", "stopped");
}

#[test]
fn daemon_start_status_stop_and_a_private_socket_dir() {
    let env = TestEnv::new();
    assert_eq!(env.tandem(&["daemon", "status"]).status.code(), Some(1));
    let out = env.ok(&["daemon", "start"]);
    assert!(out.contains("supervisor running"), "{out}");
    let run = env.tandem_home.join("run");
    assert_eq!(std::fs::metadata(&run).expect("run dir").permissions().mode() & 0o777, 0o700);
    let status = env.ok(&["daemon", "status"]);
    assert!(status.contains("0 live session host(s)"), "{status}");

    env.ok(&["new", "keeps-running", "--bg", "--agent", "shell"]);
    env.ok(&["daemon", "stop"]);
    assert_eq!(env.tandem(&["daemon", "status"]).status.code(), Some(1));
    // Stopping the supervisor does not stop agents.
    env.wait_state("keeps-running", "running");
    let mut term = env.pty(&["attach", "keeps-running"], 24, 80);
    term.wait_for(crate::common::PROMPT);
    term.send(b"\x1c");
    assert_eq!(term.wait_exit(), 0);
}

#[test]
fn a_second_supervisor_refuses_to_run_beside_the_first() {
    let env = TestEnv::new();
    env.ok(&["daemon", "start"]);
    let out = env.tandem(&["daemon", "run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::common::stderr(&out).contains("already running"), "{}", crate::common::stderr(&out));
}

#[test]
fn a_session_whose_host_dies_shows_as_lost_and_can_still_be_removed() {
    let env = TestEnv::new();
    env.ok(&["new", "orphan", "--bg", "--agent", "shell"]);
    env.wait_state("orphan", "running");
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let host: i32 =
        db.query_row("SELECT host_pid FROM sessions WHERE slug = 'orphan'", [], |r| r.get(0)).expect("host pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(host), nix::sys::signal::Signal::SIGKILL).expect("kill -9 host");
    let s = env.wait_state("orphan", "lost");
    assert_eq!(s["name"], "orphan");
    let err = env.fails(&["attach", "orphan"]);
    assert!(err.contains("not running (lost)"), "{err}");
    let err = env.fails(&["send", "orphan", "echo hi"]);
    assert!(err.contains("has no running agent; start it again with `tandem respawn orphan`"), "{err}");

    // One respawn and it works again, in the same worktree.
    let out = env.ok(&["respawn", "orphan"]);
    assert_eq!(out.trim(), "respawned session orphan");
    env.wait_state("orphan", "running");
    env.ok(&["send", "orphan", "echo respawned-$((6*7))"]);
    crate::common::wait_for("the sent command's output", || {
        env.ok(&["logs", "orphan"]).contains("respawned-42").then_some(())
    });
    assert!(env.ok(&["history", "orphan"]).contains("prompt       echo respawned-$((6*7))"));
    env.ok(&["rm", "orphan"]);
    assert!(env.sessions().is_empty());
    // History outlives rm, unless --purge.
    assert!(env.ok(&["history", "orphan"]).contains("echo respawned-$((6*7))"));
    env.ok(&["new", "purged", "--bg", "--agent", "shell"]);
    env.wait_state("purged", "running");
    env.ok(&["send", "purged", "echo purge-me-please"]);
    assert!(env.ok(&["search", "purge-me-please"]).contains("purged  prompt"));
    env.ok(&["rm", "--purge", "purged"]);
    assert_eq!(env.ok(&["history", "purged"]), "");
    assert_eq!(env.ok(&["search", "purge-me-please"]), "");
    assert!(env.ok(&["search", "respawned"]).contains("orphan  prompt"), "other history stays");
}

/// The socket directory is 0700, but even a socket someone can reach must
/// refuse another user: the supervisor checks the peer's uid
/// (`SO_PEERCRED`) on every connection. Needs root, to act as `nobody`.
#[test]
fn the_supervisor_refuses_a_peer_of_another_uid() {
    if !nix::unistd::getuid().is_root() {
        // A counted skip; `.ci/run` fails on it (CI runs as root).
        crate::common::skipped("needs root to connect as another user");
        return;
    }
    let env = TestEnv::new();
    env.ok(&["daemon", "start"]);
    // Open the way to the socket for everyone.
    for dir in [env.tmp.path(), &env.tandem_home, &env.tandem_home.join("run")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).expect("chmod dir");
    }
    std::fs::set_permissions(env.tandem_home.join("run/supervisor.sock"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod socket");
    // A copy of tandem that `nobody` may run.
    let bin = env.tmp.path().join("tandem-nobody");
    std::fs::copy(TestEnv::bin(), &bin).expect("copy binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod binary");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["daemon", "status"])
        .env_clear()
        .env("TANDEM_HOME", &env.tandem_home)
        .env("HOME", "/nonexistent")
        .current_dir("/")
        .output()
        .expect("run as nobody");
    assert_eq!(out.status.code(), Some(1), "nobody got an answer: {}", crate::common::stdout(&out));
    let log = wait_for("the refusal in the supervisor's log", || {
        let log = std::fs::read_to_string(env.tandem_home.join("state/supervisor.log")).unwrap_or_default();
        log.contains("peer uid 65534 is not ours").then_some(log)
    });
    assert!(log.contains("connection failed"), "{log}");
    // Its owner still gets answers.
    assert!(env.ok(&["daemon", "status"]).contains("supervisor running"));
}
