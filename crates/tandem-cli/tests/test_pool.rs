//! Issue 23, the worktree pool: `[worktrees] pool = N` keeps N checked
//! out worktrees ready; `tandem new` takes one (a move and a `git
//! switch`), which must leave exactly the requested base's tree, never
//! hand out one someone wrote in, be removed as any session's, and
//! survive a `kill -9` of the supervisor while it refills.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{TestEnv, stderr, stdout, wait_for};

/// A repository whose `main` has two commits: `first` (25 files, among
/// them `gone.txt`) and, on top, one that changes `keep.txt`, deletes
/// `gone.txt` and adds `added.txt` and `new-dir/y.txt`. Returns the
/// environment and `first`'s commit.
fn two_commits() -> (TestEnv, String) {
    let env = TestEnv::new();
    for i in 0..20 {
        std::fs::create_dir_all(env.repo.join(format!("d{}", i % 4))).expect("mkdir");
        std::fs::write(env.repo.join(format!("d{}/f{i}.txt", i % 4)), format!("{i}\n")).expect("write");
    }
    std::fs::write(env.repo.join("keep.txt"), "first\n").expect("write");
    std::fs::write(env.repo.join("gone.txt"), "only in first\n").expect("write");
    std::fs::write(env.repo.join(".gitignore"), "*.log\n").expect("write");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "first"]);
    let first = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(env.repo.join("keep.txt"), "second\n").expect("write");
    std::fs::remove_file(env.repo.join("gone.txt")).expect("rm");
    std::fs::write(env.repo.join("added.txt"), "only in second\n").expect("write");
    std::fs::create_dir_all(env.repo.join("new-dir")).expect("mkdir");
    std::fs::write(env.repo.join("new-dir/y.txt"), "y\n").expect("write");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "second"]);
    (env, first)
}

const POOL_OF_ONE: &str = "[worktrees]\npool = 1\n[base]\ndefault = \"head\"\n[supervisor]\nquiet_secs = 100000\n";

fn doctor(env: &TestEnv) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["doctor", "--json"])).expect("doctor --json is JSON")
}

/// The pooled worktrees git lists: `(path, lock reason)`.
fn pooled(env: &TestEnv) -> Vec<(PathBuf, Option<String>)> {
    let list = env.git(&["worktree", "list", "--porcelain"]);
    let mut out = Vec::new();
    for record in list.split("\n\n") {
        let mut path = None;
        let mut locked = None;
        for line in record.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(PathBuf::from(p));
            } else if let Some(reason) = line.strip_prefix("locked") {
                locked = Some(reason.trim().to_owned());
            }
        }
        if let Some(path) = path.filter(|p| p.to_string_lossy().contains("/.pool/")) {
            out.push((path, locked));
        }
    }
    out
}

/// Waits until the pool has `n` ready worktrees and no other folder
/// (`extra` folders besides: ones set aside as changed); returns the
/// ready ones.
fn wait_ready(env: &TestEnv, n: u64, extra: u64) -> Vec<PathBuf> {
    wait_for("the pool to be full", || {
        let d = doctor(env);
        (d["pool"]["ready"] == n && d["pool"]["folders"] == n + extra).then_some(())
    });
    pooled(env)
        .into_iter()
        .filter(|(_, reason)| reason.as_deref().is_some_and(|r| r.starts_with("tandem pool: ready")))
        .map(|(p, _)| p)
        .collect()
}

/// The admin folder name in a linked worktree's `.git` file: the
/// basename of the folder `git worktree add` first made it in.
fn admin_name(worktree: &Path) -> String {
    let dotgit = std::fs::read_to_string(worktree.join(".git")).expect(".git file");
    dotgit.trim().rsplit('/').next().expect("admin name").to_owned()
}

/// Every file under `dir` but `.git`, as sorted relative paths.
fn files_on_disk(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_pooled_worktree_taken_by_new_has_exactly_the_requested_base() {
    let (env, first) = two_commits();
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let ready = wait_ready(&env, 1, 0);
    let pooled_at = env.git_in(&ready[0], &["rev-parse", "HEAD"]).trim().to_owned();
    assert_eq!(pooled_at, env.git(&["rev-parse", "HEAD"]).trim(), "the pool is made at the default base");

    // `b` asks for the older commit: the pooled worktree switches to it.
    env.ok(&["new", "b", "--bg", "--agent", "shell", "--base", &first]);
    let b = env.path_of("b");
    let taken = ready[0].file_name().expect("name").to_string_lossy().into_owned();
    assert_eq!(admin_name(&b), taken, "b is the pooled worktree, moved");
    assert!(!ready[0].exists(), "the pooled folder moved to b's path");
    assert_eq!(env.git_in(&b, &["rev-parse", "HEAD"]).trim(), first);
    assert_eq!(env.git_in(&b, &["symbolic-ref", "--short", "HEAD"]).trim(), "b");
    assert_eq!(env.git_in(&b, &["status", "--porcelain", "--ignored", "--untracked-files=all"]), "");
    let tree = env.git_in(&b, &["ls-tree", "-r", "--name-only", &first]);
    let mut tree: Vec<String> = tree.lines().map(str::to_owned).collect();
    tree.sort();
    assert_eq!(files_on_disk(&b), tree, "exactly the files of the requested base, nothing stray");
    assert!(!b.join("new-dir").exists(), "a folder only the pooled base had is gone");
    assert_eq!(std::fs::read_to_string(b.join("keep.txt")).expect("read"), "first\n");
    assert!(b.join("gone.txt").is_file(), "a file only the requested base has is there");

    // The pool refills, and a session at the pool's own base takes it too.
    let ready = wait_ready(&env, 1, 0);
    env.ok(&["new", "c", "--bg", "--agent", "shell"]);
    let c = env.path_of("c");
    assert_eq!(admin_name(&c), ready[0].file_name().expect("name").to_string_lossy());
    assert_eq!(env.git_in(&c, &["rev-parse", "HEAD"]), env.git(&["rev-parse", "HEAD"]));
    assert_eq!(env.git_in(&c, &["status", "--porcelain", "--ignored", "--untracked-files=all"]), "");
    assert_eq!(env.session("c")["state"], "running");
    assert_eq!(doctor(&env)["findings"], serde_json::json!([]));

    // A base whose tree differs in most files is far: `git worktree add`.
    let ready = wait_ready(&env, 1, 0);
    env.git(&["switch", "-q", "-c", "rewrite"]);
    for i in 0..20 {
        std::fs::write(env.repo.join(format!("d{}/f{i}.txt", i % 4)), format!("rewritten {i}\n")).expect("write");
    }
    env.git(&["commit", "-q", "-am", "rewrite every file"]);
    env.git(&["switch", "-q", "main"]);
    env.ok(&["new", "d", "--bg", "--agent", "shell", "--base", "rewrite"]);
    assert_eq!(admin_name(&env.path_of("d")), "d", "a far base is checked out whole");
    assert!(ready[0].is_dir(), "the pooled worktree stays in the pool");
    assert_eq!(env.git_in(&env.path_of("d"), &["status", "--porcelain", "--ignored"]), "");
}

#[test]
fn a_pooled_worktree_someone_wrote_in_is_never_handed_out_nor_removed() {
    let (env, _) = two_commits();
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let ready = wait_ready(&env, 1, 0);
    let written = ready[0].clone();
    // An ignored file counts as much as an untracked one.
    std::fs::write(written.join("build.log"), "made by someone\n").expect("write");

    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    let b = env.path_of("b");
    assert_eq!(admin_name(&b), "b", "b was made by `git worktree add`, not from the written-in pool");
    assert!(!b.join("build.log").exists());
    assert_eq!(
        std::fs::read_to_string(written.join("build.log")).expect("still there"),
        "made by someone\n",
        "what was written in the pool is left alone"
    );
    // The pool is made up again beside it, and doctor tells.
    wait_ready(&env, 1, 1);
    let report = doctor(&env);
    let findings = report["findings"].as_array().expect("findings");
    assert!(
        findings.iter().any(|f| f["problem"].as_str().is_some_and(|p| p.contains("has changes"))
            && f["remedy"].as_str().is_some_and(|r| r.starts_with("left alone"))),
        "{report}"
    );
    // Neither `doctor --fix` nor `gc` with the pool off removes it.
    env.user_config("[worktrees]\npool = 0\n[base]\ndefault = \"head\"\n");
    env.ok(&["doctor", "--fix"]);
    let gc = env.ok(&["gc"]);
    assert!(written.join("build.log").is_file(), "gc kept the written-in worktree: {gc}");
    assert_eq!(pooled(&env).len(), 1, "gc removed the clean pooled worktree: {gc}");
}

#[test]
fn rm_of_a_session_made_from_the_pool_behaves_as_any() {
    let (env, _) = two_commits();
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let ready = wait_ready(&env, 1, 0);
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    let b = env.path_of("b");
    assert_eq!(admin_name(&b), ready[0].file_name().expect("name").to_string_lossy());
    env.commit_in(&b, "work.txt", "committed\n", "work");
    std::fs::write(b.join("draft.txt"), "not committed\n").expect("write");

    let refused = env.fails(&["rm", "b"]);
    assert!(refused.contains("--force"), "{refused}");
    assert!(b.join("draft.txt").is_file(), "a refused rm changes nothing");
    // `--wait`: git's own bookkeeping (the prune) is done before it
    // returns, for the plain `git worktree list` below (a tandem command
    // would wait for it).
    env.ok(&["rm", "--force", "--wait", "b"]);
    assert!(!b.exists());
    let snapshots = env.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/archive/b/"]);
    let snapshot = snapshots.lines().next().expect("a snapshot of b");
    assert_eq!(env.git(&["show", &format!("{snapshot}:draft.txt")]), "not committed\n");
    assert_eq!(env.git(&["show", &format!("{snapshot}:work.txt")]), "committed\n");
    let listed = env.git(&["worktree", "list", "--porcelain"]);
    assert!(!listed.contains(&*b.to_string_lossy()), "{listed}");
    // The name is free again.
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    assert!(!env.path_of("b").join("draft.txt").exists());
}

#[test]
fn a_kill_during_a_pool_refill_leaves_nothing_past_one_gc() {
    let (env, _) = two_commits();
    // A checkout that takes seconds: git is mid-checkout when the
    // supervisor dies.
    let (env, faults) = with_slow_file(env, "last\n");
    env.user_config("[base]\ndefault = \"head\"\n[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);

    env.user_config(POOL_OF_ONE);
    slow_checkouts(&env, true);
    std::fs::write(&faults, "git:worktree-add 300 self\n").expect("arm");
    // `gc` asks for the pool to be filled; its refill is killed.
    env.ok(&["gc"]);
    let fired = PathBuf::from(format!("{}.fired", faults.display()));
    let text = wait_for("the fault to fire", || std::fs::read_to_string(&fired).ok());
    let killed: i32 = text.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("the killed pid");
    wait_for("the supervisor to be gone", || (!tandem_core::process::is_alive(killed)).then_some(()));
    std::fs::remove_file(&fired).expect("disarm");
    slow_checkouts(&env, false);
    let half = pooled(&env);
    assert_eq!(half.len(), 1, "the refill was cut short mid-checkout: {half:?}");
    assert_eq!(half[0].1.as_deref(), Some("initializing"), "{half:?}");

    // One `gc` (on a new supervisor) and the pool is whole again.
    let out = env.command_in(&env.repo, &["gc"]).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("gc");
    assert!(out.status.success(), "{}", stderr(&out));
    let ready = wait_ready(&env, 1, 0);
    assert_ne!(ready[0], half[0].0, "the half-made one is gone: {}", stdout(&out));
    assert!(!half[0].0.exists());
    let listed = env.git(&["worktree", "list", "--porcelain"]);
    assert!(!listed.contains("initializing"), "{listed}");
    assert!(!listed.contains("prunable"), "{listed}");
    let pool_dir = ready[0].parent().expect("pool dir");
    let left: Vec<_> = std::fs::read_dir(pool_dir).expect("pool dir").flatten().map(|e| e.path()).collect();
    assert_eq!(left, ready, "nothing else is in the pool's folder");
    let trash = pool_dir.parent().and_then(Path::parent).expect("worktrees").join(".trash");
    assert!(std::fs::read_dir(&trash).map_or(true, |mut d| d.next().is_none()), "nothing went to the trash");
    assert_eq!(doctor(&env)["findings"], serde_json::json!([]));
    // Nothing blocks a name.
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    assert_eq!(env.session("b")["state"], "running");
}

#[test]
fn the_pool_size_is_the_users_alone_and_checked() {
    let (env, _) = two_commits();
    // A repository cannot make tandem fill the user's disk.
    std::fs::write(env.repo.join(".tandem.toml"), "[worktrees]\npool = 8\n").expect("write");
    env.git(&["add", ".tandem.toml"]);
    env.git(&["commit", "-q", "-m", "ask for a pool"]);
    env.user_config("[base]\ndefault = \"head\"\n");
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    assert_eq!(admin_name(&env.path_of("b")), "b");
    assert_eq!(doctor(&env)["pool"]["size"], 0);
    let shown = env.ok(&["config", "show"]);
    assert!(shown.contains("worktrees.pool"), "{shown}");
    assert!(pooled(&env).is_empty());
    assert!(!env.path_of("a").parent().expect("worktrees").join(".pool").exists());

    // Too large, or negative: a clear error, nothing made.
    for (value, says) in [("9", "at most 8"), ("-1", "config.toml:2: invalid value: integer `-1`")] {
        env.user_config(&format!("[worktrees]\npool = {value}\n"));
        let err = env.fails(&["new", "c", "--bg", "--agent", "shell"]);
        assert!(err.contains(says), "pool = {value}: {err}");
        assert!(err.contains("config.toml"), "names the file: {err}");
        env.user_config("[base]\ndefault = \"head\"\n");
        assert!(!env.sessions().iter().any(|s| s["name"] == "c"), "nothing made for pool = {value}");
    }
}

/// Commits `zz.slow` (`text`) with a `slow` filter ([`slow_checkouts`]
/// makes its checkout take seconds) and arms nothing yet: returns the
/// environment with `TANDEM_FAULTS` set, and that file's path.
fn with_slow_file(mut env: TestEnv, text: &str) -> (TestEnv, PathBuf) {
    let faults = env.tmp.path().join("faults");
    env.env.push(("TANDEM_FAULTS".into(), faults.to_string_lossy().into_owned()));
    std::fs::write(env.repo.join(".gitattributes"), "zz.slow filter=slow\n").expect("write");
    std::fs::write(env.repo.join("zz.slow"), text).expect("write");
    env.git(&["config", "filter.slow.smudge", "cat"]);
    env.git(&["config", "filter.slow.clean", "cat"]);
    env.git(&["add", ".gitattributes", "zz.slow"]);
    env.git(&["commit", "-q", "-m", "a slow file"]);
    (env, faults)
}

/// Makes every checkout of `zz.slow` take 6 s (`slow`) or none.
fn slow_checkouts(env: &TestEnv, slow: bool) {
    env.git(&["config", "filter.slow.smudge", if slow { "sleep 6; cat" } else { "cat" }]);
}

#[test]
fn a_kill_while_new_takes_a_pooled_worktree_is_undone_by_the_next_command() {
    let (env, _) = two_commits();
    // `zz.slow` differs between `before` and HEAD: taking the pooled
    // worktree (at HEAD) for `before` checks it out, slowly.
    let (env, faults) = with_slow_file(env, "earlier\n");
    let before = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(env.repo.join("zz.slow"), "later\n").expect("write");
    env.git(&["add", "zz.slow"]);
    env.git(&["commit", "-q", "-m", "slow file"]);
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);

    for (point, name) in [("pool.moved", "b"), ("git:switch 300 self", "c")] {
        wait_ready(&env, 1, 0);
        slow_checkouts(&env, true);
        std::fs::write(&faults, format!("{point}\n")).expect("arm");
        let out = env
            .command_in(&env.repo, &["new", name, "--bg", "--agent", "shell", "--base", &before])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        let fired = PathBuf::from(format!("{}.fired", faults.display()));
        assert!(fired.exists(), "{point} did not fire: {}", stderr(&out));
        assert!(!out.status.success(), "new {name} should fail when its supervisor dies");
        std::fs::remove_file(&fired).expect("disarm");
        slow_checkouts(&env, false);

        // The next command undoes the creation: no session, no branch,
        // no worktree; the name is free.
        let listed = env.ok(&["list"]);
        assert!(!listed.lines().any(|l| l.starts_with(&format!("{name} "))), "{point}: {listed}");
        assert_eq!(env.git(&["branch", "--list", name]), "", "{point}");
        assert!(!listed.contains("creating"), "{point}: {listed}");
        let worktrees = env.git(&["worktree", "list", "--porcelain"]);
        assert!(!worktrees.contains(&format!("/{name}\n")), "{point}: {worktrees}");
        assert!(!env.path_of("a").with_file_name(name).exists(), "{point}: the half checkout is gone");
        env.ok(&["new", name, "--bg", "--agent", "shell", "--base", &before]);
        let made = env.path_of(name);
        assert_eq!(env.git_in(&made, &["rev-parse", "HEAD"]).trim(), before, "{point}");
        assert_eq!(env.git_in(&made, &["status", "--porcelain", "--ignored"]), "", "{point}");
    }
}

#[test]
fn gc_and_doctor_never_remove_a_pooled_worktree_someone_switched_to_a_branch_and_wrote_in() {
    let (env, _) = two_commits();
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let entry = wait_ready(&env, 1, 0).remove(0);
    // On a branch, with changes, no longer locked ready: someone's work.
    // The supervisor is stopped meanwhile: its tidy would set the written
    // worktree aside and its refill make another, whose half-written
    // admin files make this `git worktree unlock` fail.
    env.ok(&["daemon", "stop"]);
    env.git_in(&entry, &["switch", "-q", "-c", "wip"]);
    std::fs::write(entry.join("keep.txt"), "precious\n").expect("write");
    std::fs::write(entry.join("mynotes.txt"), "notes\n").expect("write");
    env.git(&["worktree", "unlock", &entry.to_string_lossy()]);
    env.ok(&["gc"]);
    assert!(entry.join("mynotes.txt").is_file(), "gc kept it");
    env.ok(&["doctor", "--fix"]);
    env.user_config("[worktrees]\npool = 0\n[base]\ndefault = \"head\"\n");
    env.ok(&["gc"]);
    assert_eq!(std::fs::read_to_string(entry.join("keep.txt")).expect("kept"), "precious\n");
    assert!(entry.join("mynotes.txt").is_file());
    let report = doctor(&env);
    assert!(report.to_string().contains("has changes"), "{report}");
}

#[test]
fn repositories_sharing_a_worktrees_folder_keep_their_own_pools() {
    let (env, _) = two_commits();
    let other = env.tmp.path().join("other");
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "other"]);
    std::fs::write(other.join("o.txt"), "other\n").expect("write");
    env.git_in(&other, &["add", "."]);
    env.git_in(&other, &["commit", "-q", "-m", "other"]);
    let shared = env.tmp.path().join("shared-worktrees");
    env.user_config(
        &format!("{POOL_OF_ONE}[worktrees.x]\n")
            .replace("[worktrees]\npool = 1\n", &format!("[worktrees]\npool = 1\ndir = \"{}\"\n", shared.display()))
            .replace("[worktrees.x]\n", ""),
    );
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let mine = wait_ready(&env, 1, 0).remove(0);
    std::fs::write(mine.join("notes.txt"), "mine\n").expect("write");
    // The other repository's gc and new tidy its own pool only.
    let out = env.command_in(&other, &["gc"]).output().expect("gc");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.command_in(&other, &["new", "o", "--bg", "--agent", "shell"]).output().expect("new");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.command_in(&other, &["gc"]).output().expect("gc");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).expect("still there"), "mine\n");
    assert!(env.git_in(&mine, &["rev-parse", "HEAD"]).trim().len() == 40, "still a worktree");
    // Nor does its doctor take this repository's pool for its own.
    let out = env.command_in(&other, &["doctor", "--json"]).output().expect("doctor");
    let report = stdout(&out);
    assert!(!report.contains(&*mine.to_string_lossy()), "{report}");
}

#[test]
fn the_pool_runs_no_repository_hook_and_hands_out_no_hidden_change() {
    let (env, _) = two_commits();
    // A post-checkout hook that leaves an ignored file wherever it runs.
    let hook = env.repo.join(".git/hooks/post-checkout");
    std::fs::write(&hook, "#!/bin/sh\ndate > hooked.log\n").expect("write");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let ready = wait_ready(&env, 1, 0);
    assert!(!ready[0].join("hooked.log").exists(), "the hook did not run in the pool");
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    let b = env.path_of("b");
    assert_eq!(admin_name(&b), ready[0].file_name().expect("name").to_string_lossy(), "b came from the pool");

    // A change hidden from `git status` by the skip-worktree bit.
    let entry = wait_ready(&env, 1, 0).remove(0);
    env.git_in(&entry, &["update-index", "--skip-worktree", "keep.txt"]);
    std::fs::write(entry.join("keep.txt"), "EVIL\n").expect("write");
    env.ok(&["new", "c", "--bg", "--agent", "shell"]);
    let c = env.path_of("c");
    assert_eq!(admin_name(&c), "c", "the tampered worktree was not handed out");
    assert_eq!(std::fs::read_to_string(c.join("keep.txt")).expect("read"), "second\n");
}

#[test]
fn a_base_whose_attributes_changed_is_checked_out_whole() {
    let (env, _) = two_commits();
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let ready = wait_ready(&env, 1, 0);
    // Line endings change for every text file, not their blobs.
    std::fs::write(env.repo.join(".gitattributes"), "*.txt text eol=crlf\n").expect("write");
    env.git(&["add", ".gitattributes"]);
    env.git(&["commit", "-q", "-m", "crlf"]);
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    let b = env.path_of("b");
    assert_ne!(admin_name(&b), ready[0].file_name().expect("name").to_string_lossy());
    assert_eq!(std::fs::read(b.join("keep.txt")).expect("read"), b"second\r\n");
}

#[test]
fn gc_leaves_an_unlocked_pooled_worktree_someone_switched_to_a_branch_even_clean() {
    let (env, _) = two_commits();
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let entry = wait_ready(&env, 1, 0).remove(0);
    // On a branch of its own, nothing written yet, unlocked: someone's,
    // not a take cut short (that is locked initializing). The supervisor
    // is stopped meanwhile, so no refill's half-written admin files make
    // `git worktree unlock` fail.
    env.ok(&["daemon", "stop"]);
    env.git_in(&entry, &["switch", "-q", "-c", "mine"]);
    env.git(&["worktree", "unlock", &entry.to_string_lossy()]);
    let gc = env.ok(&["gc"]);
    assert!(entry.is_dir(), "gc removed a worktree on a branch: {gc}");
    assert_eq!(env.git_in(&entry, &["branch", "--show-current"]).trim(), "mine");
}

#[test]
fn gc_leaves_a_pooled_worktree_someone_else_locked_whatever_its_name() {
    let (env, _) = two_commits();
    env.user_config(POOL_OF_ONE);
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    let entry = wait_ready(&env, 1, 0).remove(0);
    // Named as tandem names what it sets aside, but locked by someone.
    // The supervisor is stopped meanwhile: an unlocked clean pooled
    // worktree, as this one is between the unlock and the lock, is one
    // its tidy may rightly remove.
    env.ok(&["daemon", "stop"]);
    let gone = entry.with_file_name(".gone-theirs");
    let (from, to) = (entry.to_string_lossy().into_owned(), gone.to_string_lossy().into_owned());
    env.git(&["worktree", "unlock", &from]);
    env.git(&["worktree", "move", &from, &to]);
    env.git(&["worktree", "lock", "--reason", "mine", &to]);
    std::fs::write(gone.join("notes.txt"), "mine\n").expect("write");
    let gc = env.ok(&["gc"]);
    assert!(gone.join("notes.txt").is_file(), "gc removed a worktree someone locked: {gc}");
}
