//! Never lose work (issue 17, findings 1, 2, 3, 9 and 11): what only a
//! worktree holds (a detached HEAD's commits, an operation git has under
//! way, the index as the agent left it, an edited `.worktreeinclude`
//! file) counts as unsaved work and is in every snapshot; a `kill -9` of
//! the supervisor mid-archive or mid-rm leaves the snapshot linked; one
//! state folder's `gc` leaves another's refs alone; a detached base is
//! stored as its commit.

use crate::common::{TestEnv, stderr, wait_for};

/// `git show REV:PATH` in the main repository.
fn show(env: &TestEnv, rev: &str, path: &str) -> String {
    env.git(&["show", &format!("{rev}:{path}")]).trim_end().to_owned()
}

/// Whether `commit` is reachable from `rev`.
fn reachable(env: &TestEnv, commit: &str, rev: &str) -> bool {
    env.command_git_in(&env.repo, &["merge-base", "--is-ancestor", commit, rev]).status.success()
}

/// A session `name` whose worktree has a commit on a detached HEAD;
/// returns the commit.
fn detached_commit(env: &TestEnv, name: &str) -> String {
    env.ok(&["new", name, "--bg", "--agent", "shell", "--base", "head"]);
    let path = env.path_of(name);
    env.git_in(&path, &["checkout", "-q", "--detach"]);
    std::fs::write(path.join("d.txt"), "W\n").expect("write");
    env.git_in(&path, &["add", "d.txt"]);
    env.git_in(&path, &["commit", "-q", "-m", "DETACHED"]);
    env.git_in(&path, &["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn issue_17_1_a_detached_head_commit_is_unsaved_work_for_rm_and_kept_by_archive() {
    let env = TestEnv::new();
    let commit = detached_commit(&env, "s");
    let path = env.path_of("s");
    // rm without --force refuses, and names it; nothing changes.
    let err = env.fails(&["rm", "s"]);
    assert!(err.contains("1 commit on a detached HEAD"), "{err}");
    assert!(path.join("d.txt").exists(), "the worktree is untouched");
    // --force keeps it reachable from the snapshot.
    let out = env.ok(&["rm", "--force", "s"]);
    let snapshot = out.split_whitespace().find(|w| w.starts_with("refs/tandem/archive/s/")).expect("a snapshot ref");
    let snapshot = snapshot.trim_end_matches(['.', ')', ',']);
    assert!(reachable(&env, &commit, snapshot), "the detached commit is kept by {snapshot}: {out}");

    // archive snapshots it too, and restore brings its file back.
    let commit = detached_commit(&env, "a");
    env.ok(&["archive", "a"]);
    let row = &env.archived()[0];
    let kept = row["archive_ref"].as_str().expect("archive keeps a snapshot of the detached HEAD");
    assert!(reachable(&env, &commit, kept), "{row}");
    env.ok(&["restore", "a"]);
    assert_eq!(std::fs::read_to_string(env.path_of("a").join("d.txt")).expect("restored"), "W\n");
}

#[test]
fn issue_17_1_a_rebase_merge_cherry_pick_or_bisect_under_way_is_unsaved_work() {
    let env = TestEnv::new();
    // A branch that conflicts with the sessions' edits of README.md.
    env.git(&["checkout", "-q", "-b", "side"]);
    std::fs::write(env.repo.join("README.md"), "side\n").expect("write");
    env.git(&["commit", "-q", "-am", "side"]);
    env.git(&["checkout", "-q", "main"]);
    // (operation, whether the session first commits its own README edit, git steps)
    let ops: [(&str, bool, &[&[&str]]); 4] = [
        ("merge", false, &[&["merge", "--no-commit", "--no-ff", "side"]]),
        ("cherry-pick", true, &[&["cherry-pick", "side"]]),
        ("rebase", true, &[&["rebase", "side"]]),
        ("bisect", false, &[&["bisect", "start"], &["bisect", "bad"]]),
    ];
    for (op, edit, steps) in ops {
        env.ok(&["new", op, "--bg", "--agent", "shell", "--base", "main"]);
        let path = env.path_of(op);
        if edit {
            std::fs::write(path.join("README.md"), "mine\n").expect("write");
            env.git_in(&path, &["commit", "-q", "-am", "mine"]);
        }
        for step in steps {
            // A conflict makes git exit non-zero; the state is what counts.
            let _ = env.command_git_in(&path, step);
        }
        let err = env.fails(&["rm", op]);
        assert!(err.contains(&format!("a {op} in progress")), "{op}: {err}");
        assert!(path.is_dir(), "{op}: a refused rm changes nothing");
        env.ok(&["rm", "--force", op]);
        let snapshot = env.git(&["for-each-ref", "--format=%(refname)", &format!("refs/tandem/archive/{op}/")]);
        assert!(!snapshot.trim().is_empty(), "{op}: --force keeps a snapshot");
    }
}

#[test]
fn issue_17_1_the_staged_version_under_an_unstaged_edit_is_in_the_snapshot() {
    let env = TestEnv::new();
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    let path = env.path_of("s");
    std::fs::write(path.join("README.md"), "staged\n").expect("write");
    env.git_in(&path, &["add", "README.md"]);
    std::fs::write(path.join("README.md"), "unstaged\n").expect("write");
    let out = env.ok(&["rm", "--force", "s"]);
    let snapshot = env.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/archive/s/"]);
    let snapshot = snapshot.trim();
    assert!(!snapshot.is_empty(), "{out}");
    assert_eq!(show(&env, snapshot, "README.md"), "unstaged");
    let parents = env.git(&["rev-list", "--parents", "-n", "1", snapshot]);
    let staged = parents
        .split_whitespace()
        .skip(2)
        .any(|p| env.command_git_in(&env.repo, &["show", &format!("{p}:README.md")]).stdout == b"staged\n");
    assert!(staged, "a parent of the snapshot holds the index as it was: {parents}");
}

/// A repository whose `.env` is ignored and copied into each session by
/// `.worktreeinclude`.
fn with_included_env(env: &TestEnv) {
    std::fs::write(env.repo.join(".gitignore"), ".env\n").expect("write");
    std::fs::write(env.repo.join(".worktreeinclude"), ".env\n").expect("write");
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "include .env"]);
    std::fs::write(env.repo.join(".env"), "KEY=one\n").expect("write");
}

#[test]
fn issue_17_11_an_edited_included_file_is_unsaved_work_and_kept_by_force_and_archive() {
    let env = TestEnv::new();
    with_included_env(&env);
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    let path = env.path_of("s");
    assert_eq!(std::fs::read_to_string(path.join(".env")).expect("copied"), "KEY=one\n");
    // Copied and untouched: nothing to lose.
    env.ok(&["new", "t", "--bg", "--agent", "shell"]);
    env.ok(&["rm", "t"]);

    std::fs::write(path.join(".env"), "KEY=two\n").expect("edit");
    let err = env.fails(&["rm", "s"]);
    assert!(err.contains("1 changed included file (.env)"), "{err}");
    env.ok(&["rm", "--force", "s"]);
    let snapshot = env.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/archive/s/"]);
    assert_eq!(show(&env, snapshot.trim(), ".env"), "KEY=two");

    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    std::fs::write(env.path_of("a").join(".env"), "KEY=three\n").expect("edit");
    env.ok(&["archive", "a"]);
    env.ok(&["restore", "a"]);
    assert_eq!(std::fs::read_to_string(env.path_of("a").join(".env")).expect("restored"), "KEY=three\n");
}

/// Arms fault point `point` for this environment's tandem processes
/// (`TANDEM_FAULTS`, read by debug builds only) and returns the file a
/// fired fault leaves.
fn arm(env: &mut TestEnv, point: &str) -> std::path::PathBuf {
    let file = env.tmp.path().join("faults");
    if !env.env.iter().any(|(k, _)| k == "TANDEM_FAULTS") {
        env.env.push(("TANDEM_FAULTS".to_owned(), file.display().to_string()));
    }
    let _ = std::fs::remove_file(env.tmp.path().join("faults.fired"));
    std::fs::write(&file, format!("{point}\n")).expect("arm");
    env.tmp.path().join("faults.fired")
}

#[test]
fn issue_17_2_a_kill_during_archive_or_rm_after_the_trash_keeps_the_snapshot_linked() {
    let mut env = TestEnv::new();
    // The supervisor must start with the fault file in its environment.
    let _ = arm(&mut env, "nothing");
    for point in ["archive.snapshotted", "archive.trashed"] {
        let name = point.replace('.', "-");
        env.ok(&["new", &name, "--bg", "--agent", "shell"]);
        let path = env.path_of(&name);
        std::fs::write(path.join("README.md"), "dirty\n").expect("write");
        std::fs::write(path.join("new.txt"), "untracked\n").expect("write");
        let fired = arm(&mut env, point);
        let out = env.tandem(&["archive", &name]);
        assert!(!out.status.success(), "the supervisor died mid-archive: {}", stderr(&out));
        wait_for("the fault to fire", || fired.exists().then_some(()));
        // The next command's supervisor finishes the archive.
        let row = env.archived().into_iter().find(|r| r["name"] == name.as_str()).expect("archived");
        let kept = row["archive_ref"].as_str().unwrap_or_else(|| panic!("{point}: the row keeps its snapshot: {row}"));
        assert_eq!(show(&env, kept, "new.txt"), "untracked", "{point}");
        // gc keeps what an archived session needs; restore brings it all back.
        env.ok(&["gc", "--older-than", "0"]);
        env.ok(&["restore", &name]);
        assert_eq!(std::fs::read_to_string(path.join("README.md")).expect("restored"), "dirty\n", "{point}");
        assert_eq!(std::fs::read_to_string(path.join("new.txt")).expect("restored"), "untracked\n", "{point}");
    }
    for point in ["rm.snapshotted", "rm.trashed"] {
        let name = point.replace('.', "-");
        env.ok(&["new", &name, "--bg", "--agent", "shell"]);
        std::fs::write(env.path_of(&name).join("new.txt"), "untracked\n").expect("write");
        let fired = arm(&mut env, point);
        let _ = env.tandem(&["rm", "--force", &name]);
        wait_for("the fault to fire", || fired.exists().then_some(()));
        env.ok(&["list"]);
        let refs = env.git(&["for-each-ref", "--format=%(refname)", &format!("refs/tandem/archive/{name}/")]);
        let refs: Vec<&str> = refs.lines().collect();
        assert_eq!(refs.len(), 1, "{point}: one snapshot: {refs:?}");
        assert_eq!(show(&env, refs[0], "new.txt"), "untracked", "{point}");
        assert!(env.sessions().iter().all(|s| s["name"] != name.as_str()), "{point}: the removal was finished");
    }
}

#[test]
fn issue_17_3_another_state_folders_gc_leaves_this_ones_snapshots() {
    let a = TestEnv::new();
    a.ok(&["new", "s", "--bg", "--agent", "shell"]);
    std::fs::write(a.path_of("s").join("new.txt"), "work\n").expect("write");
    a.ok(&["archive", "s"]);
    let kept = a.archived()[0]["archive_ref"].as_str().expect("snapshot").to_owned();
    let owner = std::fs::read_to_string(a.tandem_home.join("state/owner")).expect("owner tag");
    let owner = owner.trim();
    assert!(kept.ends_with(&format!("-{owner}")), "{kept} says which state folder made it");
    // An old snapshot of A's removed session, as `rm --force` left it.
    let head = a.git(&["rev-parse", "HEAD"]);
    let old = format!("refs/tandem/archive/gone/1000-{owner}");
    a.git(&["update-ref", &old, head.trim()]);

    // B: another TANDEM_HOME on the same repository.
    let mut b = TestEnv::new();
    b.repo = a.repo.clone();
    let out = b.ok(&["gc", "--older-than", "0"]);
    assert!(out.contains("another tandem state folder"), "{out}");
    let refs = a.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/archive/"]);
    assert!(refs.contains(&kept) && refs.contains(&old), "B's gc left A's refs: {refs}");
    a.ok(&["restore", "s"]);
    assert_eq!(std::fs::read_to_string(a.path_of("s").join("new.txt")).expect("restored"), "work\n");
    // A's own gc drops its old one.
    let out = a.ok(&["gc", "--older-than", "0"]);
    assert!(out.contains(&format!("dropped {old}")), "{out}");
}

#[test]
fn issue_17_9_a_detached_base_is_recorded_as_its_commit() {
    let env = TestEnv::new();
    env.git(&["checkout", "-q", "--detach"]);
    let commit = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let out = env.tandem(&["new", "s", "--bg", "--agent", "shell", "--base", "head"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("HEAD is detached; the base is commit"), "{}", stderr(&out));
    assert_eq!(env.session("s")["base"], commit.as_str());
    // A relative name is recorded as the commit it names now.
    env.ok(&["new", "t", "--bg", "--agent", "shell", "--base", "HEAD~0"]);
    assert_eq!(env.session("t")["base"], commit.as_str());
    // A branch stays a name.
    env.ok(&["new", "u", "--bg", "--agent", "shell", "--base", "main"]);
    assert_eq!(env.session("u")["base"], "main");
}

#[test]
fn issue_17_1_task_promote_keeps_the_other_trials_detached_commits() {
    let env = TestEnv::new();
    env.ok(&["task", "new", "Do x", "--name", "dox", "--trials", "2", "--agents", "shell", "--base", "head"]);
    let loser = env.path_of("dox-t2");
    env.git_in(&loser, &["checkout", "-q", "--detach"]);
    std::fs::write(loser.join("d.txt"), "W\n").expect("write");
    env.git_in(&loser, &["add", "d.txt"]);
    env.git_in(&loser, &["commit", "-q", "-m", "DETACHED"]);
    let commit = env.git_in(&loser, &["rev-parse", "HEAD"]).trim().to_owned();
    env.ok(&["task", "promote", "dox", "1"]);
    let row = env.archived().into_iter().find(|r| r["name"] == "dox-t2").expect("the other trial is archived");
    let kept = row["archive_ref"].as_str().unwrap_or_else(|| panic!("a snapshot keeps its detached commit: {row}"));
    assert!(reachable(&env, &commit, kept), "{row}");
}

// A second look (issue 17): attacks on the change above.

/// The one snapshot ref under `refs/tandem/archive/<name>/`.
fn only_snapshot(env: &TestEnv, name: &str) -> String {
    let refs = env.git(&["for-each-ref", "--format=%(refname)", &format!("refs/tandem/archive/{name}/")]);
    let refs: Vec<&str> = refs.lines().collect();
    assert_eq!(refs.len(), 1, "one snapshot of {name}: {refs:?}");
    refs[0].to_owned()
}

#[test]
fn issue_17_review_a_nested_repository_without_commits_does_not_block_rm_force_or_archive() {
    let env = TestEnv::new();
    for name in ["s", "a"] {
        env.ok(&["new", name, "--bg", "--agent", "shell"]);
        let path = env.path_of(name);
        // An agent's test fixture: `git init` and no commit (git's
        // `add --all` then fails with "does not have a commit checked out").
        env.git_in(&path, &["init", "-q", "fixture"]);
        std::fs::write(path.join("work.txt"), "W\n").expect("write");
    }
    env.ok(&["rm", "--force", "s"]);
    assert_eq!(show(&env, &only_snapshot(&env, "s"), "work.txt"), "W");
    env.ok(&["archive", "a"]);
    env.ok(&["restore", "a"]);
    assert_eq!(std::fs::read_to_string(env.path_of("a").join("work.txt")).expect("restored"), "W\n");
}

#[test]
fn issue_17_review_a_non_utf8_name_where_an_included_file_was_does_not_block_rm_force() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    with_included_env(&env);
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    let path = env.path_of("s");
    // The agent makes the copied `.env` a folder, with a name git cannot
    // be handed as UTF-8 text.
    std::fs::remove_file(path.join(".env")).expect("rm .env");
    std::fs::create_dir(path.join(".env")).expect("mkdir .env");
    std::fs::write(path.join(".env").join(std::ffi::OsStr::from_bytes(b"odd\xff")), "O\n").expect("write");
    std::fs::write(path.join(".env/k"), "K\n").expect("write");
    env.ok(&["rm", "--force", "s"]);
    let snapshot = only_snapshot(&env, "s");
    assert_eq!(show(&env, &snapshot, ".env/k"), "K");
    let names = env.git(&["ls-tree", "-r", "--name-only", &snapshot, "--", ".env"]);
    assert!(names.lines().count() == 2, "both files of the folder are kept: {names}");
}

#[test]
fn issue_17_review_an_archive_cut_short_snapshots_again_what_the_worktree_gained_since() {
    let mut env = TestEnv::new();
    let _ = arm(&mut env, "nothing");
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    let path = env.path_of("s");
    std::fs::write(path.join("first.txt"), "1\n").expect("write");
    let fired = arm(&mut env, "archive.snapshotted");
    let out = env.tandem(&["archive", "s"]);
    assert!(!out.status.success(), "the supervisor died mid-archive: {}", stderr(&out));
    wait_for("the fault to fire", || fired.exists().then_some(()));
    // The user saves a file before the next command; its supervisor then
    // finishes the archive the first one began.
    std::fs::write(path.join("later.txt"), "2\n").expect("write");
    let row = env.archived().into_iter().find(|r| r["name"] == "s").expect("archived");
    let kept = row["archive_ref"].as_str().expect("a snapshot");
    assert_eq!(show(&env, kept, "later.txt"), "2", "the snapshot holds what the worktree held when it went");
    env.ok(&["restore", "s"]);
    assert_eq!(std::fs::read_to_string(path.join("later.txt")).expect("restored"), "2\n");
    assert_eq!(std::fs::read_to_string(path.join("first.txt")).expect("restored"), "1\n");
}

#[test]
fn issue_17_review_a_base_named_relative_to_the_checkout_is_recorded_as_its_branch() {
    let env = TestEnv::new();
    env.git(&["checkout", "-q", "-b", "other"]);
    env.git(&["checkout", "-q", "main"]);
    // `@{-1}` is `other` here, and something else (or nothing) in the
    // session's own worktree.
    env.ok(&["new", "s", "--bg", "--agent", "shell", "--base", "@{-1}"]);
    assert_eq!(env.session("s")["base"], "other");
    // `@` is this checkout's HEAD, and the session's own HEAD there.
    env.ok(&["new", "t", "--bg", "--agent", "shell", "--base", "@"]);
    assert_eq!(env.session("t")["base"], "main");
}

#[test]
fn issue_17_review_gc_still_drops_old_snapshots_of_removed_sessions_from_before_owner_tags() {
    let env = TestEnv::new();
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    std::fs::write(env.path_of("s").join("new.txt"), "work\n").expect("write");
    env.ok(&["rm", "--force", "s"]);
    // As a tandem before owner tags named it, and recorded it in the row.
    let tagged = only_snapshot(&env, "s");
    let legacy = "refs/tandem/archive/s/1000";
    env.git(&["update-ref", legacy, &tagged]);
    env.git(&["update-ref", "-d", &tagged]);
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    let rows = db.execute("UPDATE sessions SET archive_ref = ?1 WHERE slug = 's'", [legacy]).expect("update");
    assert_eq!(rows, 1);
    let out = env.ok(&["gc", "--older-than", "0"]);
    assert!(out.contains(&format!("dropped {legacy}")), "its store points at it: {out}");
}

#[test]
fn issue_17_review_a_garbage_owner_file_is_named_with_the_fix() {
    let env = TestEnv::new();
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    std::fs::write(env.path_of("s").join("new.txt"), "work\n").expect("write");
    let owner = env.tandem_home.join("state/owner");
    std::fs::write(&owner, "garbage\n").expect("write");
    let err = env.fails(&["rm", "--force", "s"]);
    assert!(err.contains(&owner.display().to_string()) && err.contains("delete it"), "{err}");
    assert!(env.path_of("s").join("new.txt").exists(), "nothing changed");
    std::fs::remove_file(&owner).expect("rm owner");
    env.ok(&["rm", "--force", "s"]);
}

#[test]
fn issue_17_review_an_unreadable_owner_file_is_named_in_the_error() {
    let env = TestEnv::new();
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    std::fs::write(env.path_of("s").join("new.txt"), "work\n").expect("write");
    // Unreadable (the tests run as root, whom chmod does not stop): a folder.
    let owner = env.tandem_home.join("state/owner");
    std::fs::create_dir(&owner).expect("mkdir");
    let err = env.fails(&["rm", "--force", "s"]);
    assert!(err.contains(&owner.display().to_string()), "the error names the file: {err}");
    assert!(env.path_of("s").join("new.txt").exists(), "nothing changed");
}

/// Session `s`, whose agent put a folder of `n` files (`file(i)` gives
/// name and content) where its included `.env` was.
fn folder_for_env(env: &TestEnv, n: usize, file: impl Fn(usize) -> (String, String)) {
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    let dir = env.path_of("s").join(".env");
    std::fs::remove_file(&dir).expect("rm .env");
    std::fs::create_dir(&dir).expect("mkdir .env");
    for i in 0..n {
        let (name, text) = file(i);
        std::fs::write(dir.join(name), text).expect("write");
    }
}

#[test]
fn issue_17_review_a_huge_folder_where_an_included_file_was_is_kept_whole() {
    let env = TestEnv::new();
    with_included_env(&env);
    // More entries than include::changed compares one by one (10,000).
    folder_for_env(&env, 10_050, |i| (format!("{i:05}"), format!("{i}\n")));
    env.ok(&["rm", "--force", "s"]);
    let names = env.git(&["ls-tree", "-r", "--name-only", &only_snapshot(&env, "s"), "--", ".env"]);
    assert_eq!(names.lines().count(), 10_050, "every file of the folder is kept");
}

#[test]
fn issue_17_review_an_edited_included_file_with_a_non_utf8_name_is_unsaved_work() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    std::fs::write(env.repo.join(".gitignore"), "*.env\n").expect("write");
    std::fs::write(env.repo.join(".worktreeinclude"), "*.env\n").expect("write");
    env.git(&["add", ".gitignore", ".worktreeinclude"]);
    env.git(&["commit", "-q", "-m", "include *.env"]);
    let name = std::ffi::OsStr::from_bytes(b"k\xff.env");
    std::fs::write(env.repo.join(name), "KEY=one\n").expect("write");
    env.ok(&["new", "s", "--bg", "--agent", "shell"]);
    let path = env.path_of("s");
    assert_eq!(std::fs::read_to_string(path.join(name)).expect("copied"), "KEY=one\n");
    std::fs::write(path.join(name), "KEY=two\n").expect("edit");
    let err = env.fails(&["rm", "s"]);
    assert!(err.contains("1 changed included file"), "{err}");
    env.ok(&["rm", "--force", "s"]);
    let snapshot = only_snapshot(&env, "s");
    let listed = env.command_git_in(&env.repo, &["ls-tree", "-z", "--name-only", &snapshot]).stdout;
    assert!(listed.split(|b| *b == 0).any(|n| n == b"k\xff.env"), "the edited file is kept");
    let blob = env.command_git_in(&env.repo, &["ls-tree", "-z", &snapshot]).stdout;
    let line = blob.split(|b| *b == 0).find(|l| l.ends_with(b"k\xff.env")).expect("listed").to_vec();
    let oid = String::from_utf8_lossy(&line).split_whitespace().nth(2).expect("an id").to_owned();
    assert_eq!(env.git(&["cat-file", "blob", &oid]), "KEY=two\n");
}

#[test]
fn issue_17_review_rm_names_a_few_changed_included_files_not_all() {
    let env = TestEnv::new();
    with_included_env(&env);
    folder_for_env(&env, 500, |i| (format!("file-with-a-long-name-{i:04}"), "x\n".to_owned()));
    let err = env.fails(&["rm", "s"]);
    assert!(err.contains("500 changed included files"), "{err}");
    assert!(err.len() < 400, "one readable line: {} bytes", err.len());
}

#[test]
fn issue_17_review_a_detached_commit_counts_whatever_relative_base_an_older_tandem_stored() {
    let env = TestEnv::new();
    let commit = detached_commit(&env, "s");
    // A row from before bases were stored as commits: `--base @` kept `@`,
    // which in the session's own worktree is its detached HEAD.
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("db");
    assert_eq!(db.execute("UPDATE sessions SET base_ref = '@' WHERE slug = 's'", []).expect("update"), 1);
    let err = env.fails(&["rm", "s"]);
    assert!(err.contains("1 commit on a detached HEAD"), "{err}");
    env.ok(&["rm", "--force", "s"]);
    assert!(reachable(&env, &commit, &only_snapshot(&env, "s")));
}
