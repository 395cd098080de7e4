//! Issue 19, `tandem list` and `tandem status` for a newcomer: the table
//! fits the terminal, is coloured on a terminal only, says its counts in
//! words, redraws itself with `--watch`, spans every repository with
//! `--all`; `status` is one line from the store, without a supervisor.

use tandem_core::store::{EventKind, NewEvent};

use crate::common::{TestEnv, hook_event, stderr, stdout};

/// `text` without its SGR and other CSI escape sequences.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Two sessions with long cells: a title, a dirty worktree, a commit.
fn two_sessions() -> TestEnv {
    let env = TestEnv::new();
    // No inferred state flips to `idle` while the test runs.
    env.user_config("[supervisor]\nquiet_secs = 100000\n");
    env.ok(&[
        "new",
        "alpha",
        "--bg",
        "--agent",
        "shell",
        "--title",
        "Fix the login redirect after the session expires",
    ]);
    env.ok(&["new", "beta-with-a-longer-name", "--bg", "--agent", "shell"]);
    let alpha = env.path_of("alpha");
    std::fs::write(alpha.join("README.md"), "# changed\n").expect("write");
    std::fs::write(alpha.join("new.txt"), "new\n").expect("write");
    env
}

#[test]
fn list_fits_80_columns_in_a_terminal_and_with_columns_set() {
    let mut env = two_sessions();
    // A terminal 80 wide: no line is longer.
    let pty = env.pty(&["list"], 24, 80);
    let raw = plain(&pty.wait_all_output());
    let lines: Vec<&str> = raw.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "a header and two rows, none wrapped:\n{raw}");
    for line in &lines {
        assert!(line.chars().count() <= 80, "{} columns: {line:?}\n{raw}", line.chars().count());
    }
    assert!(lines[0].starts_with("NAME") && lines[0].contains("STATE"), "{raw}");
    assert!(lines[1].starts_with("alpha") && lines[1].contains("1 changed, 1 new"), "{raw}");

    // Without a terminal: every column, the path too (for scripts).
    let full = env.ok(&["list"]);
    assert!(full.lines().next().expect("header").ends_with("PATH"), "{full}");
    assert!(full.lines().any(|l| l.chars().count() > 80), "{full}");
    // $COLUMNS narrows it too; --wide keeps every column.
    env.env.push(("COLUMNS".into(), "80".into()));
    let out = env.ok(&["list"]);
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "{line:?}\n{out}");
    }
    assert!(env.ok(&["list", "--wide"]).lines().next().expect("header").ends_with("PATH"));
    // --columns picks them, in its order.
    let out = env.ok(&["list", "--columns", "state,name,uncommitted"]);
    assert_eq!(out.lines().next(), Some("STATE    NAME                     UNCOMMITTED"), "{out}");
    let err = env.fails(&["list", "--columns", "nope"]);
    assert!(err.contains("unknown column `nope`") && err.contains("uncommitted"), "{err}");
}

#[test]
fn list_cells_say_their_counts_in_words() {
    let env = two_sessions();
    let alpha = env.path_of("alpha");
    env.git_in(&alpha, &["add", "README.md"]);
    env.git_in(&alpha, &["commit", "-qm", "readme"]);
    std::fs::write(env.repo.join("base.txt"), "moved\n").expect("write");
    env.git(&["add", "base.txt"]);
    env.git(&["commit", "-qm", "base moves"]);
    env.ok(&["set", "alpha", "--pin"]);
    let out = env.ok(&["list"]);
    let header = out.lines().next().expect("header");
    assert!(header.contains("UNCOMMITTED") && header.contains("COMMITS VS BASE"), "{out}");
    let alpha = out.lines().find(|l| l.starts_with("alpha")).expect("alpha's row");
    assert!(alpha.starts_with("alpha (pinned)"), "{out}");
    assert!(alpha.contains("  1 new  ") && alpha.contains("  1 ahead, 1 behind  "), "{out}");
    let beta = out.lines().find(|l| l.starts_with("beta")).expect("beta's row");
    assert!(beta.contains("  clean  ") && beta.contains("  1 behind  "), "{out}");
}

#[test]
fn list_is_coloured_on_a_terminal_only_and_never_with_no_color() {
    let mut env = two_sessions();
    let raw = env.pty(&["list"], 24, 250).wait_all_output();
    assert!(raw.contains("\u{1b}[32mrunning\u{1b}[0m"), "the state in green: {raw:?}");
    assert!(raw.contains("\u{1b}[33m1 changed, 1 new\u{1b}[0m"), "a dirty worktree in yellow: {raw:?}");
    // Not to a pipe.
    assert!(!env.ok(&["list"]).contains('\u{1b}'));
    // Not with NO_COLOR, even on a terminal.
    env.env.push(("NO_COLOR".into(), "1".into()));
    let raw = env.pty(&["list"], 24, 250).wait_all_output();
    assert!(!raw.contains('\u{1b}'), "{raw:?}");
    assert!(raw.contains("running"), "{raw:?}");
}

#[test]
fn list_watch_shows_a_new_session_without_running_again() {
    let env = TestEnv::new();
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    let mut pty = env.pty(&["list", "--watch"], 30, 200);
    pty.wait_for("alpha");
    pty.wait_for("ctrl-c to stop");
    env.ok(&["new", "second", "--bg", "--agent", "shell"]);
    let screen = pty.wait_for("second");
    assert!(screen.contains("alpha"), "{screen}");
    // ctrl-c ends it.
    pty.send(b"\x03");
    pty.wait_exit();
}

#[test]
fn list_all_shows_every_repository_with_a_repo_column() {
    let env = TestEnv::new();
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    let other = env.tmp.path().join("other");
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "other"]);
    env.git_in(&other, &["commit", "-q", "--allow-empty", "-m", "initial commit"]);
    let out = env.tandem_in(&other, &["new", "beta", "--bg", "--agent", "shell"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Here: only this repository's, and no REPO column.
    let here = env.ok(&["list"]);
    assert!(here.starts_with("NAME") && !here.contains("beta"), "{here}");
    // Anywhere, --all: both, each with its repository.
    let out = env.tandem_in(env.tmp.path(), &["list", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let starts =
        |words: &[&str]| table.lines().any(|l| l.split_whitespace().take(words.len()).eq(words.iter().copied()));
    assert!(starts(&["REPO", "NAME"]) && starts(&["repo", "alpha"]) && starts(&["other", "beta"]), "{table}");
    let out = env.tandem_in(env.tmp.path(), &["list", "--all", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let repo_of = |name: &str| {
        rows.as_array().expect("array").iter().find(|r| r["name"] == name).expect("row")["repo"]
            .as_str()
            .expect("repo")
            .to_owned()
    };
    assert!(repo_of("alpha").ends_with("/repo") && repo_of("beta").ends_with("/other"), "{rows}");
    let names = stdout(&env.tandem_in(env.tmp.path(), &["list", "--all", "--names"]));
    assert_eq!(names, "alpha\nbeta\n");
}

#[test]
fn status_is_one_line_from_the_store_without_a_supervisor() {
    let env = TestEnv::new();
    // Nothing yet: no store is made, no supervisor started.
    assert_eq!(env.ok(&["status"]), "no sessions\n");
    assert!(!env.tandem_home.join("state/tandem.db").exists());
    assert_eq!(env.supervisor_pid(), None);

    env.user_config("[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    env.ok(&["new", "beta", "--bg", "--agent", "shell"]);
    env.ok(&["new", "gamma", "--bg", "--agent", "shell"]);
    env.ok(&["stop", "gamma"]);
    let id = env.session("beta")["id"].as_str().expect("id").to_owned();
    let asked = serde_json::json!({
        "hook_event_name": "PermissionRequest",
        "tool_name": "Bash",
        "tool_input": { "command": "cargo test" },
    });
    hook_event(&env, &id, &asked);
    // Counted by the running supervisor (issue 23): the same line.
    assert_eq!(env.ok(&["status"]), "1 needs input (beta: Bash: cargo test), 1 running, 1 done\n");
    // The supervisor is not needed: stop it first.
    let supervisor = env.supervisor_pid().expect("a supervisor runs");
    env.ok(&["daemon", "stop"]);
    let stopped = || !tandem_core::process::is_running(supervisor);
    crate::common::wait_for("the supervisor to stop", || stopped().then_some(()));

    let line = env.ok(&["status"]);
    assert_eq!(line, "1 needs input (beta: Bash: cargo test), 1 running, 1 done\n");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).expect("JSON");
    assert_eq!(json["total"], 3, "{json}");
    assert_eq!(json["needs_input"]["name"], "beta", "{json}");
    assert_eq!(json["counts"][0], serde_json::json!({"state": "needs input", "count": 1}), "{json}");
    // Only this repository's, with --here (none elsewhere here).
    assert_eq!(env.ok(&["status", "--here"]), line);
    let now = env.supervisor_pid();
    assert!(now.is_none() || now == Some(supervisor), "status started a supervisor");
    assert!(stopped(), "status started a supervisor");
}

#[test]
fn new_with_an_unreachable_remote_says_so_soon_and_shows_progress_on_a_terminal() {
    let env = TestEnv::new();
    // A remote that takes the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    env.git(&["remote", "add", "origin", &format!("http://127.0.0.1:{port}/repo.git")]);

    let started = std::time::Instant::now();
    let out = env.tandem(&["new", "alpha", "--bg", "--agent", "shell"]);
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "note: cannot reach origin (no answer in 5 s; `base.fetch_timeout_ms` sets how long to wait); branching from main (HEAD) instead"
        ),
        "{err}"
    );
    assert!(elapsed < std::time::Duration::from_secs(12), "took {elapsed:?}");
    // No spinner when stderr is not a terminal.
    assert!(!err.contains('\u{1b}') && !err.contains('…'), "{err:?}");

    // On a terminal the wait says what it waits for, then clears.
    let pty = env.pty(&["new", "beta", "--bg", "--agent", "shell"], 24, 160);
    pty.wait_for_raw("creating the session (fetching the base, making the worktree)… ");
    let screen = pty.wait_for("branching from main (HEAD) instead");
    assert!(!screen.contains("creating the session"), "the spinner's line is cleared:\n{screen}");
}

/// Issue 21: `status` counts remote hosts' sessions as they last
/// answered, from the registry, never waiting on a host (here a silent
/// one); one waiting on the user is named `HOST:NAME`; once a host fails
/// to answer (`tandem list` records it), its sessions count as
/// `unreachable`.
#[test]
fn status_counts_remote_sessions_as_last_seen_without_asking_the_host() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_REMOTE_TIMEOUT".into(), "30s".into()));
    env.user_config("[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    let (_listener, port) = crate::test_view::silent_port();
    let rows = [("fix", "needs-input"), ("docs", "running")];
    crate::test_view::remote_with_rows(&env, "gpu", &format!("ssh://127.0.0.1:{port}"), &rows);
    let started = std::time::Instant::now();
    assert_eq!(env.ok(&["status"]), "1 needs input (gpu:fix), 2 running\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "status waited on the host");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).expect("JSON");
    assert_eq!(json["total"], 3, "{json}");
    assert_eq!(json["remote"], 2, "{json}");
    assert_eq!(json["needs_input"]["name"], "gpu:fix", "{json}");
    // Only this repository's with --here: a remote row's is on its host.
    assert_eq!(env.ok(&["status", "--here"]), "1 running\n");

    let out = env.command_in(&env.repo, &["list"]).env("TANDEM_REMOTE_TIMEOUT", "1s").output().expect("list");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.ok(&["status"]), "1 running, 2 unreachable\n");
}

#[test]
fn list_asks_a_running_supervisor_to_find_the_repository_and_runs_no_git() {
    // Issue 23: with 200 sessions on a busy machine the client's `git
    // rev-parse` was a quarter of a `tandem list`. A `git` that fails and
    // leaves a mark stands first on PATH; the supervisor, started before
    // with the real one, finds the repository from any folder of it.
    let mut env = two_sessions();
    // The agent's last message comes with the rows (read by the
    // supervisor), the latest of its kind.
    let alpha = env.session("alpha")["id"].as_str().expect("id").to_owned();
    let store = tandem_core::store::Store::open(&env.tandem_home.join("state/tandem.db")).expect("store");
    for (kind, text) in [
        (EventKind::Message, "first answer"),
        (EventKind::Message, "the tests pass now"),
        (EventKind::ToolCall, "cargo test"),
    ] {
        let event = NewEvent { session_id: &alpha, kind, text: text.into(), data: None, indexed: true };
        store.add_events(&[event]).expect("event");
    }
    drop(store);
    let fake = env.tmp.path().join("fake-bin");
    std::fs::create_dir_all(&fake).expect("mkdir");
    let marks = env.tmp.path().join("git-ran");
    std::fs::write(fake.join("git"), format!("#!/bin/sh\necho \"$@\" >> {}\nexit 128\n", marks.display()))
        .expect("write");
    std::fs::set_permissions(fake.join("git"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let sub = env.repo.join("deep/er");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let path = std::env::var("TEST_PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
    env.env.push(("PATH".into(), format!("{}:{path}", fake.display())));
    let out = env.tandem_in(&sub, &["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = rows.as_array().expect("rows").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["alpha", "beta-with-a-longer-name"]);
    let repo = std::fs::canonicalize(&env.repo).expect("repo");
    assert_eq!(rows[0]["repo"], repo.display().to_string(), "{rows}");
    assert_eq!(rows[0]["last_message"], "the tests pass now", "{rows}");
    assert_eq!(rows[1]["last_message"], serde_json::Value::Null, "{rows}");
    let table = plain(&stdout(&env.tandem_in(&sub, &["list", "--columns", "name"])));
    assert_eq!(
        table.lines().skip(1).map(str::trim).collect::<Vec<_>>(),
        ["alpha", "beta-with-a-longer-name"],
        "{table}"
    );
    assert!(!marks.exists(), "list ran git: {}", std::fs::read_to_string(&marks).unwrap_or_default());

    // Outside any repository the supervisor refuses, and the error is the
    // one a command without a supervisor gives.
    env.env.pop();
    let outside = env.tmp.path().join("not-a-repo");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let err = env.fails_in(&outside, &["list"]);
    assert!(err.contains("not inside a git repository"), "{err}");
}

#[test]
fn list_rendered_by_the_supervisor_shows_paths_under_the_clients_home() {
    // Issue 23: a running supervisor renders `tandem list` itself, so the
    // client decodes no rows. What only the client knows travels with the
    // request: its home folder (paths under it show as `~/…`), its width
    // and whether it wants colour. The supervisor runs with another HOME.
    let mut env = two_sessions();
    let worktree = env.path_of("alpha");
    let home = worktree.parent().and_then(std::path::Path::parent).expect("two folders up").to_owned();
    let rest = worktree.strip_prefix(&home).expect("under it").display().to_string();
    let supervisor_home = std::fs::read_to_string(format!("/proc/{}/environ", env.supervisor_pid().expect("running")))
        .expect("environ")
        .split('\0')
        .find_map(|v| v.strip_prefix("HOME=").map(str::to_owned))
        .expect("the supervisor's HOME");
    assert!(!worktree.starts_with(&supervisor_home), "{supervisor_home} holds {}", worktree.display());
    env.env.push(("HOME".into(), format!("{}/", home.display())));
    let out = env.ok(&["list", "--columns", "name,path"]);
    let alpha = out.lines().find(|l| l.starts_with("alpha")).expect("alpha's row");
    assert_eq!(alpha.split_whitespace().nth(1), Some(format!("~/{rest}").as_str()), "{out}");
    // A home folder that is only a prefix of the path's folder name is not.
    let prefix = home.display().to_string();
    env.env.push(("HOME".into(), prefix[..prefix.len() - 1].to_owned()));
    let out = env.ok(&["list", "--columns", "name,path"]);
    assert!(out.contains(&worktree.display().to_string()), "{out}");
}

#[test]
fn list_and_status_infer_states_with_the_clients_own_config_variables() {
    // The supervisor answers `list` and `status` (issue 23), but the
    // `supervisor.quiet_secs` that turns a quiet shell `idle` is the one
    // the client would load: its own `TANDEM_SUPERVISOR_QUIET_SECS`.
    let mut env = TestEnv::new();
    env.user_config("[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    assert!(env.ok(&["list"]).contains("running"));
    assert_eq!(env.ok(&["status"]), "1 running\n");
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "0".into()));
    let out = env.ok(&["list"]);
    assert!(out.contains("idle (inferred)"), "{out}");
    assert_eq!(env.ok(&["status"]), "1 idle\n");
    assert_eq!(env.ok(&["status", "--here"]), "1 idle\n");
    // A value that does not parse is refused, as without a supervisor.
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "soon".into()));
    let err = env.fails(&["list"]);
    assert!(err.contains("TANDEM_SUPERVISOR_QUIET_SECS"), "{err}");
}

#[test]
fn list_outside_a_repository_leaves_a_supervisor_of_another_version_running() {
    // `list` asks a running supervisor first (issue 23); one of another
    // version is replaced only by a command that needs a supervisor, not
    // by a `list` that then fails on its folder. A stand-in answers the
    // handshake as protocol 12 with the pid of a process of this test.
    let env = TestEnv::new();
    let socket = env.tandem_home.join("run/supervisor.sock");
    std::fs::create_dir_all(socket.parent().expect("run dir")).expect("mkdir");
    let mut bystander = std::process::Command::new("sleep").arg("60").spawn().expect("sleep");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let pid = bystander.id();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _: Option<serde_json::Value> = tandem_core::protocol::recv(&mut stream).ok().flatten();
            let hello = serde_json::json!({"type": "hello", "version": 12, "pid": pid});
            let _ = tandem_core::protocol::send(&mut stream, &hello);
        }
    });
    let outside = env.tmp.path().join("not-a-repo");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let err = env.fails_in(&outside, &["list"]);
    assert!(err.contains("not inside a git repository"), "{err}");
    assert!(bystander.try_wait().expect("wait").is_none(), "list signalled the older supervisor");
    bystander.kill().expect("kill");
    bystander.wait().expect("reap");
}

#[test]
fn status_counts_from_the_store_when_the_supervisor_does_not_answer() {
    // `status` asks a running supervisor first (issue 23), but a status
    // line must not hang on one that accepts and never answers (starting,
    // stuck): after `TALLY_WAIT` it counts from the store itself.
    let env = TestEnv::new();
    env.user_config("[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    env.ok(&["daemon", "stop"]);
    let socket = env.tandem_home.join("run/supervisor.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // Read nothing, answer nothing; keep it open.
            keep.lock().expect("lock").push(stream);
        }
    });
    let started = std::time::Instant::now();
    let out = env.ok(&["status"]);
    let took = started.elapsed();
    assert_eq!(out, "1 running\n");
    assert!(took < std::time::Duration::from_secs(5), "status waited {took:?}");
    assert!(!held.lock().expect("lock").is_empty(), "status never asked the stand-in");
}
