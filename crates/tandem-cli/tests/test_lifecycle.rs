//! The main job with the `shell` agent: new → list → attach → detach →
//! logs → stop → rm, and rm's refusal to lose work.

use std::path::PathBuf;

use crate::common::{TestEnv, stderr, stdout, wait_for};

fn new_shell(env: &TestEnv, name: &str) -> PathBuf {
    let out = env.ok(&["new", name, "--agent", "shell", "--bg"]);
    let (slug, path) = out.trim().split_once('\t').expect("`name<TAB>path` on stdout");
    assert_eq!(slug, name);
    PathBuf::from(path)
}

#[test]
fn shell_session_new_list_attach_detach_logs_stop_rm() {
    let env = TestEnv::new();
    let path = new_shell(&env, "fix-login");

    // The worktree is a checkout of a new branch made from HEAD, outside
    // the repository, under TANDEM_HOME.
    assert!(path.starts_with(&env.tandem_home), "{}", path.display());
    assert!(path.join("README.md").is_file());
    assert_eq!(env.git_in(&path, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "fix-login");
    assert_eq!(env.git(&["rev-parse", "fix-login"]), env.git(&["rev-parse", "main"]));

    let s = env.wait_state("fix-login", "running");
    assert_eq!(s["branch"], "fix-login");
    assert_eq!(s["agent"], "shell");
    assert_eq!(s["base"], "main");
    assert_eq!(s["dirty"], false);
    assert_eq!((s["ahead"].as_u64(), s["behind"].as_u64()), (Some(0), Some(0)));
    assert_eq!(PathBuf::from(s["path"].as_str().expect("path")), path);
    let table = env.ok(&["ls"]);
    assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("fix-login") && l.contains("running")), "{table}");

    // Attach through a real terminal: the shell runs in the worktree.
    let mut term = env.pty(&["attach", "fix-login"], 24, 100);
    term.wait_for(crate::common::PROMPT);
    // The detach key shows on the bottom row, then the screen is redrawn.
    term.wait_for("ctrl-\\ detaches; the agent keeps running");
    wait_for("the hint to be drawn over", || (!term.contents().contains("detaches")).then_some(()));
    term.wait_for(crate::common::PROMPT);
    term.type_line("echo result=$((6*7)) in $(basename $PWD)");
    term.wait_for("result=42 in fix-login");
    term.send(b"\x1c"); // ctrl-\, the default detach key
    assert_eq!(term.wait_exit(), 0);
    term.wait_for_raw("detached from fix-login");
    drop(term);
    env.wait_state("fix-login", "running");

    // Logs: scrollback and screen as text.
    let logs = env.ok(&["logs", "fix-login"]);
    assert!(logs.contains("result=42 in fix-login"), "{logs}");
    assert!(!logs.contains('\x1b'), "logs are plain text: {logs:?}");

    // Stop: the agent goes, the worktree stays.
    env.ok(&["stop", "fix-login"]);
    let s = env.wait_state("fix-login", "stopped");
    assert!(path.is_dir());
    assert_eq!(s["dirty"], false);
    // Logs still work from the log file once the host is gone.
    assert!(env.ok(&["logs", "fix-login"]).contains("result=42 in fix-login"));

    // Remove: nothing to lose, so no snapshot; the worktree is gone when
    // rm returns, git's records of it and the branch follow at once.
    let out = env.ok(&["rm", "fix-login"]);
    assert!(!out.contains("snapshot"), "{out}");
    assert!(!path.exists());
    wait_for("the branch and the worktree record to go", || {
        let gone = env.git(&["branch", "--list", "fix-login"]).is_empty()
            && env.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count() == 1;
        gone.then_some(())
    });
    assert!(env.sessions().is_empty());
}

#[test]
fn rm_refuses_to_lose_work_and_force_keeps_an_archive_ref() {
    let env = TestEnv::new();
    let path = new_shell(&env, "risky");
    std::fs::write(path.join("notes.txt"), "untracked work\n").expect("write");
    std::fs::write(path.join("README.md"), "# changed\n").expect("write");
    env.git_in(&path, &["add", "README.md"]); // staged: the agent's index must survive as it is
    let index_before = std::fs::read(env.git_in(&path, &["rev-parse", "--git-path", "index"]).trim()).expect("index");

    let before = env.repo_state();
    let err = env.fails(&["rm", "risky"]);
    assert!(err.contains("1 changed file") && err.contains("1 untracked file"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(env.repo_state(), before, "a refused rm changes nothing");
    assert!(path.join("notes.txt").is_file());
    env.wait_state("risky", "running");
    let index_after = std::fs::read(env.git_in(&path, &["rev-parse", "--git-path", "index"]).trim()).expect("index");
    assert_eq!(index_before, index_after, "the agent's index is untouched");

    // --wait: the branch is gone by the time rm returns.
    let out = env.ok(&["rm", "--force", "--wait", "risky"]);
    let archive = out
        .lines()
        .find_map(|l| l.strip_prefix("snapshot kept at "))
        .unwrap_or_else(|| panic!("no archive ref printed: {out}"))
        .to_owned();
    assert!(archive.starts_with("refs/tandem/archive/risky/"), "{archive}");
    assert_eq!(env.git(&["show", &format!("{archive}:notes.txt")]), "untracked work\n");
    assert_eq!(env.git(&["show", &format!("{archive}:README.md")]), "# changed\n");
    assert_eq!(env.git(&["rev-parse", &format!("{archive}^")]), env.git(&["rev-parse", "main"]));
    assert!(!path.exists());
    assert_eq!(env.git(&["branch", "--list", "risky"]), "");
}

#[test]
fn rm_refuses_unpushed_commits_and_the_archive_keeps_them() {
    let env = TestEnv::new();
    let path = new_shell(&env, "committed");
    std::fs::write(path.join("feature.txt"), "feature\n").expect("write");
    env.git_in(&path, &["add", "feature.txt"]);
    env.git_in(&path, &["commit", "-q", "-m", "add feature"]);
    let tip = env.git_in(&path, &["rev-parse", "HEAD"]);
    env.ok(&["stop", "committed"]);

    let err = env.fails(&["rm", "committed"]);
    assert!(err.contains("1 commit not on main or any remote"), "{err}");
    assert!(path.is_dir());

    let out = env.ok(&["rm", "--force", "committed"]);
    let archive = out.lines().find_map(|l| l.strip_prefix("snapshot kept at ")).expect("archive ref").to_owned();
    // A clean tree: the snapshot commit's parent is the branch tip.
    assert_eq!(env.git(&["rev-parse", &format!("{archive}^")]), tip);
    assert_eq!(env.git(&["show", &format!("{archive}:feature.txt")]), "feature\n");
}

#[test]
fn two_terminals_attach_at_once_and_resizes_reach_the_agent() {
    let env = TestEnv::new();
    new_shell(&env, "shared");
    let mut first = env.pty(&["attach", "shared"], 30, 100);
    first.wait_for(crate::common::PROMPT);
    let mut second = env.pty(&["attach", "shared"], 30, 100);
    second.wait_for(crate::common::PROMPT);
    first.type_line("echo from-first-$((1+1))");
    second.wait_for("from-first-2");
    second.type_line("stty size");
    first.wait_for("30 100");

    // The latest client's size wins, as with tmux's `window-size latest`.
    resize_and_check(&mut first, 40, 120);
    first.send(b"\x1c");
    assert_eq!(first.wait_exit(), 0);
    drop(first);
    resize_and_check(&mut second, 35, 90);
    second.send(b"\x1c");
    assert_eq!(second.wait_exit(), 0);
}

/// Resizes the client's terminal and waits until the agent sees the size:
/// asks the shell for its size, waits for the answer, and asks again
/// while the answer is the old size (the resize travels on its own).
fn resize_and_check(term: &mut crate::common::Pty, rows: u16, cols: u16) {
    term.resize(rows, cols);
    for attempt in 1..=100 {
        // `$((…))` so the marker is in the answer, not the typed line.
        term.type_line(&format!("echo size-{rows}-{cols}-$(({attempt}+0)): $(stty size)"));
        let screen = term.wait_for(&format!("size-{rows}-{cols}-{attempt}: "));
        if screen.contains(&format!("size-{rows}-{cols}-{attempt}: {rows} {cols}")) {
            return;
        }
    }
    panic!("the agent never saw the size {rows}x{cols}:\n{}", term.contents());
}

#[test]
fn an_agent_that_exits_shows_its_exit_code_and_logs_follow_until_then() {
    let env = TestEnv::new();
    env.ok(&["new", "ticker", "--bg", "--agent", "sh -c 'for i in 1 2 3; do echo tick-$i; sleep 0.3; done; exit 3'"]);
    let follow = env.command_in(&env.repo, &["logs", "--follow", "ticker"]).output().expect("logs --follow");
    assert!(follow.status.success(), "{}", stderr(&follow));
    let text = stdout(&follow);
    assert!(text.contains("tick-3"), "logs --follow ends when the agent exits, having shown all: {text}");
    let s = env.wait_state("ticker", "failed");
    assert_eq!(s["exit_code"], 3);
    assert!(env.ok(&["ls"]).contains("failed (exit 3)"));
    let err = env.fails(&["attach", "ticker"]);
    assert!(err.contains("not running (failed (exit 3))"), "{err}");
}

#[test]
fn unnamed_sessions_get_readable_unique_names_and_the_default_agent_runs() {
    let env = TestEnv::new();
    let mut names = Vec::new();
    for _ in 0..2 {
        let out = env.ok(&["new", "--bg"]);
        let name = out.split('\t').next().expect("name").to_owned();
        let parts: Vec<&str> = name.split('-').collect();
        assert!(parts.len() == 2 && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_lowercase())), "{name}");
        names.push(name);
    }
    assert_ne!(names[0], names[1]);
    // Without `claude` on PATH the default agent is the shell.
    let s = env.wait_state(&names[0], "running");
    assert_eq!(s["agent"], "shell");
}

#[test]
fn the_agent_gets_the_environment_of_the_new_call_and_a_typed_prompt() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_TEST_MARKER".to_owned(), "marker-value-17".to_owned()));
    env.ok(&[
        "new",
        "envcheck",
        "--bg",
        "--agent",
        "shell",
        "-p",
        "echo marker=$TANDEM_TEST_MARKER session=$TANDEM_SESSION",
    ]);
    wait_for("the prompt's output", || {
        let logs = env.ok(&["logs", "envcheck"]);
        logs.contains("marker=marker-value-17 session=envcheck").then_some(())
    });
}

#[test]
fn new_in_a_terminal_attaches_at_once_and_detaching_leaves_it_running() {
    let env = TestEnv::new();
    let mut term = env.pty(&["new", "attached", "--agent", "shell"], 24, 90);
    term.wait_for(crate::common::PROMPT);
    term.type_line("echo in-$(git rev-parse --abbrev-ref HEAD)");
    term.wait_for("in-attached");
    term.send(b"\x1c");
    assert_eq!(term.wait_exit(), 0);
    let raw = term.wait_for_raw("detached from attached");
    assert!(raw.contains("detach: ctrl-\\"), "{raw}");
    env.wait_state("attached", "running");
}

#[test]
fn stop_kills_an_agent_that_ignores_the_polite_signals_after_the_grace_period() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.tandem_home.join("config")).expect("config dir");
    std::fs::write(env.tandem_home.join("config/config.toml"), "[stop]\ngrace_ms = 300\n").expect("config");
    env.ok(&[
        "new",
        "stubborn",
        "--bg",
        "--agent",
        "sh -c 'trap \"\" HUP TERM; echo ready; while :; do sleep 0.1; done'",
    ]);
    wait_for("the agent to start", || env.ok(&["logs", "stubborn"]).contains("ready").then_some(()));
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let pgid: i32 =
        db.query_row("SELECT agent_pid FROM sessions WHERE slug = 'stubborn'", [], |r| r.get(0)).expect("pid");
    assert!(tandem_core::process::group_alive(pgid));
    let started = std::time::Instant::now();
    env.ok(&["stop", "stubborn"]);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300), "SIGKILL came before the grace period");
    env.wait_state("stubborn", "stopped");
    wait_for("the whole process group to be gone", || (!tandem_core::process::group_alive(pgid)).then_some(()));
}

/// Found by hand: an agent that printed on its way out made `stop` return
/// before the host had recorded the end, so the host's late `stopped`
/// overwrote `removed` and the name stayed taken.
#[test]
fn a_removed_session_stays_removed_when_its_agent_prints_while_exiting() {
    let env = TestEnv::new();
    let agent = "sh -c 'trap \"echo goodbye; sleep 0.2; exit 0\" HUP TERM; echo ready; while :; do sleep 0.05; done'";
    env.ok(&["new", "chatty", "--bg", "--agent", agent]);
    wait_for("the agent to start", || env.ok(&["logs", "chatty"]).contains("ready").then_some(()));
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let host: i32 =
        db.query_row("SELECT host_pid FROM sessions WHERE slug = 'chatty'", [], |r| r.get(0)).expect("host pid");
    env.ok(&["rm", "chatty"]);
    // The host is what wrote the late `stopped`: once it is gone, nothing
    // can overwrite `removed` any more.
    wait_for("the session's host to exit", || (!tandem_core::process::is_alive(host)).then_some(()));
    assert!(env.sessions().is_empty());
    env.ok(&["new", "chatty", "--bg", "--agent", "shell"]);
    env.wait_state("chatty", "running");
}

#[test]
fn concurrent_news_in_one_repository_all_succeed_with_distinct_worktrees() {
    // Six CLIs at once: they also race to start the one supervisor.
    let env = TestEnv::new();
    let children: Vec<_> = (0..6)
        .map(|i| {
            let name = format!("par-{i}");
            env.command_in(&env.repo, &["new", &name, "--bg", "--agent", "shell"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn tandem new")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let sessions = env.sessions();
    assert_eq!(sessions.len(), 6);
    let worktrees = env.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 7, "{worktrees}");
    for s in &sessions {
        assert_eq!(s["state"], "running", "{s}");
    }
}
