//! The fault matrix (issue 17): for each command × fault point × which
//! process dies (the supervisor, the CLI, a git child, the host), start
//! from a session that holds every kind of work (a commit on its branch,
//! a commit on a detached HEAD, a staged change, an unstaged change, an
//! untracked file, an edited `.worktreeinclude` file), kill there, run the
//! next command, and check:
//! - every byte of that work is still in the session's worktree or
//!   reachable from a ref under `refs/heads` or `refs/tandem`;
//! - no worktree stays locked;
//! - the session is usable (listed with its worktree there, or archived
//!   and `tandem restore NAME` works) or its name is free again
//!   (`tandem new NAME` works);
//! - `tandem doctor --fix` leaves `tandem doctor` with nothing to report.
//!
//! Faults are armed through `TANDEM_FAULTS` (`tandem_core::fault`, debug
//! builds only). Each test prints its part of the matrix, and
//! `scripts/test.sh` prints the total.

use std::path::Path;

use std::time::{Duration, Instant};

use crate::common::{TestEnv, stderr, wait_for};

/// Whether `f` says yes within `timeout`.
fn wait_within(_what: &str, timeout: Duration, mut f: impl FnMut() -> Option<bool>) -> bool {
    let start = Instant::now();
    loop {
        if f() == Some(true) {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether no session has an operation pending or is being created.
fn idle(env: &TestEnv) -> bool {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let busy: i64 = db
        .query_row("SELECT count(*) FROM sessions WHERE pending IS NOT NULL OR state = 'creating'", [], |r| r.get(0))
        .expect("count");
    busy == 0
}

/// The rows [`idle`] waits on: `slug state pending`, one per line.
fn busy_rows(env: &TestEnv) -> String {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let mut query = db
        .prepare("SELECT slug, state, pending FROM sessions WHERE pending IS NOT NULL OR state = 'creating'")
        .expect("query");
    let rows = query
        .query_map([], |r| {
            Ok(format!("{} {} {:?}", r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })
        .expect("rows");
    rows.filter_map(Result::ok).collect::<Vec<_>>().join("\n")
}

/// The state of the live (not removed) row called `name`, `None` when
/// there is none.
fn row_state(env: &TestEnv, name: &str) -> Option<String> {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let query = "SELECT state FROM sessions WHERE slug = ?1 AND state != 'removed' ORDER BY rowid DESC LIMIT 1";
    db.query_row(query, [name], |r| r.get(0)).ok()
}

/// The host pid the store records for session `name`.
fn host_pid(env: &TestEnv, name: &str) -> nix::unistd::Pid {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let pid: i32 =
        db.query_row("SELECT host_pid FROM sessions WHERE slug = ?1", [name], |r| r.get(0)).expect("a host pid");
    nix::unistd::Pid::from_raw(pid)
}

/// Who dies, and where.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// A fault point or `git:` line from `tandem_core::fault`: the
    /// process reaching it (the supervisor, or the CLI for
    /// `client.sent`) dies; `… git` lines kill only the git child.
    Point(&'static str),
    /// The session's host is killed (`kill -9` by pid) before the command.
    Host,
}

/// The work a session holds, to be found again after the fault.
struct Work {
    /// Commit on the session's branch.
    commit: String,
    /// Commit on a detached HEAD, child of `commit`.
    detached: String,
    /// `(path, content)` of the staged, unstaged, untracked and included files.
    files: Vec<(&'static str, String)>,
    /// The session holding it, and its worktree.
    owner: String,
    path: std::path::PathBuf,
    /// What `tandem doctor` finds in the seeded state (the detached HEAD).
    found: Vec<String>,
}

/// A repository whose `.env` is ignored and copied in by `.worktreeinclude`.
fn env_with_include() -> TestEnv {
    let mut env = TestEnv::new();
    std::fs::write(env.repo.join(".gitignore"), ".env\n").expect("write");
    std::fs::write(env.repo.join(".worktreeinclude"), ".env\n").expect("write");
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "include .env"]);
    std::fs::write(env.repo.join(".env"), "KEY=main\n").expect("write");
    let faults = env.tmp.path().join("faults");
    env.env.push(("TANDEM_FAULTS".to_owned(), faults.display().to_string()));
    env
}

/// Makes session `name` and gives it every kind of work.
fn seed(env: &TestEnv, name: &str) -> Work {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    fill(env, name)
}

/// Gives the existing session `name` every kind of work.
fn fill(env: &TestEnv, name: &str) -> Work {
    let path = env.path_of(name);
    let write = |file: &str, text: &str| std::fs::write(path.join(file), text).expect("write");
    write("c.txt", &format!("committed {name}\n"));
    env.git_in(&path, &["add", "c.txt"]);
    env.git_in(&path, &["commit", "-q", "-m", "on the branch"]);
    let commit = env.git_in(&path, &["rev-parse", "HEAD"]).trim().to_owned();
    env.git_in(&path, &["checkout", "-q", "--detach"]);
    write("d.txt", &format!("detached {name}\n"));
    env.git_in(&path, &["add", "d.txt"]);
    env.git_in(&path, &["commit", "-q", "-m", "on a detached HEAD"]);
    let detached = env.git_in(&path, &["rev-parse", "HEAD"]).trim().to_owned();
    let files = vec![
        ("s.txt", format!("staged {name}\n")),
        ("README.md", format!("unstaged {name}\n")),
        ("u.txt", format!("untracked {name}\n")),
        (".env", format!("KEY=edited {name}\n")),
    ];
    for (file, text) in &files {
        write(file, text);
    }
    env.git_in(&path, &["add", "s.txt"]);
    Work { commit, detached, files, owner: name.to_owned(), path, found: findings(env) }
}

/// The lines of `tandem doctor` that name a finding.
fn findings(env: &TestEnv) -> Vec<String> {
    env.ok(&["doctor"])
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with("sandbox limit") && !l.starts_with("bwrap"))
        .filter(|l| !l.starts_with("run `tandem doctor") && !l.starts_with("all sessions are in order"))
        .filter(|l| !l.starts_with("checkpoints:") && !l.starts_with("inotify watches:"))
        .map(str::to_owned)
        .collect()
}

/// Arms `line` in the fault file; returns the file a fired fault leaves.
fn arm(env: &TestEnv, line: &str) -> std::path::PathBuf {
    let fired = env.tmp.path().join("faults.fired");
    let _ = std::fs::remove_file(&fired);
    std::fs::write(env.tmp.path().join("faults"), format!("{line}\n")).expect("arm");
    fired
}

fn disarm(env: &TestEnv) {
    let _ = std::fs::remove_file(env.tmp.path().join("faults"));
}

/// The object ids reachable from `refs/heads` and `refs/tandem`.
fn reachable_objects(env: &TestEnv) -> String {
    env.git(&["rev-list", "--objects", "--branches", "--glob=refs/tandem"])
}

fn blob_id(env: &TestEnv, text: &str) -> String {
    let file = env.tmp.path().join("blob");
    std::fs::write(&file, text).expect("write");
    env.git(&["hash-object", &file.display().to_string()]).trim().to_owned()
}

/// Checks the matrix's promises for session `name` after `fault` hit
/// `command`; `Err` says which one broke.
fn check(env: &TestEnv, name: &str, work: &Work) -> Result<(), String> {
    let row = |name: &str| env.sessions().into_iter().chain(env.archived()).find(|s| s["name"] == name);
    let listed = row(name);
    let path = &work.path;
    let live = row(&work.owner).is_some_and(|s| s["state"] != "archived") && path.is_dir();
    // 1. Every byte of the work: in the live worktree, or reachable.
    let objects = reachable_objects(env);
    let in_refs = |oid: &str| objects.lines().any(|l| l.starts_with(oid));
    for commit in [&work.commit, &work.detached] {
        let in_worktree =
            live && env.command_git_in(path, &["merge-base", "--is-ancestor", commit, "HEAD"]).status.success();
        if !in_worktree && !in_refs(commit) {
            return Err(format!("commit {commit} is in no ref and not in the worktree"));
        }
    }
    for (file, text) in &work.files {
        let in_worktree = live && std::fs::read_to_string(path.join(file)).is_ok_and(|t| t == *text);
        if !in_worktree && !in_refs(&blob_id(env, text)) {
            return Err(format!("{file} ({text:?}) is in no ref and not in the worktree"));
        }
    }
    // 2. No worktree stays locked.
    let worktrees = env.git(&["worktree", "list", "--porcelain"]);
    if worktrees.lines().any(|l| l.starts_with("locked")) {
        return Err(format!("a worktree stays locked:\n{worktrees}"));
    }
    // 3. Usable, or the name is free.
    match &listed {
        Some(s) if s["state"] == "archived" => {
            let out = env.tandem(&["restore", name]);
            if !out.status.success() {
                return Err(format!("the archived session {name} cannot be restored: {}", stderr(&out)));
            }
        }
        Some(s) => {
            if s["state"] == "creating" || !Path::new(s["path"].as_str().unwrap_or_default()).is_dir() {
                return Err(format!("session {name} is listed but not usable: {s}"));
            }
        }
        None => {
            let out = env.tandem(&["new", name, "--bg", "--agent", "shell"]);
            if !out.status.success() {
                return Err(format!("the name {name} is not free again: {}", stderr(&out)));
            }
        }
    }
    // 4. doctor: after --fix, nothing but what the seeded state shows
    // (a worktree on a detached HEAD, which doctor leaves alone).
    env.ok(&["doctor", "--fix"]);
    let left: Vec<String> = findings(env).into_iter().filter(|f| !work.found.contains(f)).collect();
    if !left.is_empty() {
        return Err(format!("doctor still finds: {left:?}"));
    }
    // Every other live session stays whole: its worktree and its branch.
    for other in env.sessions() {
        let branch = other["branch"].as_str().unwrap_or_default();
        let there = Path::new(other["path"].as_str().unwrap_or_default()).is_dir();
        let known =
            env.command_git_in(&env.repo, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]);
        if !there || !known.status.success() {
            return Err(format!("session {} lost its worktree or its branch {branch}", other["name"]));
        }
    }
    Ok(())
}

/// Runs `command` (with `{}` for the session's name) on a seeded session
/// under each fault; `before` brings the session to the state the command
/// needs (e.g. archived). Returns the failures.
fn run_row(command: &[&str], faults: &[Fault], before: Option<&[&str]>, expect: Expect) {
    run_row_on(command, faults, before, Subject::Session, expect);
}

/// The checked session's state once the command has been carried out.
#[derive(Clone, Copy)]
enum Expect {
    /// No longer listed (`rm`).
    Gone,
    /// Archived.
    Archived,
    /// Listed, with a worktree (a new, forked or restored session).
    Live,
}

/// What a row's command works on.
#[derive(Clone, Copy)]
enum Subject {
    /// A session (`{}` is its name).
    Session,
    /// A task of two shell trials (`{}` is the task's name); the work is
    /// in its second trial, which the command ends.
    SecondTrial,
    /// A session the command forks (`{}` is its name; the fork is checked).
    Forked,
    /// A name for a new session (`{}`); the work is in another session,
    /// which must stay whole.
    Fresh,
}

fn run_row_on(command: &[&str], faults: &[Fault], before: Option<&[&str]>, subject: Subject, expect: Expect) {
    let mut failures = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let env = env_with_include();
        let (target, name, work) = match subject {
            Subject::Session => {
                let name = format!("m{i}");
                let work = seed(&env, &name);
                (name.clone(), name, work)
            }
            Subject::Forked => {
                let name = format!("m{i}");
                let work = seed(&env, &name);
                (name.clone(), format!("{name}-fork"), work)
            }
            Subject::Fresh => (format!("m{i}"), format!("m{i}"), seed(&env, "keep")),
            Subject::SecondTrial => {
                let task = format!("t{i}");
                env.ok(&["task", "new", "Do it", "--name", &task, "--trials", "2", "--agents", "shell"]);
                let name = format!("{task}-t2");
                let work = fill(&env, &name);
                (task, name, work)
            }
        };
        if let Some(before) = before {
            let args: Vec<String> = before.iter().map(|a| a.replace("{}", &target)).collect();
            env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let args: Vec<String> = command.iter().map(|a| a.replace("{}", &target)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let state_before = row_state(&env, &name);
        match fault {
            Fault::Point(line) => {
                let fired = arm(&env, line);
                let _ = env.tandem(&args);
                // The supervisor may reach the point after it answered
                // (`rm`'s prune); a point never reached is a broken case.
                let reached = wait_within("the fault to fire", Duration::from_secs(5), || Some(fired.exists()));
                disarm(&env);
                if !reached {
                    failures.push(format!("{args:?} × {line}: the fault point was never reached"));
                    continue;
                }
                // `… self`: wait until the process that reached it is gone
                // (a `git` victim's tandem lives on).
                let text = std::fs::read_to_string(&fired).unwrap_or_default();
                let pid = text.split_whitespace().nth(1).unwrap_or_default().to_owned();
                if !line.ends_with(" git") && !pid.is_empty() {
                    wait_for("the killed process to be gone", || {
                        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                        // Gone, or a zombie its parent has not reaped yet.
                        (stat.is_empty() || stat.contains(") Z ")).then_some(())
                    });
                }
            }
            Fault::Host => {
                let pid = host_pid(&env, &name);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                wait_for("the host to die", || (!Path::new(&format!("/proc/{pid}")).exists()).then_some(()));
                let _ = env.tandem(&args);
            }
        }
        // The next command (and the supervisor it may start) reconciles;
        // an operation the supervisor carries on with (the CLI died, not
        // it) is waited for.
        env.ok(&["list"]);
        if let Fault::Point("client.sent") = fault {
            // Only the CLI died: the supervisor carries the command out all
            // the same; wait for its end state.
            let state = || {
                let row = env.sessions().into_iter().chain(env.archived()).find(|s| s["name"] == name.as_str());
                row.map(|s| s["state"].as_str().unwrap_or_default().to_owned())
            };
            wait_for("the supervisor to carry the command out", || {
                let now = state();
                let done = match expect {
                    Expect::Gone => now.is_none(),
                    Expect::Archived => now.as_deref() == Some("archived"),
                    Expect::Live => now.as_deref().is_some_and(|s| s != "archived" && s != "creating"),
                };
                done.then_some(())
            });
        }
        if matches!((fault, subject), (Fault::Point("client.sent"), Subject::Session)) {
            // Only the CLI died: the supervisor carries on (rm and archive
            // stop the agent before they mark the row pending; restore
            // marks nothing), so `idle` alone may come too early. The
            // command's end shows in the row.
            let done = |state: Option<String>| match command[0] {
                "rm" => state.is_none(),
                "archive" => state.as_deref() == Some("archived"),
                _ => state != state_before,
            };
            let _ = wait_within("the supervisor to finish the command", Duration::from_secs(10), || {
                Some(done(row_state(&env, &name)))
            });
        }
        let deadline = Instant::now() + crate::common::WAIT;
        while !idle(&env) {
            assert!(
                Instant::now() < deadline,
                "{args:?} × {fault:?}: the supervisor did not finish what it was doing in {:?}; rows: {}\nsupervisor log:\n{}",
                crate::common::WAIT,
                busy_rows(&env),
                std::fs::read_to_string(env.tandem_home.join("state/supervisor.log")).unwrap_or_default()
                    + &*String::from_utf8_lossy(&std::process::Command::new("sh").arg("-c").arg(format!("find {} -name '*.lock' -exec ls -la --time-style=full-iso {{}} +; ps -eo pid,pgid,ppid,lstart,args | grep -E 'git|tandem' | grep -v grep", env.repo.display())).output().expect("ps").stdout)
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        if let Err(why) = check(&env, &name, &work) {
            failures.push(format!("{args:?} × {fault:?}: {why}"));
            continue;
        }
        // A promote is retried as a user would: it finishes, or says it is done.
        if let Subject::SecondTrial = subject {
            let out = env.tandem(&args);
            if !out.status.success() && !stderr(&out).contains("already promoted") {
                failures.push(format!("{args:?} × {fault:?}: the retry failed: {}", stderr(&out)));
            }
        }
    }
    let line = format!(
        "fault matrix: {} × {} fault(s): {} held, {} broke",
        command.join(" "),
        faults.len(),
        faults.len() - failures.len(),
        failures.len()
    );
    crate::common::note(&line);
    assert!(failures.is_empty(), "{line}:\n{}", failures.join("\n"));
}

#[test]
fn fault_matrix_rm_force() {
    run_row(
        &["rm", "--force", "{}"],
        &[
            Fault::Point("client.sent"),
            Fault::Point("git:commit-tree 0 self"),
            Fault::Point("git:commit-tree 0 git"),
            Fault::Point("git:update-ref 0 self"),
            Fault::Point("rm.snapshotted"),
            Fault::Point("rm.trashed"),
            Fault::Point("git:worktree-prune 0 self"),
            Fault::Point("git:branch 0 self"),
            Fault::Host,
        ],
        None,
        Expect::Gone,
    );
}

#[test]
fn fault_matrix_archive() {
    run_row(
        &["archive", "{}"],
        &[
            Fault::Point("client.sent"),
            Fault::Point("git:commit-tree 0 self"),
            Fault::Point("git:commit-tree 0 git"),
            Fault::Point("archive.snapshotted"),
            Fault::Point("archive.trashed"),
            Fault::Point("git:worktree-prune 0 self"),
            Fault::Point("git:worktree-prune 0 git"),
            Fault::Host,
        ],
        None,
        Expect::Archived,
    );
}

#[test]
fn fault_matrix_restore() {
    run_row(
        &["restore", "{}"],
        &[
            Fault::Point("client.sent"),
            Fault::Point("git:worktree-add 0 self"),
            Fault::Point("git:worktree-add 0 git"),
            Fault::Point("git:restore 0 self"),
        ],
        Some(&["archive", "{}"]),
        Expect::Live,
    );
}

#[test]
fn fault_matrix_fork() {
    run_row_on(
        &["fork", "{}"],
        &[
            Fault::Point("client.sent"),
            Fault::Point("git:commit-tree 0 self"),
            Fault::Point("git:worktree-add 0 self"),
            Fault::Point("git:worktree-add 0 git"),
        ],
        None,
        Subject::Forked,
        Expect::Live,
    );
}

#[test]
fn fault_matrix_new() {
    run_row_on(
        &["new", "{}", "--bg", "--agent", "shell"],
        &[
            Fault::Point("client.sent"),
            Fault::Point("git:worktree-add 0 self"),
            Fault::Point("git:worktree-add 0 git"),
            Fault::Point("git:worktree-add 30 self"),
        ],
        None,
        Subject::Fresh,
        Expect::Live,
    );
}

#[test]
fn fault_matrix_task_promote() {
    run_row_on(
        &["task", "promote", "{}", "1"],
        &[
            Fault::Point("client.sent"),
            Fault::Point("git:branch 0 self"),
            Fault::Point("git:commit-tree 0 self"),
            Fault::Point("archive.snapshotted"),
            Fault::Point("archive.trashed"),
            Fault::Point("git:worktree-prune 0 self"),
        ],
        None,
        Subject::SecondTrial,
        Expect::Archived,
    );
}
