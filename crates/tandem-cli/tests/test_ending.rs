//! Ending sessions and repairing them (issue 4, "Ending", "Crash safety
//! and repair"): archive and restore, rm through the trash, gc, a
//! `kill -9` at each step, eight creates at once, and `tandem doctor`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{TestEnv, stderr, wait_for};

fn archived(env: &TestEnv) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&env.ok(&["list", "--archived", "--json"]))
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

/// Kills, by pid, the processes this test started (their environment
/// holds its `TANDEM_HOME`, which tandem and the git it runs inherit)
/// whose command line contains `pattern`; never another test's.
fn kill_matching(env: &TestEnv, pattern: &str) {
    let home = format!("TANDEM_HOME={}", env.tandem_home.display());
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    for entry in procs.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let read = |name: &str| std::fs::read(entry.path().join(name)).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&read("cmdline")).replace('\0', " ");
        let ours = read("environ").split(|b| *b == 0).any(|v| v == home.as_bytes());
        if ours && cmdline.contains(pattern) {
            kill9(pid);
        }
    }
}

#[test]
fn archive_keeps_branch_work_and_summary_and_restore_brings_it_back() {
    let env = TestEnv::new();
    env.ok(&["new", "arch", "--bg", "--agent", "shell", "--title", "Archive me"]);
    let path = env.path_of("arch");
    std::fs::write(path.join("done.txt"), "committed\n").expect("write");
    env.git_in(&path, &["add", "done.txt"]);
    env.git_in(&path, &["commit", "-q", "-m", "work"]);
    std::fs::write(path.join("README.md"), "# changed, not committed\n").expect("write");
    std::fs::write(path.join("new.txt"), "untracked\n").expect("write");

    let out = env.ok(&["archive", "arch"]);
    assert!(out.contains("archived session arch"), "{out}");
    assert!(!path.exists(), "the worktree is gone");
    assert!(env.sessions().is_empty());
    env.git(&["rev-parse", "--verify", "refs/heads/arch"]);
    let list = archived(&env);
    assert_eq!(list.len(), 1);
    let a = &list[0];
    assert_eq!(
        (a["name"].as_str(), a["state"].as_str(), a["title"].as_str()),
        (Some("arch"), Some("archived"), Some("Archive me"))
    );
    let summary = a["summary"].as_str().expect("summary");
    assert!(summary.starts_with("1 commit; 2 files changed, 2 insertions(+), 1 deletion(-)"), "{summary}");
    assert!(a["archive_ref"].as_str().expect("snapshot").starts_with("refs/tandem/archive/arch/"), "{a}");
    let table = env.ok(&["list", "--archived"]);
    assert!(table.contains("arch") && table.contains("1 commit"), "{table}");
    // Archived: attach and archive again say what to do.
    let err = env.fails(&["archive", "arch"]);
    assert!(err.contains("tandem restore arch"), "{err}");

    let out = env.ok(&["restore", "arch"]);
    assert!(out.contains("restored session arch"), "{out}");
    assert_eq!(std::fs::read_to_string(path.join("README.md")).expect("read"), "# changed, not committed\n");
    assert_eq!(std::fs::read_to_string(path.join("new.txt")).expect("read"), "untracked\n");
    assert!(path.join("done.txt").exists());
    let s = env.wait_state("arch", "running");
    assert_eq!((s["changed"].as_u64(), s["untracked"].as_u64(), s["ahead"].as_u64()), (Some(1), Some(1), Some(1)));
    assert!(archived(&env).is_empty());
    let err = env.fails(&["restore", "arch"]);
    assert!(err.contains("not archived"), "{err}");
}

#[test]
fn the_summary_command_writes_the_archive_summary() {
    let env = TestEnv::new();
    env.user_config("[archive]\nsummary_command = \"printf 'custom: '; grep -c . | tr -d '\\\\n'; echo ' lines'\"\n");
    env.ok(&["new", "summed", "--bg", "--agent", "shell"]);
    env.ok(&["archive", "summed"]);
    let summary = archived(&env)[0]["summary"].as_str().expect("summary").to_owned();
    assert!(summary.starts_with("custom: ") && summary.ends_with(" lines"), "{summary}");
}

#[test]
fn rm_moves_the_worktree_to_the_trash_and_gc_drops_only_what_is_old() {
    let env = TestEnv::new();
    env.ok(&["new", "gone", "--bg", "--agent", "shell"]);
    let path = env.path_of("gone");
    // No changes at all: no question, no --force.
    // --wait: git has forgotten the worktree by the time rm returns.
    env.ok(&["rm", "--wait", "gone"]);
    assert!(!path.exists());
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("worktree ").count(), 1, "{list}");
    let trash = path.parent().expect("parent").join(".trash");
    // Nothing in the trash looks like a worktree, and it empties itself.
    wait_for("the trash to empty", || {
        let left: Vec<_> = std::fs::read_dir(&trash).map(|d| d.flatten().collect()).unwrap_or_default();
        assert!(left.iter().all(|e| !e.path().join(".git").exists()), "a worktree link in the trash");
        left.is_empty().then_some(())
    });

    // gc: only what is older than the limit.
    let head = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    // The refs this state folder made carry its owner tag.
    env.ok(&["gc"]);
    let owner = std::fs::read_to_string(env.tandem_home.join("state/owner")).expect("owner tag");
    let owner = owner.trim();
    env.git(&["update-ref", &format!("refs/tandem/archive/old/1000-{owner}"), &head]);
    env.git(&["update-ref", &format!("refs/tandem/archive/new/{now}-{owner}"), &head]);
    env.git(&["update-ref", &format!("refs/tandem/sync/old/1000-abcdef-{owner}"), &head]);
    env.git(&["update-ref", &format!("refs/tandem/sync/new/{now}-abcdef-{owner}"), &head]);
    std::fs::create_dir_all(trash.join("1000-aaaaaaaaaaaa/src")).expect("old trash");
    std::fs::create_dir_all(trash.join(format!("{now}-bbbbbbbbbbbb"))).expect("new trash");
    let out = env.ok(&["gc", "--older-than", "1"]);
    assert!(out.contains(&format!("dropped refs/tandem/archive/old/1000-{owner}")), "{out}");
    let refs = env.git(&["for-each-ref", "refs/tandem/"]);
    assert!(!refs.contains("archive/old/") && refs.contains("archive/new/"), "{refs}");
    assert!(!refs.contains("sync/old/") && refs.contains("sync/new/"), "sync's kept tips too: {refs}");
    assert!(!trash.join("1000-aaaaaaaaaaaa").exists());
    assert!(trash.join(format!("{now}-bbbbbbbbbbbb")).exists());
}

#[test]
fn a_kill_during_new_is_undone_by_the_next_command() {
    let env = TestEnv::new();
    // A slow smudge filter holds `git worktree add` mid-checkout.
    std::fs::write(env.repo.join(".gitattributes"), "*.dat filter=slow\n").expect("write");
    std::fs::write(env.repo.join("big.dat"), "data\n").expect("write");
    env.git(&["add", ".gitattributes", "big.dat"]);
    env.git(&["commit", "-q", "-m", "slow files"]);
    env.git(&["config", "filter.slow.smudge", "sleep 30; cat"]);
    env.git(&["config", "filter.slow.clean", "cat"]);
    let before = env.repo_state();
    let mut child = env
        .command_in(&env.repo, &["new", "crashy", "--bg", "--agent", "shell"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("git to hold the checkout", || {
        // Asked while `worktree add` writes its admin folder, git may fail
        // to read a file not written yet: not yet, then.
        let out = env.command_git_in(&env.repo, &["worktree", "list", "--porcelain"]);
        String::from_utf8_lossy(&out.stdout).contains("locked initializing").then_some(())
    });
    kill9(env.supervisor_pid().expect("supervisor"));
    // git first, mid-checkout; then its filter, which would otherwise
    // let the checkout finish.
    kill_matching(&env, "worktree add");
    kill_matching(&env, "sleep 30");
    let _ = child.kill();
    let _ = child.wait();
    // The next command (a new supervisor) puts everything back.
    assert!(env.sessions().is_empty());
    assert_eq!(env.repo_state(), before);
    env.git(&["config", "filter.slow.smudge", "cat"]);
    env.ok(&["new", "crashy", "--bg", "--agent", "shell"]);
    env.wait_state("crashy", "running");
}

/// Starts `tandem ARGS` in the background, waits for the teardown hook
/// to be running, and kills the supervisor there.
fn kill_in_teardown(env: &TestEnv, args: &[&str], marker: &Path) {
    let mut child = env.command_in(&env.repo, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    wait_for("the teardown hook", || marker.exists().then_some(()));
    kill9(env.supervisor_pid().expect("supervisor"));
    kill_matching(env, "sleep 31");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_kill_during_archive_or_rm_is_finished_by_the_next_command() {
    let env = TestEnv::new();
    let marker = env.tmp.path().join("in-teardown");
    env.user_config(&format!("[hooks]\nteardown = [\"touch {}; sleep 31\"]\n", marker.display()));
    env.ok(&["new", "half-archived", "--bg", "--agent", "shell"]);
    let path = env.path_of("half-archived");
    std::fs::write(path.join("wip.txt"), "keep me\n").expect("write");
    kill_in_teardown(&env, &["archive", "half-archived"], &marker);
    env.user_config("");
    assert!(env.sessions().is_empty(), "{:?}", env.sessions());
    let list = archived(&env);
    assert_eq!(list.len(), 1);
    let snapshot = list[0]["archive_ref"].as_str().expect("the snapshot was kept").to_owned();
    assert_eq!(env.git(&["show", &format!("{snapshot}:wip.txt")]), "keep me\n");
    assert!(!path.exists());

    std::fs::remove_file(&marker).expect("rm marker");
    env.user_config(&format!("[hooks]\nteardown = [\"touch {}; sleep 31\"]\n", marker.display()));
    env.ok(&["new", "half-removed", "--bg", "--agent", "shell"]);
    let path = env.path_of("half-removed");
    kill_in_teardown(&env, &["rm", "half-removed"], &marker);
    env.user_config("");
    assert!(env.sessions().is_empty());
    assert!(!path.exists());
    let branches = env.git(&["branch", "--list", "half-removed"]);
    assert!(branches.trim().is_empty(), "{branches}");

    // Killed after rm answered, while deleting the branch: git's
    // `reference-transaction` hook kills the supervisor once and aborts.
    env.ok(&["new", "half-pruned", "--bg", "--agent", "shell"]);
    let supervisor = env.supervisor_pid().expect("supervisor");
    let killed = env.tmp.path().join("killed");
    let hook = env.repo.join(".git/hooks/reference-transaction");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$1\" = prepared ] || exit 0\ngrep -q ' refs/heads/half-pruned$' || exit 0\n\
             [ -e {k} ] && exit 0\ntouch {k}\nkill -9 {supervisor}\nexit 1\n",
            k = killed.display()
        ),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    env.ok(&["rm", "half-pruned"]);
    wait_for("the supervisor to be killed", || {
        (killed.exists() && !tandem_core::process::is_running(supervisor)).then_some(())
    });
    assert!(!env.git(&["branch", "--list", "half-pruned"]).is_empty(), "the deletion was aborted");
    // The next command's supervisor finishes the removal.
    assert!(env.sessions().is_empty());
    assert_eq!(env.git(&["branch", "--list", "half-pruned"]), "");
    assert_eq!(env.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
}

#[test]
fn eight_news_at_once_all_succeed() {
    let env = TestEnv::new();
    let children: Vec<_> = (0..8)
        .map(|i| {
            env.command_in(&env.repo, &["new", &format!("eight-{i}"), "--bg", "--agent", "shell"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(env.sessions().len(), 8);
    assert_eq!(env.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count(), 9);
}

#[test]
fn doctor_explains_and_repairs_what_was_done_by_hand() {
    let env = TestEnv::new();
    for name in ["deleted", "switched", "branchless", "locked"] {
        env.ok(&["new", name, "--bg", "--agent", "shell"]);
    }
    for name in ["deleted", "switched", "branchless", "locked"] {
        env.ok(&["stop", name]);
    }
    let deleted = env.path_of("deleted");
    std::fs::remove_dir_all(&deleted).expect("rm -rf");
    env.git_in(&env.path_of("switched"), &["switch", "-q", "-c", "other"]);
    let tip = env.git(&["rev-parse", "branchless"]);
    env.git(&["update-ref", "-d", "refs/heads/branchless"]);
    let locked = env.path_of("locked");
    env.git(&["worktree", "lock", locked.to_str().expect("utf-8")]);
    std::fs::remove_dir_all(&locked).expect("rm -rf");

    let problems = |name: &str| env.session(name)["problem"].as_str().map(str::to_owned);
    assert_eq!(problems("deleted").as_deref(), Some("worktree folder missing"));
    assert_eq!(problems("switched").as_deref(), Some("switched to other"));
    assert_eq!(problems("branchless").as_deref(), Some("branch branchless deleted"));
    let table = env.ok(&["list"]);
    assert!(table.contains("stopped: worktree folder missing"), "{table}");

    let report = env.ok(&["doctor"]);
    assert!(report.contains("deleted: worktree folder") && report.contains("was deleted by hand"), "{report}");
    assert!(report.contains("switched: the worktree was switched by hand to branch other"), "{report}");
    assert!(report.contains("branchless: branch branchless was deleted by hand"), "{report}");
    assert!(report.contains("left alone: a locked worktree is never pruned"), "{report}");
    let fixed = env.ok(&["doctor", "--fix"]);
    assert!(fixed.contains("fixed:"), "{fixed}");
    assert!(deleted.join("README.md").exists());
    assert_eq!(env.git(&["rev-parse", "branchless"]), tip);
    assert_eq!(env.session("switched")["branch"], "other");
    for name in ["deleted", "switched", "branchless"] {
        assert_eq!(problems(name), None, "{name}");
    }
    let worktrees = env.git(&["worktree", "list", "--porcelain"]);
    assert!(worktrees.contains(locked.to_str().expect("utf-8")), "the locked worktree was pruned: {worktrees}");
}

#[test]
fn a_moved_repository_is_shown_plainly_and_doctor_relinks_it() {
    let env = TestEnv::new();
    env.ok(&["new", "mover", "--bg", "--agent", "shell"]);
    env.ok(&["stop", "mover"]);
    let path = env.path_of("mover");
    let moved = env.tmp.path().join("moved-repo");
    std::fs::rename(&env.repo, &moved).expect("mv");
    let out = env.tandem_in(&moved, &["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 session(s) belong to the repository that was at"), "{}", stderr(&out));
    let out = env.tandem_in(&moved, &["doctor", "--fix"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("the repository moved"), "{}", stderr(&out));
    let list = String::from_utf8_lossy(&env.tandem_in(&moved, &["list"]).stdout).into_owned();
    assert!(list.contains("mover"), "{list}");
    env.git_in(&path, &["status", "--short"]);
    let worktrees = env.git_in(&moved, &["worktree", "list"]);
    assert!(worktrees.contains(path.to_str().expect("utf-8")), "{worktrees}");
    let _ = Duration::ZERO;
}
