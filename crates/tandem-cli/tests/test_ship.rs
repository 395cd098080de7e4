//! Review and ship, the git-only part: `diff`, `push`, `sync` (and
//! `--abort`) against a local bare repository as the remote.

use std::path::PathBuf;

use crate::common::TestEnv;

/// A bare repository as `origin`, with `main` pushed and `origin/HEAD`
/// set, so sessions branch from `origin/main`.
pub(crate) fn with_remote(env: &TestEnv) -> PathBuf {
    let remote = env.tmp.path().join("remote.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    env.git(&["remote", "add", "origin", &remote.to_string_lossy()]);
    env.git(&["push", "-q", "-u", "origin", "main"]);
    env.git(&["remote", "set-head", "origin", "--auto"]);
    remote
}

/// A commit on the remote's `main` made from another clone.
fn commit_upstream(env: &TestEnv, remote: &std::path::Path, file: &str, text: &str) {
    let other = env.tmp.path().join("other");
    if !other.exists() {
        env.git_in(env.tmp.path(), &["clone", "-q", &remote.to_string_lossy(), "other"]);
    }
    env.git_in(&other, &["pull", "-q"]);
    std::fs::write(other.join(file), text).expect("write");
    env.git_in(&other, &["add", file]);
    env.git_in(&other, &["commit", "-q", "-m", &format!("upstream: {file}")]);
    env.git_in(&other, &["push", "-q", "origin", "main"]);
}

#[test]
fn diff_shows_committed_uncommitted_and_untracked_work() {
    let env = TestEnv::new();
    let remote = with_remote(&env);
    env.ok(&["new", "work", "--bg", "--agent", "shell"]);
    let wt = env.path_of("work");
    std::fs::write(wt.join("committed.txt"), "one\ntwo\n").expect("write");
    env.git_in(&wt, &["add", "committed.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "add committed"]);
    std::fs::write(wt.join("README.md"), "# test repo\nmore\n").expect("write");
    std::fs::write(wt.join("untracked.txt"), "new\n").expect("write");
    // The base moving on is not the session's change.
    commit_upstream(&env, &remote, "upstream.txt", "theirs\n");
    env.git(&["fetch", "-q", "origin"]);

    let names = env.ok(&["diff", "work", "--name-only"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["README.md", "committed.txt", "untracked.txt"]);
    let stat = env.ok(&["diff", "work", "--stat"]);
    assert!(stat.contains("3 files changed, 4 insertions(+)"), "{stat}");
    let full = env.ok(&["diff", "work"]);
    assert!(full.contains("+more") && full.contains("+new") && !full.contains("theirs"), "{full}");

    let json: serde_json::Value = serde_json::from_str(&env.ok(&["diff", "work", "--json"])).expect("json");
    assert_eq!((json["insertions"].as_u64(), json["deletions"].as_u64()), (Some(4), Some(0)), "{json}");
    let files = json["files"].as_array().expect("files");
    assert!(files.iter().any(|f| f["path"] == "committed.txt" && f["insertions"] == 2), "{json}");

    let uncommitted = env.ok(&["diff", "work", "--uncommitted", "--name-only"]);
    assert_eq!(uncommitted.lines().collect::<Vec<_>>(), ["README.md", "untracked.txt"]);
    // Against the session's own HEAD: only the work on top of it, so
    // `--against` is heard (the base would show committed.txt too).
    let against_head = env.ok(&["diff", "work", "--against", "HEAD", "--name-only"]);
    assert_eq!(against_head.lines().collect::<Vec<_>>(), ["README.md", "untracked.txt"]);
    // Against the remote's main, which moved on: from the merge-base, so
    // its new file does not show as removed.
    let against_remote = env.ok(&["diff", "work", "--against", "origin/main", "--name-only"]);
    assert!(!against_remote.contains("upstream.txt"), "merge-base, not the tip: {against_remote}");

    // Nothing was written: the worktree's own index is untouched.
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), " M README.md\n?? untracked.txt\n");
    let err = env.fails(&["diff", "work", "--against", "no-such-ref"]);
    assert!(err.contains("`no-such-ref` does not name a commit"), "{err}");
    let err = env.fails(&["diff", "nope"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn push_sets_the_upstream_and_refuses_protected_branches_and_no_remote() {
    let env = TestEnv::new();
    env.ok(&["new", "lonely", "--bg", "--agent", "shell", "--base", "head"]);
    let err = env.fails(&["push", "lonely"]);
    assert!(err.contains("no remote; add one with `git remote add origin URL`"), "{err}");

    let remote = with_remote(&env);
    env.ok(&["new", "shipit", "--bg", "--agent", "shell"]);
    let wt = env.path_of("shipit");
    std::fs::write(wt.join("f.txt"), "x\n").expect("write");
    env.git_in(&wt, &["add", "f.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "f"]);
    let out = env.ok(&["push", "shipit"]);
    assert!(out.contains("pushed shipit to origin"), "{out}");
    assert_eq!(env.git_in(&wt, &["rev-parse", "--abbrev-ref", "@{upstream}"]).trim(), "origin/shipit");
    assert_eq!(
        env.git_in(&remote, &["rev-parse", "shipit"]),
        env.git_in(&wt, &["rev-parse", "HEAD"]),
        "the remote has the commit"
    );

    // A branch made protected afterwards is never pushed.
    std::fs::write(env.repo.join(".tandem.toml"), "[branch]\nprotected = [\"shipit\"]\n").expect("write");
    let before = env.git_in(&remote, &["rev-parse", "shipit"]);
    std::fs::write(wt.join("g.txt"), "y\n").expect("write");
    env.git_in(&wt, &["add", "g.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "g"]);
    let err = env.fails(&["push", "shipit"]);
    assert!(err.contains("`shipit` is a protected branch; tandem never pushes it"), "{err}");
    assert_eq!(env.git_in(&remote, &["rev-parse", "shipit"]), before, "nothing pushed");
}

#[test]
fn sync_rebases_merges_stops_on_conflicts_and_aborts_to_the_same_tree() {
    let env = TestEnv::new();
    let remote = with_remote(&env);
    env.ok(&["new", "syncer", "--bg", "--agent", "shell"]);
    let wt = env.path_of("syncer");
    std::fs::write(wt.join("mine.txt"), "mine\n").expect("write");
    env.git_in(&wt, &["add", "mine.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "mine"]);
    assert!(env.ok(&["sync", "syncer"]).contains("syncer is up to date with origin/main"));

    // The base moves on: sync fetches it and rebases (the branch is unpushed).
    commit_upstream(&env, &remote, "theirs.txt", "theirs\n");
    let old_tip = env.git_in(&wt, &["rev-parse", "HEAD"]);
    let out = env.ok(&["sync", "syncer"]);
    assert!(out.contains("syncer rebased onto origin/main (1 new commit)"), "{out}");
    let saved = out.trim().rsplit(' ').next().expect("saved ref").to_owned();
    assert_eq!(env.git(&["rev-parse", &saved]), old_tip, "the old tip is kept");
    assert!(wt.join("theirs.txt").exists());
    assert_eq!(env.git_in(&wt, &["log", "--format=%s", "-2"]), "mine\nupstream: theirs.txt\n");

    // Uncommitted work is refused, nothing changed.
    std::fs::write(wt.join("mine.txt"), "dirty\n").expect("write");
    commit_upstream(&env, &remote, "more.txt", "more\n");
    let err = env.fails(&["sync", "syncer"]);
    assert!(err.contains("has uncommitted changes in 1 file(s)"), "{err}");
    env.git_in(&wt, &["checkout", "--", "mine.txt"]);

    // A conflict stops cleanly and names the file; --abort restores it all.
    std::fs::write(wt.join("README.md"), "# ours\n").expect("write");
    env.git_in(&wt, &["commit", "-q", "-am", "ours"]);
    commit_upstream(&env, &remote, "README.md", "# theirs\n");
    let head = env.git_in(&wt, &["rev-parse", "HEAD"]);
    let status = env.git_in(&wt, &["status", "--porcelain"]);
    let tree = std::fs::read_to_string(wt.join("README.md")).expect("read");
    let err = env.fails(&["sync", "syncer", "--merge"]);
    assert!(err.contains("stopped on conflicts in README.md"), "{err}");
    assert!(err.contains("tandem sync syncer --abort"), "{err}");
    let err = env.fails(&["sync", "syncer"]);
    assert!(err.contains("in the middle of a rebase or merge"), "{err}");
    assert!(env.ok(&["sync", "syncer", "--abort"]).contains("aborted the merge"));
    assert_eq!(env.git_in(&wt, &["rev-parse", "HEAD"]), head);
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), status);
    assert_eq!(std::fs::read_to_string(wt.join("README.md")).expect("read"), tree);
    let err = env.fails(&["sync", "syncer", "--abort"]);
    assert!(err.contains("has no sync in progress"), "{err}");
}

/// `merge` lands the session on its base branch only when asked, and
/// refuses a dirty target or a conflict with nothing changed.
#[test]
fn merge_into_the_base_and_refusals_that_change_nothing() {
    let env = TestEnv::new();
    let commit =
        |name: &str, file: &str, text: &str| env.commit_in(&env.path_of(name), file, text, &format!("{name}: {file}"));
    env.ok(&["new", "feature", "--bg", "--agent", "shell", "--base", "head"]);
    commit("feature", "feature.txt", "feature\n");

    // A dirty target is refused; nothing changes.
    std::fs::write(env.repo.join("README.md"), "# local edit\n").expect("write");
    let main = env.git(&["rev-parse", "main"]);
    let err = env.fails(&["merge", "feature"]);
    assert!(err.contains("main has uncommitted changes"), "{err}");
    assert_eq!(env.git(&["rev-parse", "main"]), main);
    env.git(&["checkout", "--", "README.md"]);

    let out = env.ok(&["merge", "feature"]);
    assert!(out.starts_with("merged feature into main"), "{out}");
    assert!(out.contains("tandem archive feature"), "{out}");
    assert_eq!(env.git(&["log", "-1", "--format=%p"]).split_whitespace().count(), 2, "a merge commit");
    assert!(env.repo.join("feature.txt").exists(), "the main worktree has it");
    let err = env.fails(&["merge", "feature"]);
    assert!(err.contains("feature has nothing to merge into main"), "{err}");

    // A conflict is found before anything moves, and named.
    env.ok(&["new", "clash", "--bg", "--agent", "shell", "--base", "head"]);
    commit("clash", "README.md", "# clash\n");
    std::fs::write(env.repo.join("README.md"), "# main moved\n").expect("write");
    env.git(&["commit", "-q", "-am", "main moves"]);
    let main = env.git(&["rev-parse", "main"]);
    let status = env.git(&["status", "--porcelain"]);
    let err = env.fails(&["merge", "clash"]);
    assert!(err.contains("would conflict in README.md"), "{err}");
    assert_eq!((env.git(&["rev-parse", "main"]), env.git(&["status", "--porcelain"])), (main, status));

    // --squash: one commit; --into a branch no worktree has.
    env.ok(&["new", "squashy", "--bg", "--agent", "shell", "--base", "head"]);
    commit("squashy", "a.txt", "a\n");
    commit("squashy", "b.txt", "b\n");
    env.git(&["branch", "release", "main"]);
    let out = env.ok(&["merge", "squashy", "--squash", "--into", "release"]);
    assert!(out.starts_with("squashed squashy into release"), "{out}");
    assert_eq!(env.git(&["rev-list", "--count", "main..release"]).trim(), "1");
    assert_eq!(env.git(&["show", "release:b.txt"]), "b\n");
    assert!(!env.git(&["worktree", "list"]).contains("merge-worktree"), "the temporary worktree is gone");
}
