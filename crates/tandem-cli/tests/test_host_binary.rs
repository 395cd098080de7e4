//! Issue 23, target 3: what an idle host costs. The supervisor's host
//! template (`tandem-host template`, the small binary installed beside
//! `tandem`) forks each host (a `tandem` alone runs them as `tandem
//! host`); a terminal agent's host holds no database connection between
//! its writes and still records the agent's end. A host outlives its
//! template; a template never outlives its supervisor.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{PROMPT, TestEnv, stderr, wait_for};

/// The host's pid of session `name`, from the store.
fn host_pid(env: &TestEnv, name: &str) -> i32 {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    db.query_row("SELECT host_pid FROM sessions WHERE slug = ?1", [name], |r| r.get(0)).expect("host pid")
}

/// The agent's pid of session `name`, from the store.
fn agent_pid(env: &TestEnv, name: &str) -> i32 {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    db.query_row("SELECT agent_pid FROM sessions WHERE slug = ?1", [name], |r| r.get(0)).expect("agent pid")
}

/// Field `index` (from 0) of `/proc/PID/stat` after the parenthesised
/// command name: 0 is the state, 1 the parent's pid.
fn stat_field(pid: i32, index: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().nth(index)?.to_owned())
}

fn parent(pid: i32) -> i32 {
    stat_field(pid, 1).and_then(|p| p.parse().ok()).expect("parent pid")
}

/// Whether `pid` has ended (gone, or a zombie not reaped yet).
fn ended(pid: i32) -> bool {
    stat_field(pid, 0).is_none_or(|state| state == "Z")
}

fn cmdline(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// The signals `pid` ignores (`SigIgn` of `/proc/PID/status`, a mask with
/// bit n-1 for signal n).
fn ignored_signals(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).expect("SigIgn");
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
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
    // Forked by the supervisor's template, whose own parent is the supervisor.
    let template = parent(host);
    assert_eq!(cmdline(template).last().map(String::as_str), Some("template"), "{:?}", cmdline(template));
    assert_eq!(Some(parent(template)), env.supervisor_pid());
    // The template ignores SIGCHLD (the kernel reaps its hosts); neither
    // the host nor its agent may.
    const SIGCHLD: u64 = 1 << (17 - 1);
    assert_ne!(ignored_signals(template) & SIGCHLD, 0, "the template reaps by ignoring SIGCHLD");
    assert_eq!(ignored_signals(host) & SIGCHLD, 0, "the host must wait for its agent");
    assert_eq!(ignored_signals(agent_pid(&env, "idle")) & SIGCHLD, 0, "the agent inherited an ignored SIGCHLD");

    // It still takes prompts, and records the agent's end when stopped.
    env.ok(&["send", "idle", "echo sent-$((6*7))"]);
    wait_for("the prompt's output in logs", || env.ok(&["logs", "idle"]).contains("sent-42").then_some(()));
    env.ok(&["stop", "idle"]);
    env.wait_state("idle", "stopped");
    wait_for("the host to end", || (!Path::new(&format!("/proc/{host}")).exists()).then_some(()));
}

/// A copy of the `tandem` binary alone in folder `name` of the test's
/// temporary folder.
fn copy_of_tandem(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.tmp.path().join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let copy = dir.join("tandem");
    std::fs::copy(TestEnv::bin(), &copy).expect("copy tandem");
    copy
}

/// Runs `copy ARGS` in the test's repository with the test's environment
/// alone, and asserts it succeeded.
fn run_copy(env: &TestEnv, copy: &Path, args: &[&str]) {
    let mut cmd = Command::new(copy);
    cmd.env_clear().current_dir(&env.repo).args(args);
    for (k, v) in env.command_in(&env.repo, &[]).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().expect("run the copy");
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

#[test]
fn a_tandem_alone_runs_its_hosts_itself() {
    let env = TestEnv::new();
    let copy = copy_of_tandem(&env, "alone");
    let run = |args: &[&str]| run_copy(&env, &copy, args);
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

#[test]
fn a_host_outlives_its_template_and_a_template_its_supervisor() {
    let env = TestEnv::new();
    env.ok(&["new", "first", "--bg", "--agent", "shell", "--base", "head"]);
    env.wait_state("first", "running");
    let host = host_pid(&env, "first");
    let template = parent(host);
    assert_eq!(cmdline(template).last().map(String::as_str), Some("template"), "{:?}", cmdline(template));

    // The template is killed: its host and agent keep running and still
    // take prompts; the next session gets a new template.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(template), nix::sys::signal::Signal::SIGKILL).expect("kill");
    wait_for("the template to end", || ended(template).then_some(()));
    assert!(!ended(host), "the host ended with its template");
    env.ok(&["send", "first", "echo still-$((6*7))"]);
    wait_for("the prompt's output in logs", || env.ok(&["logs", "first"]).contains("still-42").then_some(()));
    env.ok(&["new", "second", "--bg", "--agent", "shell", "--base", "head"]);
    env.wait_state("second", "running");
    let second = host_pid(&env, "second");
    let new_template = parent(second);
    assert_ne!(new_template, template);
    assert_eq!(cmdline(new_template).last().map(String::as_str), Some("template"), "{:?}", cmdline(new_template));
    wait_for("its prompt in logs", || env.ok(&["logs", "second"]).contains(PROMPT).then_some(()));

    // The supervisor stops: its template ends with it, the hosts do not.
    env.ok(&["daemon", "stop"]);
    wait_for("the template to end with its supervisor", || ended(new_template).then_some(()));
    assert!(!ended(host) && !ended(second), "a host ended with the supervisor");
    env.ok(&["stop", "first"]);
    env.ok(&["stop", "second"]);
    env.wait_state("first", "stopped");
    env.wait_state("second", "stopped");
    env.ok(&["daemon", "stop"]);
}

#[test]
fn a_host_binary_that_is_no_template_still_runs_hosts() {
    // A `tandem-host` of a release before templates: it takes
    // `template` for nothing and waits for a spec, so it never says
    // hello. Here a script that waits, and is an ordinary host otherwise.
    let env = TestEnv::new();
    let copy = copy_of_tandem(&env, "older");
    let real = TestEnv::bin().with_file_name("tandem-host");
    let script = copy.with_file_name("tandem-host");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nif [ \"$1\" = template ]; then exec sleep 600; fi\nexec '{}' \"$@\"\n", real.display()),
    )
    .expect("script");
    Command::new("chmod").arg("755").arg(&script).status().expect("chmod");
    let run = |args: &[&str]| run_copy(&env, &copy, args);
    for name in ["one", "two"] {
        run(&["new", name, "--bg", "--agent", "shell", "--base", "head"]);
        env.wait_state(name, "running");
        let host = host_pid(&env, name);
        assert_eq!(Some(parent(host)), env.supervisor_pid(), "{name}: not started by the supervisor itself");
        wait_for("its prompt in logs", || env.ok(&["logs", name]).contains(PROMPT).then_some(()));
    }
    // The waiting "template" was ended, not left behind.
    let supervisor = env.supervisor_pid().expect("supervisor");
    let children =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children")).unwrap_or_default();
    for child in children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
        assert!(!cmdline(child).iter().any(|a| a == "600"), "a template that never said hello still runs: {child}");
    }
    run(&["stop", "one"]);
    run(&["stop", "two"]);
    env.wait_state("one", "stopped");
    env.wait_state("two", "stopped");
    run(&["daemon", "stop"]);
}
