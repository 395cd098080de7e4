//! Issue 23, target 3: what an idle host costs. The supervisor starts
//! hosts as the small `tandem-host` binary installed beside `tandem`
//! (a `tandem` alone runs them as `tandem host`), and a terminal agent's
//! host holds no database connection between its writes; it still
//! records the agent's end.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{PROMPT, TestEnv, stderr, wait_for};

/// The host's pid of session `name`, from the store.
fn host_pid(env: &TestEnv, name: &str) -> i32 {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    db.query_row("SELECT host_pid FROM sessions WHERE slug = ?1", [name], |r| r.get(0)).expect("host pid")
}

/// The files `pid` has open that are the store's (`tandem.db`, its WAL
/// and shared memory).
fn open_store_files(pid: i32, home: &Path) -> Vec<PathBuf> {
    let state = home.join("state");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|p| p.starts_with(&state) && p.to_string_lossy().contains("tandem.db"))
        .collect()
}

#[test]
fn an_idle_terminal_agents_host_is_the_small_binary_and_holds_no_database() {
    let env = TestEnv::new();
    env.ok(&["new", "idle", "--bg", "--agent", "shell", "--base", "head"]);
    env.wait_state("idle", "running");
    wait_for("its prompt in logs", || env.ok(&["logs", "idle"]).contains(PROMPT).then_some(()));
    let host = host_pid(&env, "idle");
    let exe = std::fs::read_link(format!("/proc/{host}/exe")).expect("host exe");
    assert_eq!(exe.file_name().and_then(|n| n.to_str()), Some("tandem-host"), "{}", exe.display());
    assert_eq!(open_store_files(host, &env.tandem_home), Vec::<PathBuf>::new(), "an idle host holds the store open");

    // It still takes prompts, and records the agent's end when stopped.
    env.ok(&["send", "idle", "echo sent-$((6*7))"]);
    wait_for("the prompt's output in logs", || env.ok(&["logs", "idle"]).contains("sent-42").then_some(()));
    env.ok(&["stop", "idle"]);
    env.wait_state("idle", "stopped");
    wait_for("the host to end", || (!Path::new(&format!("/proc/{host}")).exists()).then_some(()));
}

#[test]
fn a_tandem_alone_runs_its_hosts_itself() {
    let env = TestEnv::new();
    let alone = env.tmp.path().join("alone");
    std::fs::create_dir_all(&alone).expect("dir");
    let copy = alone.join("tandem");
    std::fs::copy(TestEnv::bin(), &copy).expect("copy tandem");
    let base = env.command_in(&env.repo, &[]);
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&copy);
        cmd.env_clear().current_dir(&env.repo).args(args);
        for (k, v) in base.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().expect("run the copy");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    run(&["new", "solo", "--bg", "--agent", "shell", "--base", "head"]);
    env.wait_state("solo", "running");
    let host = host_pid(&env, "solo");
    assert_eq!(std::fs::read_link(format!("/proc/{host}/exe")).expect("host exe"), copy);
    let cmdline = std::fs::read(format!("/proc/{host}/cmdline")).expect("cmdline");
    assert!(cmdline.split(|b| *b == 0).any(|a| a == b"host"), "{}", String::from_utf8_lossy(&cmdline));
    run(&["stop", "solo"]);
    env.wait_state("solo", "stopped");
    run(&["daemon", "stop"]);
}
