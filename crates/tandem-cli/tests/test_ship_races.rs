//! Issue 17, findings 4 and 6: `sync` racing an agent that commits, and
//! `merge` killed half way through its checkout of the user's main
//! worktree. Each test is the attack that lost work or left a state only
//! a manual fix could mend.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, stderr, wait_for};
use crate::test_ship::with_remote;

/// `git ARGS` in `dir` as an agent would run it: failures are answers,
/// not test failures.
fn agent_git(env: &TestEnv, dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("HOME", &env.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The subjects of every commit reachable from a ref under `refs/heads`
/// or `refs/tandem` (not from a worktree's HEAD, which a removal drops).
fn subjects_kept(env: &TestEnv) -> Vec<String> {
    let tips = env.git(&["for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tandem"]);
    let mut args = vec!["log", "--format=%s"];
    args.extend(tips.lines());
    env.git(&args).lines().map(str::to_owned).collect()
}

/// Issue 17, finding 4: the agent commits every few milliseconds while
/// `sync` rebases 300 commits. Whatever stops the rebase is named (never
/// "conflicts in" an empty list), and after `--abort` every commit the
/// agent made is still reachable from a ref.
#[test]
fn issue_17_4_commits_made_while_sync_rebases_survive_abort() {
    let env = TestEnv::new();
    let remote = with_remote(&env);
    env.ok(&["new", "racer", "--bg", "--agent", "shell"]);
    let wt = env.path_of("racer");
    let script = "for i in $(seq 1 300); do echo $i > f$((i % 20)).txt; git add -A; git commit -q -m c$i; done";
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(&wt)
        .env("HOME", &env.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", stderr(&out));
    // The base moves on.
    let other = env.tmp.path().join("other");
    env.git_in(env.tmp.path(), &["clone", "-q", &remote.to_string_lossy(), "other"]);
    std::fs::write(other.join("upstream.txt"), "theirs\n").expect("write");
    env.git_in(&other, &["add", "upstream.txt"]);
    env.git_in(&other, &["commit", "-q", "-m", "upstream"]);
    env.git_in(&other, &["push", "-q", "origin", "main"]);

    // The agent: an empty commit every 10 ms (its tree stays clean, so
    // sync does not refuse it as dirty), recording those git accepted.
    let stop = Arc::new(AtomicBool::new(false));
    let agent = {
        let (stop, wt, home) = (Arc::clone(&stop), wt.clone(), env.home.clone());
        std::thread::spawn(move || {
            let mut made = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let subject = format!("agent {i}");
                let ok = Command::new("git")
                    .current_dir(&wt)
                    .args(["commit", "-q", "--allow-empty", "-m", &subject])
                    .env("HOME", &home)
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    made.push(subject);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            made
        })
    };
    // Let the agent get going, so commits land just before the rebase too.
    let started = Instant::now();
    wait_for("the agent's first commits", || {
        (env.git_in(&wt, &["log", "-1", "--format=%s"]).starts_with("agent ") && started.elapsed().as_millis() > 100)
            .then_some(())
    });
    let sync = env.tandem(&["sync", "racer"]);
    stop.store(true, Ordering::SeqCst);
    let made = agent.join().expect("agent thread");
    let err = stderr(&sync);
    eprintln!("sync: {}{err}", String::from_utf8_lossy(&sync.stdout));
    assert!(!err.contains("conflicts in ;") && !err.contains("conflicts in \n"), "an empty conflict list: {err}");
    assert!(!err.contains("Rebasing ("), "git's progress is no reason: {err}");
    if !sync.status.success() && !err.contains("nothing is in progress, run `tandem sync racer` again") {
        assert!(err.contains("tandem sync racer --abort"), "{err}");
        let aborted = env.tandem(&["sync", "racer", "--abort"]);
        assert!(aborted.status.success(), "{}", stderr(&aborted));
        eprintln!("sync --abort: {}", String::from_utf8_lossy(&aborted.stdout));
    }
    let kept = subjects_kept(&env);
    let lost: Vec<&String> = made.iter().filter(|s| !kept.contains(s)).collect();
    assert!(
        lost.is_empty(),
        "{} of the agent's {} commits are reachable from no ref: {lost:?}",
        lost.len(),
        made.len()
    );
    // Nothing is left half done: the session is on its branch.
    assert_eq!(env.git_in(&wt, &["symbolic-ref", "--short", "HEAD"]).trim(), "racer");
    assert!(agent_git(&env, &wt, &["diff", "--quiet", "HEAD"]), "the worktree is clean");
}

/// Issue 17, finding 4, without a race: `sync` stops on a conflict, the
/// agent (not told) resolves it its own way and commits on the rebase's
/// detached `HEAD`; `sync --abort` keeps that commit under a ref and says
/// where.
#[test]
fn issue_17_4_a_commit_made_during_a_stopped_sync_survives_abort() {
    let env = TestEnv::new();
    let remote = with_remote(&env);
    env.ok(&["new", "stopped", "--bg", "--agent", "shell"]);
    let wt = env.path_of("stopped");
    std::fs::write(wt.join("README.md"), "# ours\n").expect("write");
    env.git_in(&wt, &["commit", "-q", "-am", "ours"]);
    let other = env.tmp.path().join("other");
    env.git_in(env.tmp.path(), &["clone", "-q", &remote.to_string_lossy(), "other"]);
    std::fs::write(other.join("README.md"), "# theirs\n").expect("write");
    env.git_in(&other, &["commit", "-q", "-am", "theirs"]);
    env.git_in(&other, &["push", "-q", "origin", "main"]);

    let err = env.fails(&["sync", "stopped"]);
    assert!(err.contains("stopped on conflicts in README.md"), "{err}");
    // The agent goes on: resolves, and commits where HEAD is.
    std::fs::write(wt.join("README.md"), "# the agent's resolution\n").expect("write");
    env.git_in(&wt, &["add", "README.md"]);
    env.git_in(&wt, &["commit", "-q", "-m", "agent resolved it"]);
    std::fs::write(wt.join("more.txt"), "more\n").expect("write");
    env.git_in(&wt, &["add", "more.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "agent went on"]);

    let out = env.ok(&["sync", "stopped", "--abort"]);
    assert!(out.contains("aborted the rebase"), "{out}");
    let kept = out.lines().find_map(|l| l.split("kept at ").nth(1)).expect("a kept ref").trim().to_owned();
    assert!(kept.starts_with("refs/tandem/sync/stopped/"), "{out}");
    assert_eq!(env.git(&["log", "--format=%s", "-2", &kept]), "agent went on\nagent resolved it\n");
    assert_eq!(env.git(&["show", &format!("{kept}:README.md")]), "# the agent's resolution\n");
    assert!(subjects_kept(&env).contains(&"agent went on".to_owned()));
    assert_eq!(env.git_in(&wt, &["symbolic-ref", "--short", "HEAD"]).trim(), "stopped");
}

/// A repository whose `main` holds `files` files, and a session `feature`
/// that changed every one of them (and added a few): a merge of it
/// rewrites thousands of files in the main worktree.
fn big_merge(env: &TestEnv, files: usize) {
    let write_all = |root: &Path, text: &str| {
        for i in 0..files {
            let dir = root.join(format!("d{:02}", i / 100));
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join(format!("f{:03}.txt", i % 100)), format!("{text} {i}\n").repeat(40))
                .expect("write");
        }
    };
    write_all(&env.repo, "base");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "many files"]);
    env.ok(&["new", "feature", "--bg", "--agent", "shell", "--base", "head"]);
    let wt = env.path_of("feature");
    write_all(&wt, "feature");
    std::fs::create_dir_all(wt.join("new")).expect("mkdir");
    for i in 0..50 {
        std::fs::write(wt.join(format!("new/n{i}.txt")), format!("new {i}\n")).expect("write");
    }
    env.git_in(&wt, &["add", "-A"]);
    env.git_in(&wt, &["commit", "-q", "-m", "feature changes everything"]);
}

/// Runs `tandem merge feature` in its own process group and kills the
/// group (the CLI and its git child, as Ctrl-C or a closed terminal does)
/// once git has begun rewriting the main worktree's files. A merge that
/// ends before the kill lands (a loaded machine) is undone and run again.
fn kill_merge_mid_checkout(env: &TestEnv) {
    use std::os::unix::process::CommandExt as _;
    let first = env.repo.join("d00/f000.txt");
    let before = std::fs::read(&first).expect("read");
    let main = env.git(&["rev-parse", "main"]).trim().to_owned();
    let lock = env.repo.join(".git/index.lock");
    for _attempt in 0..5 {
        let mut child = env
            .command_in(&env.repo, &["merge", "feature"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem merge");
        let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let killed = loop {
            if lock.exists() && std::fs::read(&first).is_ok_and(|now| now != before) {
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                break true;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break false;
            }
            assert!(Instant::now() < deadline, "the merge never started its checkout");
        };
        let _ = child.wait();
        let status = env.git(&["status", "--porcelain"]);
        if killed && env.git(&["rev-parse", "main"]).trim() == main && !status.is_empty() && lock.exists() {
            // The attack landed: a half-rewritten worktree and git's lock left.
            return;
        }
        // Too late: the merge landed. Put main back and try again.
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_file(env.tandem_home.join("state/sessions").join(session_id(env)).join("merge.json"));
        env.git(&["reset", "-q", "--hard", &main]);
        env.git(&["clean", "-q", "-fd"]);
    }
    panic!("five merges in a row ended before they could be killed mid-checkout");
}

/// The id of session `feature`.
fn session_id(env: &TestEnv) -> String {
    env.session("feature")["id"].as_str().expect("id").to_owned()
}

/// The main worktree is exactly as before the merge: same commit, no
/// change, no lock, the same bytes.
fn assert_as_before(env: &TestEnv, main: &str) {
    assert_eq!(env.git(&["rev-parse", "main"]), main);
    assert!(!env.repo.join(".git/index.lock").exists(), "the stale index.lock is gone");
    assert_eq!(env.git(&["status", "--porcelain", "--untracked-files=all"]), "");
    assert_eq!(std::fs::read_to_string(env.repo.join("d00/f000.txt")).expect("read"), "base 0\n".repeat(40));
    assert!(!env.repo.join("new").exists(), "the merge's new files are gone");
}

/// Issue 17, finding 6: `merge` killed mid-checkout. `doctor` sees it,
/// `merge --abort` rolls the main worktree back to exactly the pre-merge
/// state (removing the stale `index.lock`), and a later merge works.
#[test]
fn issue_17_6_merge_killed_mid_checkout_is_seen_and_aborted() {
    let env = TestEnv::new();
    big_merge(&env, 2000);
    let main = env.git(&["rev-parse", "main"]);
    kill_merge_mid_checkout(&env);

    let doctor = env.ok(&["doctor"]);
    assert!(doctor.contains("interrupted merge of feature into main"), "{doctor}");
    assert!(doctor.contains("tandem merge --abort feature"), "{doctor}");
    let out = env.ok(&["merge", "--abort", "feature"]);
    assert!(out.contains("rolled back the interrupted merge of feature into main"), "{out}");
    // The half-done checkout itself is kept, as any state tandem undoes.
    assert!(out.contains("kept at refs/tandem/sync/feature/"), "{out}");
    assert_as_before(&env, &main);
    assert!(!env.ok(&["doctor"]).contains("interrupted merge"), "doctor is content");
    let err = env.fails(&["merge", "--abort", "feature"]);
    assert!(err.contains("no merge of feature to abort"), "{err}");

    let out = env.ok(&["merge", "feature"]);
    assert!(out.starts_with("merged feature into main"), "{out}");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

/// Issue 17, finding 6: the next `merge` after the kill finishes the
/// interrupted one (rolled back, then merged again) instead of advising
/// to commit the half merge.
#[test]
fn issue_17_6_merge_killed_mid_checkout_is_finished_by_the_next_merge() {
    let env = TestEnv::new();
    big_merge(&env, 2000);
    let main = env.git(&["rev-parse", "main"]);
    kill_merge_mid_checkout(&env);
    // The user goes on working in the main worktree before merging again.
    std::fs::write(env.repo.join("README.md"), "# edited after the kill\n").expect("write");

    let out = env.tandem(&["merge", "feature"]);
    let (text, err) = (String::from_utf8_lossy(&out.stdout).into_owned(), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(err.contains("rolled back the interrupted merge of feature into main"), "{err}");
    // That edit is not lost with the half merge: it is kept in a ref.
    let kept = err.lines().find_map(|l| l.split("kept at ").nth(1)).expect("a kept ref").trim().to_owned();
    assert_eq!(env.git(&["show", &format!("{kept}:README.md")]), "# edited after the kill\n");
    assert!(text.starts_with("merged feature into main"), "{text}");
    assert_eq!(env.git(&["status", "--porcelain", "--untracked-files=all"]), "");
    assert!(!env.repo.join(".git/index.lock").exists());
    assert_eq!(env.git(&["rev-parse", "main^1"]), main, "one merge commit on the old main");
    assert_eq!(std::fs::read_to_string(env.repo.join("d00/f000.txt")).expect("read"), "feature 0\n".repeat(40));
    assert!(!env.ok(&["doctor"]).contains("interrupted merge"));
}

/// Where a merge is killed: the fault line armed (see
/// `tandem_core::fault`), the `merge` flags, and the branch merged into.
const MERGE_FAULTS: &[(&str, &[&str], &str)] = &[
    ("merge.journaled", &[], "main"),
    ("git:merge", &[], "main"),
    ("git:merge 0 git", &[], "main"),
    ("merge.ran", &[], "main"),
    ("merge.squashed", &["--squash"], "main"),
    ("git:merge", &["--ff"], "main"),
    ("git:rebase 0 git", &["--rebase"], "main"),
    ("git:worktree-add", &["--into", "release"], "release"),
    ("git:merge", &["--into", "release"], "release"),
];

/// Runs every merge of [`MERGE_FAULTS`] killed there, then `then` (with
/// the session's name, the target and its commit before) to recover.
fn each_killed_merge(then: &dyn Fn(&TestEnv, &str, &str, &str)) {
    let mut env = TestEnv::new();
    let faults = env.tmp.path().join("faults");
    env.env.push(("TANDEM_FAULTS".into(), faults.to_string_lossy().into_owned()));
    for (i, (fault, flags, target)) in MERGE_FAULTS.iter().enumerate() {
        let name = format!("f{i}");
        env.git(&["branch", "-f", "release", "main"]);
        env.ok(&["new", &name, "--bg", "--agent", "shell", "--base", "head"]);
        let wt = env.path_of(&name);
        std::fs::write(wt.join(format!("{name}.txt")), format!("{name}\n")).expect("write");
        env.git_in(&wt, &["add", "-A"]);
        env.git_in(&wt, &["commit", "-q", "-m", &name]);
        let before = env.git(&["rev-parse", target]).trim().to_owned();
        std::fs::write(&faults, format!("{fault}\n")).expect("arm");
        let mut args = vec!["merge", name.as_str()];
        args.extend_from_slice(flags);
        let out = env.tandem(&args);
        let fired = faults.with_extension("fired");
        assert!(fired.exists(), "{fault}: never reached; {}", stderr(&out));
        std::fs::remove_file(&fired).expect("disarm");
        then(&env, &name, target, &before);
        let doctor = env.ok(&["doctor"]);
        assert!(!doctor.contains("interrupted merge"), "{fault}: {doctor}");
        assert_eq!(env.git(&["status", "--porcelain", "--untracked-files=all"]), "", "{fault}");
        let git_dir = env.repo.join(".git");
        let locks: Vec<PathBuf> = [git_dir.clone(), git_dir.join("refs/heads")]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).expect("git dir").flatten().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "lock"))
            .collect();
        assert!(locks.is_empty(), "{fault}: stale locks {locks:?}");
        assert!(!env.git(&["worktree", "list"]).contains("merge-worktree"), "{fault}: the temporary worktree stays");
    }
}

/// Runs `tandem ARGS` until no git process of the killed merge is still
/// at work (an orphaned git child finishes on its own), then returns it.
fn once_git_is_done(env: &TestEnv, args: &[&str]) -> std::process::Output {
    wait_for("the killed merge's git to finish", || {
        let out = env.tandem(args);
        (!stderr(&out).contains("is still at work")).then_some(out)
    })
}

/// Issue 17, finding 6: a merge killed at any of its steps (the CLI, or
/// only its git child) is rolled back by `merge --abort`: the target is
/// where it was, its worktree clean, nothing left for `doctor`.
#[test]
fn issue_17_6_merge_killed_at_each_step_is_rolled_back_by_abort() {
    each_killed_merge(&|env, name, target, before| {
        let out = once_git_is_done(env, &["merge", "--abort", name]);
        let err = stderr(&out);
        // A merge whose git child died failed, and rolled back at once.
        assert!(out.status.success() || err.contains(&format!("no merge of {name} to abort")), "{name}: {err}");
        assert_eq!(env.git(&["rev-parse", target]).trim(), before, "{name}: {target} moved");
    });
}

/// Issue 17, finding 6: after a merge killed at any of its steps, the
/// next `merge` lands the session exactly once.
#[test]
fn issue_17_6_merge_killed_at_each_step_is_finished_by_the_next_merge() {
    each_killed_merge(&|env, name, target, before| {
        let out = once_git_is_done(env, &["merge", name, "--into", target]);
        let err = stderr(&out);
        let landed = env.git(&["rev-parse", target]).trim().to_owned();
        assert!(out.status.success() || err.contains("has nothing to merge"), "{name}: {err}");
        assert_ne!(landed, before, "{name}: never landed");
        assert_eq!(env.git(&["show", &format!("{target}:{name}.txt")]), format!("{name}\n"), "{name}");
        assert!(env.git(&["rev-list", &format!("{before}..{target}")]).lines().count() <= 2, "{name}: landed once");
    });
}

/// Issue 17, finding 6: `doctor` names a merge killed at any of its
/// steps, and `doctor --fix` rolls it back (or, had it landed, finishes
/// it), leaving nothing half done.
#[test]
fn issue_17_6_merge_killed_at_each_step_is_repaired_by_doctor_fix() {
    each_killed_merge(&|env, name, target, before| {
        let journal = env.tandem_home.join("state/sessions");
        let left =
            std::fs::read_dir(&journal).expect("sessions").flatten().any(|e| e.path().join("merge.json").exists());
        if left {
            let doctor = env.ok(&["doctor"]);
            assert!(doctor.contains(&format!("interrupted merge of {name} into {target}")), "{doctor}");
        }
        let fixed = wait_for("the killed merge's git to finish", || {
            let out = env.ok(&["doctor", "--fix"]);
            (!out.contains("is still at work")).then_some(out)
        });
        assert!(!fixed.contains("not fixed"), "{name}: {fixed}");
        let now = env.git(&["rev-parse", target]).trim().to_owned();
        let landed = agent_git(env, &env.repo, &["cat-file", "-e", &format!("{target}:{name}.txt")]);
        assert!(now == before || landed, "{name}: {target} is neither as before nor merged");
    });
}
