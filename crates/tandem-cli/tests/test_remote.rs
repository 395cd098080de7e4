//! Remote hosts over SSH (issue 21): a second Unix user behind a private
//! sshd on 127.0.0.1 (`common::sshd`) stands in for a second machine. The
//! local `tandem` reaches it through the real `ssh` client (with a control
//! master), runs `tandem proxy` there, and the remote user's own
//! supervisor runs the sessions.
//!
//! Skipped, saying why, only when not root or without `/usr/sbin/sshd`
//! (and never under `TANDEM_TEST_REQUIRE_AGENTS`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::anthropic::{MessagesStub, Step, claude_env, write_claude_config};
use crate::common::sshd::Sshd;
use crate::common::{PROMPT, TestEnv, agent_binary, skipped, stderr, stdout, wait_for, wait_within};

/// A test environment with a remote host ready to serve, its tandem
/// not yet installed.
fn remote_env() -> Option<(TestEnv, Sshd)> {
    let mut env = TestEnv::new();
    let sshd = Sshd::start(&mut env)?;
    Some((env, sshd))
}

/// A test environment with the remote `tdr` added and tandem installed
/// on it (`tandem remote add` + `tandem remote install`).
fn ready() -> Option<(TestEnv, Sshd)> {
    let (env, sshd) = remote_env()?;
    sshd.install_tandem(&env);
    Some((env, sshd))
}

/// `tandem remote list --json`, parsed.
fn remotes(env: &TestEnv) -> Vec<Value> {
    serde_json::from_str::<Value>(&env.ok(&["remote", "list", "--json"]))
        .expect("remote list --json is JSON")
        .as_array()
        .expect("an array")
        .clone()
}

/// The rows of `tandem list --json` on host `host` (`None`: local).
fn rows_on(env: &TestEnv, host: Option<&str>) -> Vec<Value> {
    let want = host.map_or(Value::Null, |h| json!(h));
    env.sessions().into_iter().filter(|s| s["host"] == want).collect()
}

/// `tandem new --on tdr NAME --agent shell --bg --json`, parsed.
fn new_remote_shell(env: &TestEnv, name: &str) -> Value {
    let out = env.ok(&["new", "--on", "tdr", name, "--agent", "shell", "--bg", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("new --on --json printed no JSON ({e}): {out}"))
}

/// The remote user's own view: `tandem list --all --json` run there.
fn remote_sessions(sshd: &Sshd) -> Vec<Value> {
    serde_json::from_str::<Value>(&sshd.remote_tandem(&["list", "--all", "--json"]))
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

fn remote_session(sshd: &Sshd, name: &str) -> Value {
    remote_sessions(sshd)
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no session {name} on the remote"))
}

/// `git ARGS` as the remote user in `dir`; asserts success; stdout.
fn remote_git(sshd: &Sshd, dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["git", "-C", dir.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = sshd.run_as_remote(&all);
    assert!(out.status.success(), "remote git {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Commits `file` with `text` in the remote worktree `dir`, as the remote
/// user; returns the commit.
fn remote_commit(sshd: &Sshd, dir: &Path, file: &str, text: &str, message: &str) -> String {
    let out =
        sshd.run_as_remote(&["sh", "-c", "printf %s \"$1\" > \"$2\"", "-", text, &dir.join(file).to_string_lossy()]);
    assert!(out.status.success(), "write {file}: {}", stderr(&out));
    remote_git(sshd, dir, &["add", file]);
    remote_git(sshd, dir, &["commit", "-q", "-m", message]);
    remote_git(sshd, dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// The remote session's agent pid, from the remote user's database.
fn remote_agent_pid(sshd: &Sshd, name: &str) -> i32 {
    let db = sshd.home().join(".local/state/tandem/tandem.db");
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    conn.query_row("SELECT agent_pid FROM sessions WHERE slug = ?1", [name], |r| r.get::<_, Option<i32>>(0))
        .expect("the session's row")
        .expect("an agent pid")
}

/// Rows of `list --json` and stderr, and how long it took, with the
/// remote timeout at 2s.
fn timed_list(env: &TestEnv) -> (Vec<Value>, String, Duration) {
    let start = Instant::now();
    let out = env.command_in(&env.repo, &["list", "--json"]).env("TANDEM_REMOTE_TIMEOUT", "2s").output().expect("list");
    let took = start.elapsed();
    assert!(out.status.success(), "list with a remote down must still succeed: {}", stderr(&out));
    let rows = serde_json::from_slice::<Value>(&out.stdout).expect("json").as_array().expect("array").clone();
    (rows, stderr(&out), took)
}

#[test]
fn fixture_serves_a_second_user_that_can_stop_start_and_freeze() {
    let Some((env, mut sshd)) = remote_env() else { return };
    let out = sshd.ssh(&[sshd.alias(), "id", "-un"]);
    assert!(out.status.success(), "ssh {}: {}\nsshd log:\n{}", sshd.alias(), stderr(&out), sshd.log());
    assert_eq!(stdout(&out).trim(), sshd.user());
    let out = sshd.run_as_remote(&["sh", "-c", "echo $HOME $(id -un)"]);
    assert_eq!(stdout(&out).trim(), format!("{} {}", sshd.home().display(), sshd.user()));

    sshd.stop();
    let out = sshd.ssh(&["-o", "ConnectTimeout=5", sshd.alias(), "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("Connection refused"), "{}", stderr(&out));

    sshd.start_again();
    assert!(sshd.ssh(&[sshd.alias(), "true"]).status.success(), "{}", sshd.log());

    // Frozen: TCP connects, ssh hears nothing and gives up by its timeout.
    sshd.freeze();
    let start = Instant::now();
    let out = sshd.ssh(&["-o", "ConnectTimeout=2", sshd.alias(), "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    sshd.thaw();
    assert!(sshd.ssh(&[sshd.alias(), "true"]).status.success());

    // A control master the way tandem keeps one: found and ended by pid.
    let control = env.tmp.path().join("run");
    std::fs::create_dir_all(control.join("ssh")).expect("control folder");
    let path = format!("ControlPath={}/ssh/%C", control.display());
    let master = ["-o", "ControlMaster=auto", "-o", &path, "-o", "ControlPersist=60", sshd.alias()];
    let out = sshd.ssh(&[&master[..], &["true"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let check = sshd.ssh(&["-o", &path, "-O", "check", sshd.alias()]);
    assert!(check.status.success(), "a master runs: {}", stderr(&check));
    assert_eq!(sshd.kill_control_masters(&control), 1);
    let check = sshd.ssh(&["-o", &path, "-O", "check", sshd.alias()]);
    assert!(!check.status.success(), "the master is gone: {}", stderr(&check));

    // A process of the remote user lives until the fixture ends it.
    let out = sshd.run_as_remote(&["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]);
    let pid: i32 = stdout(&out).trim().parse().expect("a pid");
    assert!(sshd.remote_pid_alive(pid));
    assert!(sshd.remote_pids().contains(&pid));
}

#[test]
fn remote_add_notes_a_missing_tandem_then_install_list_doctor_rm() {
    let Some((env, sshd)) = remote_env() else { return };
    // ssh works, but no tandem there yet: added, with a note.
    let out = env.tandem(&["remote", "add", "tdr", sshd.alias()]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), sshd.log());
    assert!(stderr(&out).contains("note: ") && stderr(&out).contains("tandem remote install tdr"), "{}", stderr(&out));
    let list = remotes(&env);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!((&list[0]["name"], &list[0]["destination"]), (&json!("tdr"), &json!(sshd.alias())));
    assert_eq!(list[0]["tandem"], Value::Null, "{list:?}");

    let out = env.ok(&["remote", "install", "tdr"]);
    let version = env.ok(&["--version"]);
    let version = version.split_whitespace().last().expect("a version");
    assert!(out.contains(&format!("installed tandem {version} on tdr")), "{out}");
    let installed = sshd.home().join(".local/bin/tandem");
    let meta = std::fs::metadata(&installed).expect("~/.local/bin/tandem on the remote");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), sshd.uid(), "owned by the remote user");
    assert!(sshd.remote_tandem(&["--version"]).contains(version));

    let list = remotes(&env);
    assert_eq!(list[0]["reachable"], true, "{list:?}");
    assert_eq!(list[0]["error"], Value::Null, "{list:?}");
    assert!(list[0]["tandem"].as_str().is_some_and(|t| t.contains(version)), "{list:?}");
    assert_eq!(list[0]["sessions"], 0, "{list:?}");
    let table = env.ok(&["remote", "list"]);
    let header: Vec<&str> = table.lines().next().expect("a header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESTINATION", "STATUS", "TANDEM", "SESSIONS", "LOAD"], "{table}");
    assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("tdr") && l.contains(sshd.alias())), "{table}");

    let out = env.tandem(&["remote", "doctor", "tdr"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    for check in ["ssh", "tandem", "protocol", "git"] {
        assert!(
            text.lines().any(|l| l.starts_with("ok") && l.split_whitespace().nth(1) == Some(check)),
            "{check}: {text}"
        );
    }
    for check in ["linger", "disk"] {
        assert!(text.lines().any(|l| l.split_whitespace().nth(1) == Some(check)), "{check}: {text}");
    }
    assert!(!text.contains("FAIL"), "{text}");

    // Doctor names the failing check when the host is down.
    let mut sshd = sshd;
    sshd.stop();
    let out = env.tandem(&["remote", "doctor", "tdr"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).lines().any(|l| l.starts_with("FAIL") && l.contains("ssh")), "{}", stdout(&out));
    sshd.start_again();

    env.ok(&["remote", "rm", "tdr"]);
    assert!(remotes(&env).is_empty());
    let err = env.fails(&["remote", "rm", "tdr"]);
    assert!(err.contains("tdr"), "{err}");
}

#[test]
fn remote_add_refuses_what_ssh_cannot_reach_and_stores_nothing() {
    let Some((env, mut sshd)) = remote_env() else { return };
    sshd.copy_tandem();

    // An alias ssh does not know.
    let out = env.tandem(&["remote", "add", "nowhere", "no-such-alias.invalid"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    assert!(remotes(&env).is_empty());

    // The server refuses the key.
    sshd.revoke_client_key();
    let out = env.tandem(&["remote", "add", "tdr", sshd.alias()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    assert!(remotes(&env).is_empty());
    sshd.authorize_client_key();

    // Nothing listens.
    sshd.stop();
    let out = env.tandem(&["remote", "add", "tdr", sshd.alias()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Connection refused"), "{}", stderr(&out));
    assert!(remotes(&env).is_empty());
    sshd.start_again();

    // Names: `local` is taken, odd names are refused, a second add of
    // one name changes nothing.
    for bad in ["local", "Bad_Name", "-x", ""] {
        let out = env.tandem(&["remote", "add", "--", bad, sshd.alias()]);
        assert!(!out.status.success(), "remote add {bad:?} was accepted");
        assert!(!stderr(&out).is_empty());
    }
    assert!(remotes(&env).is_empty());
    env.ok(&["remote", "add", "tdr", sshd.alias()]);
    let err = env.fails(&["remote", "add", "tdr", "elsewhere"]);
    assert!(err.contains("remote `tdr` exists"), "{err}");
    let list = remotes(&env);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["destination"], sshd.alias());
}

#[test]
fn shell_session_on_the_remote_new_list_attach_send_history() {
    let Some((env, sshd)) = ready() else { return };
    env.ok(&["new", "here", "--agent", "shell", "--bg"]);
    let made = new_remote_shell(&env, "job");
    assert_eq!(made["host"], "tdr", "{made}");
    assert_eq!(made["name"], "job", "{made}");

    // The session lives on the remote, run by the remote user's supervisor.
    let there = remote_session(&sshd, "job");
    let path = PathBuf::from(there["path"].as_str().expect("path"));
    assert!(path.starts_with(sshd.home()), "{}", path.display());
    assert_eq!(remote_git(&sshd, &path, &["log", "-1", "--format=%s"]).trim(), "initial commit");
    assert!(rows_on(&env, None).iter().all(|s| s["name"] != "job"), "not a local session");

    // list: local rows first, then the remote's, with a HOST column.
    let rows = env.sessions();
    let names: Vec<(&Value, &Value)> = rows.iter().map(|s| (&s["host"], &s["name"])).collect();
    assert_eq!(names, [(&Value::Null, &json!("here")), (&json!("tdr"), &json!("job"))], "{rows:?}");
    let table = env.ok(&["list"]);
    assert!(table.lines().next().is_some_and(|h| h.split_whitespace().any(|w| w == "HOST")), "{table}");
    assert!(table.lines().any(|l| l.contains("job") && l.contains("tdr")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("local") && l.contains("here")), "HOST `local`: {table}");
    wait_for("the remote shell to run", || {
        rows_on(&env, Some("tdr")).iter().any(|s| s["name"] == "job" && s["state"] == "running").then_some(())
    });

    // Attach through a real terminal: the shell runs as the remote user.
    let mut term = env.pty(&["attach", "job"], 24, 100);
    term.wait_for(PROMPT);
    term.type_line("echo remote=$(id -un) in $(basename $PWD)");
    term.wait_for(&format!("remote={} in ", sshd.user()));
    term.send(b"\x1c");
    assert_eq!(term.wait_exit(), 0, "{}", term.raw_text());
    drop(term);

    // send + history + logs, by bare name and by HOST:NAME.
    let out = env.tandem(&["send", "job", "echo sent-$((2+3))"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the sent line's output in the logs", || env.ok(&["logs", "tdr:job"]).contains("sent-5").then_some(()));
    let history = env.ok(&["history", "tdr:job"]);
    assert!(history.contains("prompt       echo sent-$((2+3))"), "{history}");
    assert_eq!(env.ok(&["history", "job"]), history);

    // A name on no host.
    let err = env.fails(&["logs", "tdr:nothing-here"]);
    assert!(err.contains("nothing-here"), "{err}");
    let err = env.fails(&["logs", "nohost:job"]);
    assert!(err.contains("nohost"), "{err}");

    // Stop and rm through the remote.
    env.ok(&["stop", "tdr:job"]);
    wait_for("the remote session to stop", || (remote_session(&sshd, "job")["state"] == "stopped").then_some(()));
    env.ok(&["rm", "tdr:job"]);
    wait_for("the remote session to go", || remote_sessions(&sshd).is_empty().then_some(()));
    assert!(rows_on(&env, Some("tdr")).is_empty());
}

#[test]
fn new_on_refuses_a_name_taken_on_the_remote_and_an_unknown_remote() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "dup");
    let before = remote_sessions(&sshd);
    let repo_before = env.repo_state();
    let err = env.fails(&["new", "--on", "tdr", "dup", "--agent", "shell", "--bg"]);
    assert!(err.contains("dup"), "{err}");
    assert_eq!(remote_sessions(&sshd).len(), before.len());
    assert_eq!(env.repo_state(), repo_before);

    let err = env.fails(&["new", "--on", "nowhere", "lost", "--agent", "shell", "--bg"]);
    assert!(err.contains("nowhere"), "{err}");
    assert!(env.sessions().iter().all(|s| s["name"] != "lost"));
    assert!(remote_sessions(&sshd).iter().all(|s| s["name"] != "lost"));
}

#[test]
fn new_on_a_remote_without_tandem_says_to_install_it() {
    let Some((env, sshd)) = remote_env() else { return };
    env.ok(&["remote", "add", "tdr", sshd.alias()]);
    let err = env.fails(&["new", "--on", "tdr", "early", "--agent", "shell", "--bg"]);
    assert!(err.contains("tandem remote install tdr"), "{err}");
    assert!(!sshd.home().join(".local/state/tandem").exists(), "nothing made on the remote");
}

#[test]
fn a_lost_control_master_leaves_the_remote_agent_running_and_list_reconnects() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "steady");
    wait_for("the remote shell to run", || {
        rows_on(&env, Some("tdr")).iter().any(|s| s["state"] == "running").then_some(())
    });
    let pid = remote_agent_pid(&sshd, "steady");
    assert!(sshd.remote_pid_alive(pid), "the agent runs as the remote user");

    let masters = sshd.control_master_pids(&env.tandem_home);
    assert!(!masters.is_empty(), "tandem keeps an ssh control master under its runtime folder");
    assert_eq!(sshd.kill_control_masters(&env.tandem_home), masters.len());
    assert!(sshd.remote_pid_alive(pid), "the remote agent outlives the connection");

    let rows = rows_on(&env, Some("tdr"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["state"], "running", "{rows:?}");
    assert_eq!(remote_agent_pid(&sshd, "steady"), pid, "the same process, not a respawn");
    let again = sshd.control_master_pids(&env.tandem_home);
    assert!(!again.is_empty() && again.iter().all(|p| !masters.contains(p)), "a new master: {again:?}");
    let out = env.ok(&["logs", "steady"]);
    assert!(out.contains(PROMPT), "{out}");
}

#[test]
fn an_unreachable_remote_shows_its_last_rows_and_local_rows_still_print() {
    let Some((env, mut sshd)) = ready() else { return };
    env.ok(&["new", "near", "--agent", "shell", "--bg"]);
    new_remote_shell(&env, "far");
    wait_for("the remote shell to run", || {
        rows_on(&env, Some("tdr")).iter().any(|s| s["state"] == "running").then_some(())
    });

    for how in ["stopped", "frozen"] {
        if how == "stopped" {
            sshd.stop();
        } else {
            sshd.freeze();
        }
        let (rows, err, took) = timed_list(&env);
        assert!(took < Duration::from_secs(4), "{how}: list took {took:?}");
        assert!(rows.iter().any(|s| s["name"] == "near" && s["host"].is_null()), "{how}: {rows:?}");
        let far = rows.iter().find(|s| s["name"] == "far").unwrap_or_else(|| panic!("{how}: no far row: {rows:?}"));
        assert_eq!(far["host"], "tdr", "{how}: {far}");
        assert_eq!(far["state"], "unreachable", "{how}: {far}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
        assert!(far["last_seen"].as_i64().is_some_and(|t| t <= now && t > now - 600), "{how}: {far}");
        // The contract's words, the name in tandem's backticks or not.
        assert!(
            err.contains("note: remote tdr did not answer: ") || err.contains("note: remote `tdr` did not answer: "),
            "{how}: {err}"
        );
        let table = env.command_in(&env.repo, &["list"]).env("TANDEM_REMOTE_TIMEOUT", "2s").output().expect("list");
        assert!(table.status.success());
        assert!(stdout(&table).contains("near"), "{}", stdout(&table));
        assert!(stdout(&table).contains("unreachable (was running, seen "), "{}", stdout(&table));

        let out = env.command_in(&env.repo, &["remote", "list", "--json"]).env("TANDEM_REMOTE_TIMEOUT", "2s").output();
        let list: Value = serde_json::from_slice(&out.expect("remote list").stdout).expect("json");
        assert_eq!(list[0]["reachable"], false, "{how}: {list}");
        assert!(list[0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{how}: {list}");
        if how == "stopped" {
            sshd.start_again();
        } else {
            sshd.thaw();
        }
        wait_within(&format!("the remote back after being {how}"), Duration::from_secs(30), || {
            let (rows, _, _) = timed_list(&env);
            rows.iter().any(|s| s["name"] == "far" && s["state"] == "running").then_some(())
        });
    }
}

#[test]
fn fetch_diff_and_merge_a_remote_sessions_commit() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "work");
    let path = PathBuf::from(remote_session(&sshd, "work")["path"].as_str().expect("path").to_owned());
    let commit = remote_commit(&sshd, &path, "remote.txt", "made on the remote\n", "Add remote.txt");

    let diff = env.ok(&["diff", "tdr:work"]);
    assert!(diff.contains("remote.txt") && diff.contains("+made on the remote"), "{diff}");

    let out = env.ok(&["fetch", "tdr:work"]);
    assert!(out.contains("refs/remotes/tandem/tdr/work") && out.contains(&commit[..7]), "{out}");
    assert_eq!(env.git(&["rev-parse", "refs/remotes/tandem/tdr/work"]).trim(), commit);
    assert!(
        env.command_git_in(&env.repo, &["rev-parse", "--verify", "-q", "refs/remotes/tandem-wip/tdr/work"])
            .stdout
            .is_empty()
    );

    // Uncommitted work comes as a ref under refs/remotes/tandem-wip/.
    let out = sshd.run_as_remote(&["sh", "-c", "echo draft > \"$1\"", "-", &path.join("draft.txt").to_string_lossy()]);
    assert!(out.status.success());
    let out = env.ok(&["fetch", "work"]);
    assert!(out.contains("refs/remotes/tandem-wip/tdr/work"), "{out}");
    let files = env.git(&["ls-tree", "-r", "--name-only", "refs/remotes/tandem-wip/tdr/work"]);
    assert!(files.lines().any(|f| f == "draft.txt"), "{files}");
    assert_eq!(env.git(&["status", "--porcelain"]), "", "fetch leaves the local checkout alone");
    // Fetching again takes the work as it is now.
    let out =
        sshd.run_as_remote(&["sh", "-c", "echo draft two > \"$1\"", "-", &path.join("draft.txt").to_string_lossy()]);
    assert!(out.status.success());
    env.ok(&["fetch", "tdr:work"]);
    assert_eq!(env.git(&["show", "refs/remotes/tandem-wip/tdr/work:draft.txt"]), "draft two\n");

    env.ok(&["merge", "tdr:work"]);
    assert_eq!(env.git(&["show", "main:remote.txt"]), "made on the remote\n");
    assert!(env.git(&["log", "--format=%H", "main"]).contains(&commit));
}

#[test]
fn conflicts_include_remote_sessions_of_the_same_repository() {
    let Some((env, sshd)) = ready() else { return };
    env.commit_in(&env.repo, "shared.txt", "one\ntwo\nthree\n", "shared");
    env.ok(&["new", "left", "--agent", "shell", "--bg", "--base", "head"]);
    env.commit_in(&env.path_of("left"), "shared.txt", "one\nLEFT\nthree\n", "left edit");
    // The remote's base: main as pushed, which has shared.txt.
    env.ok(&["new", "--on", "tdr", "right", "--agent", "shell", "--bg"]);
    let path = PathBuf::from(remote_session(&sshd, "right")["path"].as_str().expect("path").to_owned());
    remote_commit(&sshd, &path, "shared.txt", "one\nRIGHT\nthree\n", "right edit");
    env.ok(&["new", "--on", "tdr", "aside", "--agent", "shell", "--bg"]);
    let aside = PathBuf::from(remote_session(&sshd, "aside")["path"].as_str().expect("path").to_owned());
    remote_commit(&sshd, &aside, "other.txt", "other\n", "other file");

    let report: Value = serde_json::from_str(&env.ok(&["conflicts", "--json"])).expect("json");
    let pairs = report["pairs"].as_array().expect("pairs");
    let is = |v: &Value, name: &str| v.as_str().is_some_and(|s| s == name || s == format!("tdr:{name}"));
    let pair = pairs
        .iter()
        .find(|p| (is(&p["a"], "left") && is(&p["b"], "right")) || (is(&p["a"], "right") && is(&p["b"], "left")))
        .unwrap_or_else(|| panic!("left and tdr:right predicted to conflict: {report}"));
    assert_eq!(pair["conflicts"], json!(["shared.txt"]), "{report}");
    assert!(!pairs.iter().any(|p| is(&p["a"], "aside") || is(&p["b"], "aside")), "no overlap, no pair: {report}");
}

#[test]
fn claude_on_the_remote_commits_in_its_worktree() {
    let Some(claude) = agent_binary("claude") else {
        assert!(std::env::var_os("TANDEM_TEST_REQUIRE_AGENTS").is_none(), "the claude CLI is required here");
        skipped("the claude CLI is not installed; `bash scripts/test.sh` installs it");
        return;
    };
    let Some((env, sshd)) = ready() else { return };
    let claude = claude.canonicalize().expect("claude's real path");
    // The remote user runs the same binary through its PATH.
    let link = sshd.home().join(".local/bin/claude");
    std::os::unix::fs::symlink(&claude, &link).expect("symlink claude");
    let out = sshd.run_as_remote(&["claude", "--version"]);
    assert!(out.status.success(), "the remote user cannot run {}: {}", claude.display(), stderr(&out));

    // The repository on the remote, found by its origin URL: a bare
    // repository both users can read, cloned by the remote user and
    // registered with its tandem (so Claude's trust can name it).
    let origin = sshd.home().join("origin.git");
    env.git(&["clone", "-q", "--bare", env.repo.to_str().expect("utf-8"), origin.to_str().expect("utf-8")]);
    env.git(&["remote", "add", "origin", origin.to_str().expect("utf-8")]);
    env.git(&["fetch", "-q", "origin"]);
    let out = std::process::Command::new("chown").arg("-R").arg(format!("{0}:{0}", sshd.user())).arg(&origin).output();
    assert!(out.is_ok_and(|o| o.status.success()));
    let clone = sshd.home().join("repo");
    let out =
        sshd.run_as_remote(&["git", "clone", "-q", origin.to_str().expect("utf-8"), clone.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sshd.remote_command(&["tandem", "new", "warm", "--agent", "shell", "--bg"]).current_dir(&clone).output();
    assert!(out.is_ok_and(|o| o.status.success()), "register the clone with the remote tandem");

    let config_dir = sshd.home().join(".claude-test");
    let api_key = "sk-ant-test-0123456789abcdefghijklmnop";
    write_claude_config(&config_dir, api_key, &clone, &["Bash"]);
    let out =
        std::process::Command::new("chown").arg("-R").arg(format!("{0}:{0}", sshd.user())).arg(&config_dir).output();
    assert!(out.is_ok_and(|o| o.status.success()));

    let stub = MessagesStub::start(vec![
        Step::tool(
            "Bash",
            json!({
                "command": "echo hello from claude > hello.txt && git add hello.txt && git commit -q -m 'Add hello from claude' && git log -1 --format='committed as %s'",
                "description": "Commit hello.txt"
            }),
        ),
        Step::text("Committed hello.txt."),
    ]);
    let mut args: Vec<String> =
        ["new", "--on", "tdr", "cl", "--agent", "claude", "--bg", "-p", "Write hello.txt and commit it"]
            .map(str::to_owned)
            .to_vec();
    for (k, v) in claude_env(&stub, &config_dir, api_key) {
        args.push("--env".to_owned());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.ok(&args);
    let path = PathBuf::from(remote_session(&sshd, "cl")["path"].as_str().expect("path").to_owned());

    wait_within("Claude's commit on the remote", Duration::from_secs(120), || {
        let out = sshd.run_as_remote(&["git", "-C", path.to_str()?, "log", "-1", "--format=%s"]);
        stdout(&out).contains("Add hello from claude").then_some(())
    });
    wait_within("Claude's answer in the history", Duration::from_secs(60), || {
        env.ok(&["history", "tdr:cl"]).contains("Committed hello.txt.").then_some(())
    });
    assert!(env.ok(&["history", "cl"]).contains("Bash → committed as Add hello from claude"));
    let out = env.ok(&["fetch", "tdr:cl"]);
    assert!(out.contains("refs/remotes/tandem/tdr/cl"), "{out}");
    assert_eq!(env.git(&["show", "refs/remotes/tandem/tdr/cl:hello.txt"]), "hello from claude\n");
}

/// Asserts `text` holds no escape or bell character: what a remote sent
/// reached the user's terminal escaped.
fn assert_no_controls(what: &str, text: &str) {
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{what} holds raw control characters: {text:?}");
}

/// One control frame holding `msg` as JSON, as a proxy writes it.
fn frame(msg: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    tandem_core::protocol::send(&mut out, msg).expect("frame");
    out
}

/// Puts a fake `tandem` on the remote that answers every link with
/// `reply` (frames) and writes control characters on stderr.
fn fake_remote_tandem(sshd: &Sshd, reply: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("reply"), reply).expect("write the reply");
    sshd.install_file(&dir.path().join("reply"), ".fake-reply", "644");
    std::fs::write(
        dir.path().join("tandem"),
        "#!/bin/sh\nhead -c 4 >/dev/null\ncat \"$HOME/.fake-reply\"\nprintf '\\033]0;pwned\\007\\033[2J hostile stderr\\n' >&2\n",
    )
    .expect("write the fake tandem");
    sshd.install_file(&dir.path().join("tandem"), ".local/bin/tandem", "755");
}

#[test]
fn an_incompatible_tandem_on_the_remote_is_added_with_a_note_and_refused_for_work() {
    let Some((env, sshd)) = remote_env() else { return };
    let hello = json!({ "protocol": 999, "tandem": "9.9.9\u{1b}]0;pwned\u{7}" });
    fake_remote_tandem(&sshd, &frame(&hello));

    let out = env.tandem(&["remote", "add", "tdr", sshd.alias()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("note: ") && stderr(&out).contains("tandem remote install tdr"), "{}", stderr(&out));
    assert_no_controls("remote add's stderr", &stderr(&out));
    assert_eq!(remotes(&env).len(), 1);
    let out = env.tandem(&["remote", "list"]);
    assert_no_controls("remote list", &format!("{}{}", stdout(&out), stderr(&out)));

    let out = env.tandem(&["remote", "doctor", "tdr"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).lines().any(|l| l.starts_with("FAIL")), "{}", stdout(&out));
    assert!(stdout(&out).contains("9.9.9"), "doctor names the remote's version: {}", stdout(&out));
    assert_no_controls("remote doctor", &format!("{}{}", stdout(&out), stderr(&out)));

    let out = env.tandem(&["new", "--on", "tdr", "early", "--agent", "shell", "--bg"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("tandem remote install tdr"), "{}", stderr(&out));
    assert_no_controls("new --on", &stderr(&out));
    assert!(env.sessions().iter().all(|s| s["name"] != "early"));

    // The fix the notes name works.
    env.ok(&["remote", "install", "tdr"]);
    let out = env.tandem(&["remote", "doctor", "tdr"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_hostile_remotes_rows_reach_the_terminal_escaped() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "job");

    // A real proxy's answer to a rows request, then its session made hostile.
    let version = env.ok(&["--version"]).split_whitespace().last().expect("version").to_owned();
    let hello = json!({ "protocol": tandem_core::protocol::REMOTE_PROTOCOL_VERSION, "tandem": version });
    let mut input = frame(&hello);
    input.extend(frame(&json!({ "type": "rows", "archived": false })));
    let mut child = sshd
        .remote_command(&["tandem", "proxy"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the proxy");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &input).expect("write the requests");
    let out = child.wait_with_output().expect("the proxy's answer");
    let mut answer = std::io::Cursor::new(out.stdout);
    let _: Value = tandem_core::protocol::recv(&mut answer).expect("hello").expect("a hello");
    let mut rows: Value = tandem_core::protocol::recv(&mut answer).expect("rows").expect("a rows reply");
    assert_eq!(rows["type"], "rows", "{rows}");
    let hostile = "job\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m";
    for row in rows["rows"].as_array_mut().expect("rows") {
        row["name"] = json!(hostile);
        row["branch"] = json!(hostile);
        row["last_message"] = json!(hostile);
    }
    let mut reply = frame(&hello);
    reply.extend(frame(&rows));
    fake_remote_tandem(&sshd, &reply);

    let out = env.tandem(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("job") && stdout(&out).contains("pwned"), "the hostile row: {}", stdout(&out));
    assert_no_controls("list", &format!("{}{}", stdout(&out), stderr(&out)));
    assert!(!stdout(&out).contains('\u{9b}'), "a C1 CSI reached the terminal: {:?}", stdout(&out));
    let out = env.tandem(&["remote", "list"]);
    assert_no_controls("remote list", &format!("{}{}", stdout(&out), stderr(&out)));
}

#[test]
fn remote_command_output_reaches_the_terminal_escaped() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "work");
    let path = PathBuf::from(remote_session(&sshd, "work")["path"].as_str().expect("path").to_owned());
    remote_commit(&sshd, &path, "evil.txt", "before\u{1b}]0;pwned\u{7}\u{1b}[2Jafter\n", "Add evil.txt");
    let out = env.tandem(&["diff", "tdr:work"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("evil.txt") && stdout(&out).contains("pwned"), "{}", stdout(&out));
    assert_no_controls("diff of a remote session", &stdout(&out));
}

/// The remote's sessions, archived ones: `tandem list --all --archived
/// --json` run there.
fn remote_archived(sshd: &Sshd) -> Vec<Value> {
    serde_json::from_str::<Value>(&sshd.remote_tandem(&["list", "--all", "--archived", "--json"]))
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn session_commands_reach_the_remote_and_a_name_on_two_hosts_must_be_named() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "job");
    env.ok(&["new", "job", "--agent", "shell", "--bg"]);
    wait_for("the remote shell to run", || (remote_session(&sshd, "job")["state"] == "running").then_some(()));

    // Both hosts have `job`: a bare name is refused, naming both.
    let before = env.ok(&["history", "local:job"]);
    let err = env.fails(&["send", "job", "echo which-one"]);
    assert!(err.contains("`local:job`") && err.contains("`tdr:job`"), "{err}");
    assert_eq!(env.ok(&["history", "local:job"]), before, "nothing sent");

    env.ok(&["send", "tdr:job", "echo remote-findme-$((40+2))"]);
    wait_for("the remote output", || env.ok(&["logs", "tdr:job"]).contains("remote-findme-42").then_some(()));
    assert!(!env.ok(&["logs", "local:job"]).contains("remote-findme-42"));
    let hits = env.ok(&["search", "remote-findme", "--session", "tdr:job"]);
    assert!(hits.contains("job") && hits.contains("remote-findme"), "{hits}");
    assert_eq!(env.ok(&["search", "remote-findme", "--session", "local:job"]), "");

    env.ok(&["interrupt", "tdr:job"]);
    // A refusal there is a refusal here: the remote's words, exit 1.
    let err = env.fails(&["approve", "tdr:job"]);
    assert!(err.contains("job"), "{err}");

    let pid = remote_agent_pid(&sshd, "job");
    env.ok(&["respawn", "tdr:job"]);
    wait_for("a new agent on the remote", || {
        let now = remote_agent_pid(&sshd, "job");
        (now != pid && sshd.remote_pid_alive(now)).then_some(())
    });
    assert!(!sshd.remote_pid_alive(pid), "the old agent is gone");

    env.ok(&["archive", "tdr:job"]);
    wait_for("the remote session archived", || remote_archived(&sshd).iter().any(|s| s["name"] == "job").then_some(()));
    assert!(remote_sessions(&sshd).iter().all(|s| s["name"] != "job"));
    assert!(env.session("job")["host"].is_null(), "the local job is untouched");

    // `remote rm` forgets the host; its sessions stay there.
    new_remote_shell(&env, "kept");
    env.ok(&["remote", "rm", "tdr"]);
    assert!(remote_sessions(&sshd).iter().any(|s| s["name"] == "kept"));
    assert!(env.sessions().iter().all(|s| s["host"].is_null()), "{:?}", env.sessions());
    let err = env.fails(&["logs", "tdr:kept"]);
    assert!(err.contains("tdr"), "{err}");
}

#[test]
fn new_on_passes_env_and_secrets_to_the_remote_agent() {
    let Some((env, sshd)) = ready() else { return };
    let secrets = env.tmp.path().join("secrets.env");
    std::fs::write(&secrets, "SECRET_TOKEN=s3cr3t-value-991\n").expect("write secrets");
    env.ok(&[
        "new",
        "--on",
        "tdr",
        "envy",
        "--agent",
        "shell",
        "--bg",
        "--env",
        "GREETING=hello-remote",
        "--env-file",
        secrets.to_str().expect("utf-8"),
    ]);
    env.ok(&["send", "envy", "echo G=$GREETING S=${#SECRET_TOKEN} U=$(id -un)"]);
    let expected = format!("G=hello-remote S=16 U={}", sshd.user());
    wait_for("the variables in the remote shell", || env.ok(&["logs", "envy"]).contains(&expected).then_some(()));
    // The secret is in no command line on the remote and in no file of
    // the remote user's state.
    for pid in sshd.remote_pids() {
        let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&line).contains("s3cr3t-value-991"), "in the command line of {pid}");
    }
    let out = sshd.run_as_remote(&["grep", "-rl", "s3cr3t-value-991", ".local/state", ".local/share"]);
    assert_eq!(stdout(&out), "", "the secret was written to a file on the remote");
    // (The same search finds the plain variable, which is kept.)
    let out = sshd.run_as_remote(&["grep", "-rl", "hello-remote", ".local/state", ".local/share"]);
    assert!(stdout(&out).contains("tandem.db"), "{}", stdout(&out));
}

#[test]
fn the_users_remote_timeout_bounds_list_when_a_host_hangs() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "slow");
    // `remote.timeout_secs` (docs/remote.md; the default is 5).
    env.user_config("[remote]\ntimeout_secs = 2.0\n");
    sshd.freeze();
    let start = Instant::now();
    let out = env.tandem(&["list", "--json"]);
    let took = start.elapsed();
    sshd.thaw();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(took < Duration::from_secs(4), "list took {took:?} with a 2s timeout");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert!(rows.iter().any(|s| s["name"] == "slow" && s["state"] == "unreachable"), "{rows:?}");
}

#[test]
fn new_on_clones_the_origin_when_the_host_can_reach_it() {
    let Some((env, sshd)) = ready() else { return };
    // An origin both users can read: the remote user's own bare repository.
    let origin = sshd.home().join("origin.git");
    env.git(&["clone", "-q", "--bare", env.repo.to_str().expect("utf-8"), origin.to_str().expect("utf-8")]);
    let out = std::process::Command::new("chown").arg("-R").arg(format!("{0}:{0}", sshd.user())).arg(&origin).output();
    assert!(out.is_ok_and(|o| o.status.success()));
    env.git(&["remote", "add", "origin", origin.to_str().expect("utf-8")]);

    new_remote_shell(&env, "cloned");
    let row = remote_session(&sshd, "cloned");
    let path = PathBuf::from(row["path"].as_str().expect("path"));
    let common = remote_git(&sshd, &path, &["rev-parse", "--path-format=absolute", "--git-common-dir"]);
    assert!(common.contains("/repos/"), "a clone in tandem's data folder there: {common}");
    assert_eq!(remote_git(&sshd, &path, &["remote", "get-url", "origin"]).trim(), origin.to_str().expect("utf-8"));
    assert_eq!(remote_git(&sshd, &path, &["log", "-1", "--format=%s"]).trim(), "initial commit");

    // A second session finds the same repository there.
    new_remote_shell(&env, "again");
    let again = PathBuf::from(remote_session(&sshd, "again")["path"].as_str().expect("path").to_owned());
    assert_eq!(remote_git(&sshd, &again, &["rev-parse", "--path-format=absolute", "--git-common-dir"]), common);
}

#[test]
fn new_on_a_mirror_branches_from_the_base_named_here() {
    let Some((env, sshd)) = ready() else { return };
    env.git(&["checkout", "-q", "-b", "feature"]);
    env.commit_in(&env.repo, "feature.txt", "feature\n", "feature work");
    let feature = env.git(&["rev-parse", "feature"]).trim().to_owned();
    env.git(&["checkout", "-q", "main"]);

    env.ok(&["new", "--on", "tdr", "feat", "--agent", "shell", "--bg", "--base", "feature"]);
    let path = PathBuf::from(remote_session(&sshd, "feat")["path"].as_str().expect("path").to_owned());
    assert_eq!(remote_git(&sshd, &path, &["rev-parse", "HEAD"]).trim(), feature);
    let common = remote_git(&sshd, &path, &["rev-parse", "--path-format=absolute", "--git-common-dir"]);
    assert!(common.contains("/mirrors/"), "no origin: a mirror there: {common}");

    // Without --base: the current branch here.
    new_remote_shell(&env, "plain");
    let plain = PathBuf::from(remote_session(&sshd, "plain")["path"].as_str().expect("path").to_owned());
    assert_eq!(remote_git(&sshd, &plain, &["rev-parse", "HEAD"]).trim(), env.git(&["rev-parse", "main"]).trim());

    // `--base head` (as `tandem new --help` offers it): this checkout's HEAD.
    env.git(&["checkout", "-q", "feature"]);
    env.ok(&["new", "--on", "tdr", "fromhead", "--agent", "shell", "--bg", "--base", "head"]);
    let fromhead = PathBuf::from(remote_session(&sshd, "fromhead")["path"].as_str().expect("path").to_owned());
    assert_eq!(remote_git(&sshd, &fromhead, &["rev-parse", "HEAD"]).trim(), feature);
}

#[test]
fn attach_ends_when_the_connection_drops_and_the_remote_agent_lives_on() {
    let Some((env, mut sshd)) = ready() else { return };
    new_remote_shell(&env, "live");
    wait_for("the remote shell to run", || (remote_session(&sshd, "live")["state"] == "running").then_some(()));
    let pid = remote_agent_pid(&sshd, "live");

    let mut term = env.pty(&["attach", "tdr:live"], 24, 100);
    term.wait_for(PROMPT);
    term.type_line("echo before=$((1+1))");
    term.wait_for("before=2");
    sshd.stop();
    term.wait_exit();
    let raw = term.wait_for_raw("lost the connection to session tdr:live's host");
    assert!(!raw.contains("detached from"), "a dropped link is not a detach: {raw}");
    drop(term);
    assert!(sshd.remote_pid_alive(pid), "the agent outlives the connection");

    sshd.start_again();
    let mut term = env.pty(&["attach", "live"], 24, 100);
    term.wait_for(PROMPT);
    term.type_line("echo after=$((2+2))");
    term.wait_for("after=4");
    term.send(b"\x1c");
    assert_eq!(term.wait_exit(), 0);
    assert_eq!(remote_agent_pid(&sshd, "live"), pid, "the same agent");
}

#[test]
fn push_a_remote_sessions_branch_from_here() {
    let Some((env, sshd)) = ready() else { return };
    // An origin only this machine can reach: the remote gets a mirror.
    let origin = env.tmp.path().join("origin.git");
    env.git(&["clone", "-q", "--bare", env.repo.to_str().expect("utf-8"), origin.to_str().expect("utf-8")]);
    env.git(&["remote", "add", "origin", origin.to_str().expect("utf-8")]);
    env.git(&["fetch", "-q", "origin"]);
    new_remote_shell(&env, "shipit");
    let path = PathBuf::from(remote_session(&sshd, "shipit")["path"].as_str().expect("path").to_owned());
    let commit = remote_commit(&sshd, &path, "ship.txt", "ship\n", "Ship it");

    let out = env.tandem(&["push", "tdr:shipit"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(env.git_in(&origin, &["rev-parse", "refs/heads/shipit"]).trim(), commit);
}

#[test]
fn a_task_runs_its_trials_on_the_remote() {
    let Some((env, sshd)) = ready() else { return };
    let out = env.ok(&[
        "task",
        "new",
        "Write done.txt saying ok",
        "--name",
        "greet",
        "--trials",
        "2",
        "--agents",
        "shell",
        "--check",
        "grep -q ok done.txt",
        "--on",
        "tdr",
    ]);
    assert!(out.contains("greet"), "{out}");
    let names: Vec<String> =
        remote_sessions(&sshd).iter().filter_map(|s| s["name"].as_str().map(str::to_owned)).collect();
    assert!(names.contains(&"greet-t1".to_owned()) && names.contains(&"greet-t2".to_owned()), "{names:?}");
    assert!(rows_on(&env, None).is_empty(), "no trial here");
    let wt = |n: u32| PathBuf::from(remote_session(&sshd, &format!("greet-t{n}"))["path"].as_str().expect("path"));
    remote_commit(&sshd, &wt(1), "done.txt", "ok\n", "done");
    remote_commit(&sshd, &wt(2), "done.txt", "not yet\n", "not done");

    let shown: Value =
        serde_json::from_str(&env.ok(&["task", "show", "greet", "--json", "--on", "tdr"])).expect("task show --json");
    let trial =
        |n: i64| shown["trials"].as_array().expect("trials").iter().find(|t| t["trial"] == n).cloned().expect("trial");
    assert_eq!(trial(1)["check"]["passed"], true, "{shown}");
    assert_eq!(trial(2)["check"]["passed"], false, "{shown}");
    let out = env.ok(&["task", "promote", "greet", "1", "--on", "tdr"]);
    assert!(out.contains("greet-t1"), "{out}");
    assert_eq!(remote_git(&sshd, &wt(1), &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "greet/result");
    assert!(env.ok(&["task", "list", "--on", "tdr"]).contains("greet"));
    assert!(!env.ok(&["task", "list"]).contains("greet"), "not a task of this machine");
}

/// An `--env` value under a secret's name (`*_API_KEY`) is not an
/// argument of any command on the remote (other users there read command
/// lines in /proc): the remote user's command lines are read every
/// millisecond while `new --on` runs, and the value is in none of them
/// (the remote `tandem new` itself is seen), yet the agent has it.
#[test]
fn a_secret_given_with_env_is_in_no_remote_command_line() {
    let Some((env, sshd)) = ready() else { return };
    let seen = remote_cmdlines_during(&sshd, || {
        env.ok(&[
            "new",
            "--on",
            "tdr",
            "keyed",
            "--agent",
            "shell",
            "--bg",
            "--env",
            "SERVICE_API_KEY=k3y-value-4242",
            "--env",
            "PLAIN=visible-1",
        ]);
    });
    let lines: Vec<&String> = seen.iter().filter(|l| l.contains("new --bg --json")).collect();
    assert!(!lines.is_empty(), "the remote `tandem new` was seen: {seen:?}");
    assert!(lines.iter().any(|l| l.contains("PLAIN=visible-1")), "a plain variable stays an argument: {lines:?}");
    assert!(seen.iter().all(|l| !l.contains("k3y-value-4242")), "the secret was an argument on the remote: {lines:?}");
    env.ok(&["send", "keyed", "echo K=${#SERVICE_API_KEY} P=$PLAIN"]);
    wait_for("the key in the remote shell", || env.ok(&["logs", "keyed"]).contains("K=14 P=visible-1").then_some(()));
}

// ---------------------------------------------------------------------
// Attacks (h-attack): each test below is an attack on issue 21. Those
// whose doc says "Attack:" + "was"/"went" broke the code they were written
// against and hold since their fix; the others held from the start.
// ---------------------------------------------------------------------

/// Every command line of the remote user seen while `during` runs (read
/// from /proc every millisecond).
fn remote_cmdlines_during(sshd: &Sshd, during: impl FnOnce()) -> std::collections::BTreeSet<String> {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut seen = std::collections::BTreeSet::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for pid in sshd.remote_pids() {
                    let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    seen.insert(String::from_utf8_lossy(&line).replace('\0', " "));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            seen
        });
        during();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watcher.join().expect("the watcher")
    })
}

/// Attack: a secret `--env` value holding a quote (as generated tokens
/// and passwords do) fell back to being an argument of the remote `tandem
/// new`, readable in /proc by every user there. It travels through the
/// pipe like any other secret, quotes intact; one holding a line break
/// (which no env file can carry) is refused before anything is made.
#[test]
fn a_secret_with_quotes_given_with_env_is_in_no_remote_command_line() {
    let Some((env, sshd)) = ready() else { return };
    let secret = "it's-\"q\"-k3y-7373";
    let seen = remote_cmdlines_during(&sshd, || {
        env.ok(&[
            "new",
            "--on",
            "tdr",
            "quoted",
            "--agent",
            "shell",
            "--bg",
            "--env",
            &format!("SERVICE_API_KEY={secret}"),
        ]);
    });
    assert!(seen.iter().any(|l| l.contains("new --bg --json")), "the remote `tandem new` was seen: {seen:?}");
    assert!(seen.iter().all(|l| !l.contains("k3y-7373")), "the secret was an argument on the remote: {seen:?}");
    // The value itself is masked in logs: its upper-case form is not.
    env.ok(&["send", "quoted", "printf 'K=[%s]\\n' \"$SERVICE_API_KEY\" | tr a-z A-Z"]);
    let want = format!("K=[{}]", secret.to_uppercase());
    wait_for("the quoted key in the remote shell", || env.ok(&["logs", "quoted"]).contains(&want).then_some(()));

    let out = env.tandem(&["new", "--on", "tdr", "lined", "--agent", "shell", "--bg", "--env", "SERVICE_API_KEY=a\nb"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("SERVICE_API_KEY") && stderr(&out).contains("line break"), "{}", stderr(&out));
    assert!(remote_sessions(&sshd).iter().all(|s| s["name"] != "lined"), "nothing was made");
}

/// Attack (fault): a remote command's output larger than one read there
/// is cut into frames wherever the pipe was; a character cut in two
/// reached the terminal as two U+FFFD. Three-byte characters over many
/// frames arrive whole.
#[test]
fn remote_output_cut_inside_a_character_arrives_whole() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "wide");
    let path = PathBuf::from(remote_session(&sshd, "wide")["path"].as_str().expect("path").to_owned());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("euro.txt"), format!("{}\n", "€".repeat(120_000))).expect("write");
    let rel = path.join("euro.txt");
    let rel = rel.strip_prefix(sshd.home()).expect("the worktree is in the remote home");
    sshd.install_file(&dir.path().join("euro.txt"), rel.to_str().expect("utf-8"), "644");
    remote_git(&sshd, &path, &["add", "euro.txt"]);
    remote_git(&sshd, &path, &["commit", "-q", "-m", "Add euro.txt"]);
    let out = env.tandem(&["diff", "tdr:wide"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(!shown.contains('\u{fffd}'), "a character was cut: {} U+FFFD", shown.matches('\u{fffd}').count());
    assert_eq!(shown.matches('€').count(), 120_000);
}

/// Attack: a hostile proxy answers `fetch` with refs, commits and a
/// repository path made to inject (`--upload-pack`, `-oProxyCommand`, a
/// refspec's `:`, a shell quote, `..`, control characters). Each is
/// refused before git runs: no ref is written here, nothing runs here,
/// and the error reaches the terminal escaped.
#[test]
fn a_hostile_fetch_answer_is_refused_before_git_runs() {
    let Some((env, sshd)) = ready() else { return };
    let version = env.ok(&["--version"]).split_whitespace().last().expect("version").to_owned();
    let hello = json!({ "protocol": tandem_core::protocol::REMOTE_PROTOCOL_VERSION, "tandem": version });
    let marker = env.tmp.path().join("pwned");
    let run = format!("touch {}", marker.display());
    let head = "a".repeat(40);
    let good = json!({ "type": "fetched", "repo": "/home/x/repo", "branch": "job", "head": head, "wip": null, "wip_ref": null });
    let with = |key: &str, value: Value| {
        let mut reply = good.clone();
        reply[key] = value;
        reply
    };
    let attacks = [
        with("branch", json!("job:refs/heads/main")),
        with("branch", json!("--upload-pack=sh -c x")),
        with("branch", json!("a/../../heads/main")),
        with("branch", json!("job\u{1b}]0;pwned\u{7}")),
        with("head", json!(format!("--upload-pack={run}"))),
        with("repo", json!(format!("-oProxyCommand={run}"))),
        with("repo", json!(format!("/x';{run};'"))),
        with("repo", json!("/x/../../etc")),
        with("repo", json!(format!("/x\n{run}"))),
        json!({ "type": "fetched", "repo": "/x", "branch": "job", "head": head, "wip": head, "wip_ref": "refs/*:refs/heads/main" }),
        json!({ "type": "fetched", "repo": "/x", "branch": "job", "head": head, "wip": format!("--upload-pack={run}"), "wip_ref": "refs/tandem/fetch/x" }),
    ];
    for attack in &attacks {
        let mut reply = frame(&hello);
        reply.extend(frame(attack));
        fake_remote_tandem(&sshd, &reply);
        let out = env.tandem(&["fetch", "tdr:job"]);
        assert_eq!(out.status.code(), Some(1), "{attack}: {}{}", stdout(&out), stderr(&out));
        assert_no_controls("fetch's error", &stderr(&out));
        assert!(!marker.exists(), "{attack} ran a command here");
        assert_eq!(env.git(&["for-each-ref", "refs/remotes/tandem/"]), "", "{attack} wrote a ref");
    }
}

/// Attack (routing): a session of this machine in another repository has
/// the name a host has. A bare name typed in this repository went to the
/// host (the local session was not "here"), so text meant for a local
/// agent reached another machine's. It is refused, naming both, as a name
/// this repository and a host share is.
#[test]
fn a_name_a_local_session_of_another_repository_has_is_not_sent_to_a_host() {
    let Some((env, sshd)) = ready() else { return };
    let other = env.tmp.path().join("other");
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "other"]);
    std::fs::write(other.join("a.txt"), "a\n").expect("write");
    env.git_in(&other, &["add", "a.txt"]);
    env.git_in(&other, &["commit", "-q", "-m", "a"]);
    env.ok(&["--repo", other.to_str().expect("utf-8"), "new", "dup", "--agent", "shell", "--bg"]);
    new_remote_shell(&env, "dup");
    wait_for("the remote shell to run", || (remote_session(&sshd, "dup")["state"] == "running").then_some(()));

    let err = env.fails(&["send", "dup", "echo leaked-$((40+2))"]);
    assert!(err.contains("`tdr:dup`") && err.contains("`other/dup`"), "{err}");
    env.ok(&["send", "tdr:dup", "echo marker-$((1+1))"]);
    wait_for("the remote shell's marker", || env.ok(&["logs", "tdr:dup"]).contains("marker-2").then_some(()));
    assert!(!env.ok(&["logs", "tdr:dup"]).contains("leaked"), "a bare name meant for this machine went to the host");
}

/// Attack (no work lost): `rm HOST:NAME` of a session with uncommitted
/// work there refuses as a local `rm` does, exit 1, its worktree and
/// branch kept; `merge HOST:NAME` into a checkout with uncommitted
/// changes here, or with an untracked file the merge would overwrite,
/// refuses and moves nothing.
#[test]
fn rm_and_merge_of_a_remote_session_lose_no_work() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "keep");
    let path = PathBuf::from(remote_session(&sshd, "keep")["path"].as_str().expect("path").to_owned());
    remote_commit(&sshd, &path, "merged.txt", "from the remote\n", "Add merged.txt");
    let out = sshd.run_as_remote(&["sh", "-c", "echo unsaved > \"$1\"", "-", &path.join("wip.txt").to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let err = env.fails(&["rm", "tdr:keep"]);
    assert!(err.contains("keep"), "{err}");
    assert!(remote_sessions(&sshd).iter().any(|s| s["name"] == "keep"), "the session is kept");
    assert_eq!(remote_git(&sshd, &path, &["status", "--porcelain"]).trim(), "?? wip.txt", "its work is kept");

    let main = env.git(&["rev-parse", "main"]);
    std::fs::write(env.repo.join("README.md"), "edited here, not committed\n").expect("write");
    let err = env.fails(&["merge", "tdr:keep"]);
    assert!(err.contains("uncommitted"), "{err}");
    assert_eq!(env.git(&["rev-parse", "main"]), main);
    assert_eq!(std::fs::read_to_string(env.repo.join("README.md")).expect("read"), "edited here, not committed\n");
    env.git(&["checkout", "--", "README.md"]);

    std::fs::write(env.repo.join("merged.txt"), "mine, untracked\n").expect("write");
    let out = env.tandem(&["merge", "tdr:keep"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(env.git(&["rev-parse", "main"]), main, "main moved");
    assert_eq!(std::fs::read_to_string(env.repo.join("merged.txt")).expect("read"), "mine, untracked\n");
}

/// Attack: a destination or `--tandem PATH` given to `remote add` that
/// injects ssh options or shell (`-oProxyCommand=…`, `$(…)`, `;`). Bad
/// destinations are refused with nothing stored; a hostile `--tandem` is
/// one quoted word on the remote, run as nothing but a path.
#[test]
fn remote_add_runs_nothing_a_destination_or_tandem_path_injects() {
    let Some((env, sshd)) = remote_env() else { return };
    let marker = env.tmp.path().join("pwned");
    let run = format!("touch {}", marker.display());
    for destination in [
        format!("-oProxyCommand={run}"),
        format!("ssh://-oProxyCommand={run}"),
        format!("{} -oProxyCommand={run}", sshd.alias()),
        format!("{}\n-oProxyCommand={run}", sshd.alias()),
    ] {
        let out = env.tandem(&["remote", "add", "evil", "--", &destination]);
        assert_eq!(out.status.code(), Some(1), "{destination:?}: {}", stderr(&out));
        assert_no_controls("remote add's error", &stderr(&out));
        assert!(!marker.exists(), "{destination:?} ran a command here");
    }
    assert!(remotes(&env).is_empty(), "nothing was stored");

    sshd.install_tandem(&env);
    let remote_marker = sshd.home().join("pwned");
    for path in ["$(touch ~/pwned)", "x; touch ~/pwned", "x' ; touch ~/pwned; '", "`touch ~/pwned`"] {
        let out = env.tandem(&["remote", "add", "odd", sshd.alias(), "--tandem", path]);
        assert!(stderr(&out).contains("tandem remote install odd") || !out.status.success(), "{}", stderr(&out));
        assert!(!remote_marker.exists(), "--tandem {path:?} ran a command on the remote");
        let _ = env.tandem(&["remote", "rm", "odd"]);
    }
}

/// Attack (fault): a proxy that says hello, then nothing (its supervisor
/// hung). `list`, `remote list`, `fetch` and `merge` each give up within
/// the user's timeout, naming the host; `list` still prints.
#[test]
fn a_proxy_that_says_hello_then_nothing_holds_no_command_past_the_timeout() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "mute");
    env.ok(&["list"]);
    let version = env.ok(&["--version"]).split_whitespace().last().expect("version").to_owned();
    let hello = json!({ "protocol": tandem_core::protocol::REMOTE_PROTOCOL_VERSION, "tandem": version });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hello"), frame(&hello)).expect("write");
    sshd.install_file(&dir.path().join("hello"), ".fake-hello", "644");
    std::fs::write(dir.path().join("tandem"), "#!/bin/sh\ncat \"$HOME/.fake-hello\"\nexec sleep 30\n").expect("write");
    sshd.install_file(&dir.path().join("tandem"), ".local/bin/tandem", "755");

    for args in [&["list", "--json"][..], &["remote", "list"], &["fetch", "tdr:mute"], &["merge", "tdr:mute"]] {
        let start = Instant::now();
        let out = env.command_in(&env.repo, args).env("TANDEM_REMOTE_TIMEOUT", "1s").output().expect("run");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?} with a 1 s timeout");
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(said.contains("no answer within"), "{args:?}: {said}");
        if args[0] == "list" {
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
}

/// Attack (fault): the host freezes while a control master is connected
/// to it. Killing the `ssh` client at the timeout did not end the wait
/// (the master holds the client's pipes), so a session command waited
/// for `ServerAliveInterval` (45 s and more). `send`, `fetch` and
/// `remote doctor` give up within the user's timeout, naming the host.
#[test]
fn a_frozen_host_holds_no_session_command_past_the_timeout() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "cold");
    env.ok(&["list"]);
    assert!(!sshd.control_master_pids(&env.tandem_home).is_empty(), "a control master is up");
    sshd.freeze();
    let mut took = Vec::new();
    for args in [&["send", "tdr:cold", "echo hi"][..], &["fetch", "tdr:cold"], &["remote", "doctor", "tdr"]] {
        let start = Instant::now();
        let out = env.command_in(&env.repo, args).env("TANDEM_REMOTE_TIMEOUT", "1s").output().expect("run");
        took.push((args, start.elapsed(), out));
    }
    sshd.thaw();
    for (args, took, out) in took {
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?} with a 1 s timeout");
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(said.contains("tdr") && said.contains("no answer within"), "{args:?}: {said}");
    }
}

/// Attack (fault): the host freezes while attached. The detach key still
/// detaches at once (the agent there keeps running), instead of waiting
/// for ssh to give up on the host.
#[test]
fn the_detach_key_detaches_from_a_frozen_host_at_once() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "icy");
    wait_for("the remote shell to run", || (remote_session(&sshd, "icy")["state"] == "running").then_some(()));
    let pid = remote_agent_pid(&sshd, "icy");
    let mut term = env.pty(&["attach", "tdr:icy"], 24, 100);
    term.wait_for(PROMPT);
    term.type_line("echo warm=$((1+1))");
    term.wait_for("warm=2");
    sshd.freeze();
    let start = Instant::now();
    term.send(b"\x1c");
    let raw = wait_within("the attach to end", Duration::from_secs(90), || {
        let raw = term.raw_text();
        (raw.contains("detached from") || raw.contains("lost the connection")).then_some(raw)
    });
    let took = start.elapsed();
    sshd.thaw();
    assert!(took < Duration::from_secs(5), "detaching from a frozen host took {took:?}");
    assert!(raw.contains("detached from tdr:icy"), "{raw}");
    assert!(sshd.remote_pid_alive(pid), "the agent keeps running");
}

/// Attack: text the user gives (`--title`, a prompt) that reads like the
/// placeholder an env file's pipe takes on the link (`{env-file 0}`) was
/// replaced by the pipe's `/dev/fd/N` path there. Only an `--env-file`
/// value is a placeholder.
#[test]
fn text_that_reads_like_an_env_file_placeholder_reaches_the_remote_as_given() {
    let Some((env, sshd)) = ready() else { return };
    let file = env.tmp.path().join("vars.env");
    std::fs::write(&file, "PLAIN_VALUE=1\n").expect("write");
    env.ok(&[
        "new",
        "--on",
        "tdr",
        "placeholder",
        "--agent",
        "shell",
        "--bg",
        "--title",
        "{env-file 0}",
        "--env-file",
        file.to_str().expect("utf-8"),
    ]);
    let session = remote_session(&sshd, "placeholder");
    assert_eq!(session["title"], "{env-file 0}", "{session}");
}

/// Inodes of the TCP and UDP sockets listening on this machine
/// (`/proc/net/{tcp,tcp6,udp,udp6}`: state `0A` is LISTEN for TCP; every
/// bound UDP socket counts).
fn listening_inodes() -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for (file, listen_only) in [("tcp", true), ("tcp6", true), ("udp", false), ("udp6", false)] {
        let text = std::fs::read_to_string(format!("/proc/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9 && (!listen_only || fields[3] == "0A") {
                found.insert(fields[9].to_owned());
            }
        }
    }
    found
}

/// The socket inodes `pid` holds open.
fn socket_inodes(pid: i32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')).map(str::to_owned)
        })
        .collect()
}

/// No listening port on either side: with a remote session made, listed,
/// sent to and fetched, no process of the remote user and neither the
/// local supervisor nor any of its children holds a listening TCP socket
/// or a bound UDP one (the link is the user's own ssh).
#[test]
fn no_port_is_opened_on_either_side() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "quiet");
    env.ok(&["send", "quiet", "echo hi"]);
    env.ok(&["list"]);
    env.ok(&["fetch", "quiet"]);
    // A local session too, so the local supervisor and a host run.
    env.ok(&["new", "here", "--agent", "shell", "--bg"]);
    let listening = listening_inodes();
    let remote: Vec<i32> = sshd.remote_pids();
    assert!(!remote.is_empty(), "the remote user's supervisor and host run");
    let supervisor = env.supervisor_pid().expect("the local supervisor runs");
    let mut local = vec![supervisor];
    for entry in std::fs::read_dir("/proc").expect("/proc").filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(supervisor)
            || (ppid == Some(1) && String::from_utf8_lossy(&cmd).contains(env.tandem_home.to_str().expect("utf-8")))
        {
            local.push(pid);
        }
    }
    for (side, pids) in [("remote", &remote), ("local", &local)] {
        for pid in pids {
            let open: Vec<String> = socket_inodes(*pid).into_iter().filter(|i| listening.contains(i)).collect();
            let cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
                .replace('\0', " ");
            assert!(open.is_empty(), "{side} process {pid} ({cmd}) listens on a port: sockets {open:?}");
        }
    }
}

/// A session named `NAME-wip` keeps its fetched branch when session
/// `NAME` is fetched (clean: its uncommitted-work ref is dropped; dirty:
/// written): uncommitted work lives under `refs/remotes/tandem-wip/`.
#[test]
fn fetching_a_session_leaves_another_named_like_its_work_alone() {
    let Some((env, sshd)) = ready() else { return };
    new_remote_shell(&env, "fix");
    new_remote_shell(&env, "fix-wip");
    let path = PathBuf::from(remote_session(&sshd, "fix-wip")["path"].as_str().expect("path").to_owned());
    let commit = remote_commit(&sshd, &path, "other.txt", "other\n", "fix-wip's own work");
    env.ok(&["fetch", "fix-wip"]);
    let fetched = || env.git(&["rev-parse", "refs/remotes/tandem/tdr/fix-wip"]).trim().to_owned();
    assert_eq!(fetched(), commit);
    env.ok(&["fetch", "fix"]);
    assert_eq!(fetched(), commit, "fetching fix (clean) dropped fix-wip's branch ref");
    let fix_path = PathBuf::from(remote_session(&sshd, "fix")["path"].as_str().expect("path").to_owned());
    sshd.run_as_remote(&["sh", "-c", &format!("echo draft > {}/draft.txt", fix_path.display())]);
    env.ok(&["fetch", "fix"]);
    assert_eq!(fetched(), commit, "fetching fix (dirty) overwrote fix-wip's branch ref");
    let wip = env.git(&["show", "refs/remotes/tandem-wip/tdr/fix:draft.txt"]);
    assert_eq!(wip, "draft\n");
}
