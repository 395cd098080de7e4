//! Crash safety, proven by fault points (issue 17): a `kill -9` of the
//! supervisor mid-`git worktree add` of a large tree (finding 5), and the
//! database deleted under a running supervisor (finding 7). Each attack
//! arms `TANDEM_FAULTS` (`tandem_core::fault`), runs the command, and
//! checks that the next command leaves a state that needs no explanation:
//! the name reusable, no worktree locked, no folder nobody owns, and
//! `doctor` content.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{TestEnv, stderr, wait_for};

/// A test environment whose `tandem` (and so the supervisor it starts)
/// reads the fault file `faults`, and whose repository holds a large
/// tree: 2,000 files, then `zz.slow`, checked out through a smudge filter
/// that is `cat` until [`slow_checkouts`] makes it sleep.
fn crash_env() -> (TestEnv, PathBuf) {
    let mut env = TestEnv::new();
    let faults = env.tmp.path().join("faults");
    env.env.push(("TANDEM_FAULTS".into(), faults.to_string_lossy().into_owned()));
    for d in 0..20 {
        let dir = env.repo.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).expect("dir");
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.txt")), format!("{d} {f}\n")).expect("write");
        }
    }
    std::fs::write(env.repo.join(".gitattributes"), "*.slow filter=slow\n").expect("write");
    std::fs::write(env.repo.join("zz.slow"), "last\n").expect("write");
    env.git(&["config", "filter.slow.smudge", "cat"]);
    env.git(&["config", "filter.slow.clean", "cat"]);
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "a large tree"]);
    (env, faults)
}

/// Makes every checkout of `zz.slow` take 6 s (`slow`) or none: git is
/// mid-checkout, files written, when the fault kills the supervisor, and
/// goes on for seconds after unless something ends it.
fn slow_checkouts(env: &TestEnv, slow: bool) {
    env.git(&["config", "filter.slow.smudge", if slow { "sleep 6; cat" } else { "cat" }]);
}

/// Runs `tandem ARGS` with `git:worktree-add 300 self` armed: the
/// supervisor is killed 300 ms into its `git worktree add`, mid-checkout.
/// Returns the killed supervisor's pid (its process group's id) once the
/// command has ended.
fn kill_supervisor_mid_checkout(env: &TestEnv, faults: &Path, args: &[&str]) -> i32 {
    slow_checkouts(env, true);
    std::fs::write(faults, "git:worktree-add 300 self\n").expect("arm");
    let out = env.command_in(&env.repo, args).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run");
    let fired = PathBuf::from(format!("{}.fired", faults.display()));
    let text = std::fs::read_to_string(&fired).unwrap_or_else(|_| panic!("the fault did not fire: {}", stderr(&out)));
    assert!(!out.status.success(), "tandem {args:?} should fail when its supervisor dies");
    std::fs::remove_file(&fired).expect("disarm");
    slow_checkouts(env, false);
    text.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("the killed pid")
}

/// Asserts that nothing the killed supervisor started runs any more: the
/// next supervisor ended it before reconciling, so it cannot write into
/// (or unlock, or delete) a worktree reconciled or made since.
fn assert_orphans_ended(pgid: i32) {
    let left = tandem_core::process::running_members(pgid);
    assert!(left.is_empty(), "the killed supervisor's git commands still run after the next command: {left:?}");
}

/// Waits until nothing the killed supervisor started runs any more (its
/// git, that git's checkout child, the filter): whatever they would
/// write is written.
fn wait_orphans_gone(pgid: i32) {
    wait_for("the killed supervisor's git commands to end", || {
        tandem_core::process::running_members(pgid).is_empty().then_some(())
    });
}

/// The state the next command must leave: no worktree locked, every
/// folder in tandem's worktrees folder a session's, `doctor` content.
fn assert_no_leftovers(env: &TestEnv) {
    let worktrees = env.git(&["worktree", "list", "--porcelain"]);
    assert!(!worktrees.contains("locked"), "a worktree stays locked: {worktrees}");
    let sessions: Vec<PathBuf> = env.sessions().iter().filter_map(|s| s["path"].as_str().map(PathBuf::from)).collect();
    let dir = env.tandem_home.join("data/worktrees");
    for repo_dir in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(repo_dir.path()).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            assert!(sessions.contains(&path), "{} is left with no session: {sessions:?}", path.display());
            assert!(worktrees.contains(&*path.to_string_lossy()), "{} is not a git worktree", path.display());
        }
    }
    let report = env.ok(&["doctor"]);
    assert!(report.contains("all sessions are in order"), "{report}");
}

/// A session's worktree is whole: registered, unlocked, every file there.
fn assert_whole(env: &TestEnv, name: &str) {
    let path = env.path_of(name);
    assert!(path.join("d19/f099.txt").exists() && path.join("zz.slow").exists(), "{} is not whole", path.display());
    assert_eq!(env.git_in(&path, &["status", "--porcelain"]), "", "{} differs from its branch", path.display());
}

#[test]
fn issue_17_5_kill_during_worktree_add_of_new_leaves_the_name_reusable() {
    let (env, faults) = crash_env();
    let killed = kill_supervisor_mid_checkout(&env, &faults, &["new", "same", "--bg", "--agent", "shell"]);
    // The next command: the same name works.
    env.ok(&["new", "same", "--bg", "--agent", "shell"]);
    assert_orphans_ended(killed);
    wait_orphans_gone(killed);
    env.wait_state("same", "running");
    assert_whole(&env, "same");
    assert_no_leftovers(&env);
}

#[test]
fn issue_17_5_kill_during_worktree_add_of_fork_leaves_the_name_reusable() {
    let (env, faults) = crash_env();
    env.ok(&["new", "source", "--bg", "--agent", "shell"]);
    let killed = kill_supervisor_mid_checkout(&env, &faults, &["fork", "source", "copy"]);
    env.ok(&["fork", "source", "copy"]);
    assert_orphans_ended(killed);
    wait_orphans_gone(killed);
    assert_whole(&env, "copy");
    assert_no_leftovers(&env);
}

#[test]
fn issue_17_5_kill_during_task_new_leaves_no_task_without_trials() {
    let (env, faults) = crash_env();
    let task = ["task", "new", "Do x", "--trials", "3", "--agents", "shell", "--base", "head"];
    let killed = kill_supervisor_mid_checkout(&env, &faults, &task);
    // The next command's supervisor undoes the trial cut short, and with
    // it the task, which has no trial left.
    env.ok(&["list"]);
    let out = env.ok(&["task", "list"]);
    assert!(!out.contains("do-x"), "a task with no trial stays: {out}");
    // A rerun makes the same task, under the same name.
    let out = env.ok(&task);
    assert!(out.contains("task do-x: 3 trial(s)"), "{out}");
    wait_orphans_gone(killed);
    for t in 1..=3 {
        assert_whole(&env, &format!("do-x-t{t}"));
    }
    assert_no_leftovers(&env);
}

#[test]
fn issue_17_5_kill_during_restore_lets_a_retried_restore_work() {
    let (env, faults) = crash_env();
    env.ok(&["new", "back", "--bg", "--agent", "shell"]);
    std::fs::write(env.path_of("back").join("wip.txt"), "keep me\n").expect("write");
    env.ok(&["archive", "back"]);
    let killed = kill_supervisor_mid_checkout(&env, &faults, &["restore", "back"]);
    let out = env.tandem(&["restore", "back"]);
    assert!(out.status.success(), "a retried restore fails: {}", stderr(&out));
    wait_orphans_gone(killed);
    let path = env.path_of("back");
    assert_eq!(std::fs::read_to_string(path.join("wip.txt")).expect("wip"), "keep me\n");
    assert!(path.join("d19/f099.txt").exists() && path.join("zz.slow").exists());
    assert!(!env.git(&["worktree", "list", "--porcelain"]).contains("locked"));
    assert_no_leftovers(&env);
    // A folder of the user's in the way: the advice is restore's own.
    env.ok(&["archive", "back"]);
    std::fs::create_dir_all(path.join("mine")).expect("a folder in the way");
    let before = env.repo_state();
    let err = env.fails(&["restore", "back"]);
    assert!(err.contains("is in the way of restoring session `back`"), "{err}");
    assert!(err.contains("then run `tandem restore back` again"), "{err}");
    assert_eq!(env.repo_state(), before, "a refused restore changes nothing");
    assert!(path.join("mine").is_dir());
}

#[test]
fn issue_17_5_kill_during_doctor_fix_is_reported_and_mended() {
    let (env, faults) = crash_env();
    env.ok(&["new", "gone", "--bg", "--agent", "shell"]);
    env.ok(&["stop", "gone"]);
    std::fs::remove_dir_all(env.path_of("gone")).expect("rm -rf");
    let killed = kill_supervisor_mid_checkout(&env, &faults, &["doctor", "--fix"]);
    // The next command, while the killed supervisor's git still checks out.
    let report = env.ok(&["doctor"]);
    assert!(!report.contains("all sessions are in order"), "a half checkout is not in order: {report}");
    let fixed = env.ok(&["doctor", "--fix"]);
    assert!(fixed.contains("fixed"), "{fixed}");
    wait_orphans_gone(killed);
    assert_whole(&env, "gone");
    assert_no_leftovers(&env);
}

#[test]
fn issue_17_7_a_deleted_database_stops_the_supervisor_and_doctor_adopts_the_worktrees() {
    let env = TestEnv::new();
    env.ok(&["new", "kept", "--bg", "--agent", "shell"]);
    env.wait_state("kept", "running");
    env.ok(&["new", "idle", "--bg", "--agent", "shell"]);
    env.ok(&["stop", "idle"]);
    let kept = env.path_of("kept");
    let idle = env.path_of("idle");
    let supervisor = env.supervisor_pid().expect("supervisor");
    let host = host_pid(&env, "kept").expect("host pid");
    let db = env.tandem_home.join("state/tandem.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    // The supervisor stops serving from the file that is gone.
    wait_for("the supervisor to stop", || (!tandem_core::process::is_running(supervisor)).then_some(()));
    // The next commands agree with each other: no session is known ...
    assert!(env.sessions().is_empty());
    let out = env.tandem(&["list"]);
    assert!(
        stderr(&out).contains("2 folder(s) in") && stderr(&out).contains("`tandem doctor --fix` adopts"),
        "{}",
        stderr(&out)
    );
    env.fails(&["set", "kept", "--pin"]);
    // ... until doctor --fix adopts the worktrees, the live host too.
    let report = env.ok(&["doctor"]);
    assert!(report.contains("belongs to no session"), "{report}");
    let fixed = env.ok(&["doctor", "--fix"]);
    assert!(fixed.contains("adopt it as session kept"), "{fixed}");
    assert_eq!(env.path_of("kept"), kept);
    assert_eq!(env.path_of("idle"), idle);
    assert_eq!(env.session("kept")["state"], "running", "{}", env.session("kept"));
    assert_eq!(host_pid(&env, "kept"), Some(host), "the live host is the adopted session's");
    assert_eq!(env.session("idle")["state"], "stopped");
    env.ok(&["set", "kept", "--pin"]);
    env.ok(&["new", "after", "--bg", "--agent", "shell"]);
    env.wait_state("after", "running");
    let report = env.ok(&["doctor"]);
    assert!(report.contains("all sessions are in order"), "{report}");
}

/// A session's host pid, as the database has it.
fn host_pid(env: &TestEnv, name: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    conn.query_row("SELECT host_pid FROM sessions WHERE slug = ?1 AND state != 'removed'", [name], |r| r.get(0))
        .expect("a row")
}

/// Runs `tandem ARGS` with the fault point `point` armed and waits for it
/// to fire; the command fails (its supervisor, or itself, is killed).
fn kill_at(env: &TestEnv, faults: &Path, point: &str, args: &[&str]) {
    std::fs::write(faults, format!("{point}\n")).expect("arm");
    let out = env.command_in(&env.repo, args).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run");
    let fired = PathBuf::from(format!("{}.fired", faults.display()));
    assert!(fired.exists(), "{point} did not fire: {}", stderr(&out));
    assert!(!out.status.success(), "tandem {args:?} should fail when killed at {point}");
    std::fs::remove_file(&fired).expect("disarm");
}

#[test]
fn issue_17_5_kill_right_after_each_checkout_leaves_names_reusable() {
    let (env, faults) = crash_env();
    // The supervisor, once `new`'s worktree is made.
    kill_at(&env, &faults, "new.worktree-added", &["new", "made", "--bg", "--agent", "shell"]);
    env.ok(&["new", "made", "--bg", "--agent", "shell"]);
    assert_whole(&env, "made");
    // The supervisor, once `restore`'s worktree is made.
    std::fs::write(env.path_of("made").join("wip.txt"), "keep me\n").expect("write");
    env.ok(&["archive", "made"]);
    kill_at(&env, &faults, "restore.worktree-added", &["restore", "made"]);
    env.ok(&["restore", "made"]);
    assert_eq!(std::fs::read_to_string(env.path_of("made").join("wip.txt")).expect("wip"), "keep me\n");
    // `task new` itself, once the task is named, before any trial; and
    // the supervisor once it stored the task, before its first trial.
    let task = ["task", "new", "Do y", "--trials", "2", "--agents", "shell", "--base", "head"];
    kill_at(&env, &faults, "task.named", &task);
    kill_at(&env, &faults, "task.stored", &task);
    let out = env.ok(&task);
    assert!(out.contains("task do-y: 2 trial(s)"), "{out}");
    assert_no_leftovers(&env);
}

/// A creation cut short while a git the killed process started still
/// works on its worktree (here a stand-in: a `git` naming the worktree,
/// blocked on its input) is not undone under that git: the next
/// supervisor waits for it to end, then undoes the creation, without
/// another command.
#[test]
fn an_interrupted_creation_is_undone_once_its_git_has_ended() {
    let env = TestEnv::new();
    env.ok(&["new", "cut", "--bg", "--agent", "shell", "--base", "head"]);
    env.wait_state("cut", "running");
    let path = env.path_of("cut");
    // As a creation cut short: no host, the row still `creating`.
    env.ok(&["daemon", "stop"]);
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let (host, agent): (i32, i32) = db
        .query_row("SELECT host_pid, agent_pid FROM sessions WHERE slug = 'cut'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("pids");
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(agent), nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(host), nix::sys::signal::Signal::SIGKILL);
    wait_for("the host to end", || (!Path::new(&format!("/proc/{host}/stat")).exists()).then_some(()));
    db.execute("UPDATE sessions SET state = 'creating', host_pid = NULL, agent_pid = NULL WHERE slug = 'cut'", [])
        .expect("mark creating");
    let mut git = std::process::Command::new("git")
        .args(["hash-object", "--stdin", "--"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git");
    // The next command starts a supervisor, which reconciles.
    env.ok(&["list"]);
    let state =
        || -> Option<String> { db.query_row("SELECT state FROM sessions WHERE slug = 'cut'", [], |r| r.get(0)).ok() };
    // It says it waits (and tries again twice more) before anything else.
    let log = env.tandem_home.join("state/supervisor.log");
    wait_for("the supervisor to wait for the git", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.matches("git is still at work; waiting").count() >= 3).then_some(())
    });
    let waiting = state();
    let still_there = path.is_dir();
    drop(git.stdin.take());
    let _ = git.wait();
    assert_eq!(waiting.as_deref(), Some("creating"), "undone while its git still ran");
    assert!(still_there, "the worktree went while its git still ran");
    wait_for("the creation to be undone", || state().is_none().then_some(()));
    assert!(!path.exists(), "{} stays", path.display());
    assert_no_leftovers(&env);
}

/// A lock file a git of the killed supervisor held (here its checkout's
/// smudge filter holds `packed-refs.lock` open and sleeps, as a git cut
/// short between taking a lock and letting it go) is not left for every
/// later git to refuse on: the next supervisor ends what the last one
/// left running, removes the locks they held, and undoes the creation.
#[test]
fn a_lock_held_by_what_a_killed_supervisor_left_running_is_removed() {
    let env = TestEnv::new();
    let lock = env.repo.join(".git/packed-refs.lock");
    env.git(&["config", "filter.hold.clean", "cat"]);
    std::fs::write(env.repo.join(".gitattributes"), "held.txt filter=hold\n").expect("write");
    std::fs::write(env.repo.join("held.txt"), "held\n").expect("write");
    env.git(&["add", ".gitattributes", "held.txt"]);
    env.git(&["commit", "-q", "-m", "a held file"]);
    env.git(&["config", "filter.hold.smudge", &format!("exec 3>'{}'; sleep 30; cat", lock.display())]);
    let mut new = env
        .command_in(&env.repo, &["new", "cut", "--bg", "--agent", "shell", "--base", "head"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("new");
    wait_for("the checkout's filter to hold the lock", || lock.exists().then_some(()));
    let supervisor = env.supervisor_pid().expect("a supervisor");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(supervisor), nix::sys::signal::Signal::SIGKILL).expect("kill");
    let _ = new.wait();
    env.git(&["config", "--unset", "filter.hold.smudge"]);
    env.ok(&["list"]);
    let log = env.tandem_home.join("state/supervisor.log");
    wait_for("the creation to be undone", || (!env.ok(&["list"]).lines().any(|l| l.starts_with("cut "))).then_some(()));
    assert!(!lock.exists(), "the lock stays: {}", std::fs::read_to_string(&log).unwrap_or_default());
    env.git(&["branch", "scratch"]);
    env.git(&["branch", "-D", "scratch"]);
    assert_no_leftovers(&env);
}
