//! Issue 19, names: a session is found by its name, an old name, its
//! branch and its title; `tandem rename`; no NAME inside a session's
//! worktree means that session; `REPO/NAME` and `--repo` reach other
//! repositories; mistyped names and subcommands get suggestions.

use std::path::Path;

use crate::common::{TestEnv, stderr, stdout};

/// `tandem path NAME` run in `dir`: the folder it prints.
fn path_in(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let out = env.tandem_in(dir, args);
    assert!(out.status.success(), "tandem {args:?} in {}: {}", dir.display(), stderr(&out));
    stdout(&out).trim().to_owned()
}

/// A second repository, `other`, with one commit, beside the test's.
fn other_repo(env: &TestEnv) -> std::path::PathBuf {
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "other"]);
    let other = env.tmp.path().join("other");
    env.git_in(&other, &["commit", "-q", "--allow-empty", "-m", "initial commit"]);
    other
}

#[test]
fn a_session_is_found_by_its_name_its_branch_and_its_title() {
    let env = TestEnv::new();
    env.ok(&["new", "lucky-crane", "--bg", "--agent", "shell", "--branch", "tandem/fix-login-redirect"]);
    env.ok(&["set", "lucky-crane", "--title", "Fix the login redirect"]);
    let path = env.path_of("lucky-crane").display().to_string();
    // The branch (as `tandem list` shows it), the title's slug, the name.
    for name in ["tandem/fix-login-redirect", "fix-the-login-redirect", "lucky-crane"] {
        assert_eq!(path_in(&env, &env.repo, &["path", name]), path, "{name}");
    }
    // `tandem diff <branch>`: issue 19's first report.
    let out = env.tandem(&["diff", "--stat", "tandem/fix-login-redirect"]);
    assert!(out.status.success(), "diff by branch: {}", stderr(&out));
}

#[test]
fn a_title_two_sessions_share_is_ambiguous_and_lists_them() {
    let env = TestEnv::new();
    env.ok(&["new", "one", "--bg", "--agent", "shell", "--title", "Speed up list"]);
    env.ok(&["new", "two", "--bg", "--agent", "shell", "--title", "Speed up list"]);
    let err = env.fails(&["path", "speed-up-list"]);
    assert!(err.contains("`speed-up-list` names more than one session: `one`, `two`"), "{err}");
}

#[test]
fn rename_moves_the_name_folder_and_branch_and_keeps_the_old_name() {
    let env = TestEnv::new();
    env.ok(&["new", "slow", "--bg", "--agent", "shell"]);
    env.wait_state("slow", "running");
    env.ok(&["stop", "slow"]);
    let old_path = env.path_of("slow");
    let out = env.ok(&["rename", "slow", "fast"]);
    assert!(out.contains("renamed session slow to fast"), "{out}");
    let fast = env.session("fast");
    assert_eq!(fast["branch"], "fast");
    let new_path = old_path.with_file_name("fast");
    assert_eq!(env.path_of("fast"), new_path);
    assert!(new_path.is_dir() && !old_path.exists(), "the folder moved");
    assert!(env.git(&["branch", "--list", "fast"]).contains("fast"));
    assert!(env.git(&["branch", "--list", "slow"]).trim().is_empty());
    // The old name is an alias now.
    assert_eq!(path_in(&env, &env.repo, &["path", "slow"]), new_path.display().to_string());
    // The agent starts again in the moved folder.
    env.ok(&["respawn", "slow"]);
    env.wait_state("fast", "running");
}

#[test]
fn rename_keeps_the_folder_the_agent_runs_in_and_says_so() {
    let env = TestEnv::new();
    env.ok(&["new", "busy", "--bg", "--agent", "shell"]);
    env.wait_state("busy", "running");
    let path = env.path_of("busy");
    let out = env.tandem(&["rename", "busy", "still-busy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("keeps its name: the agent runs in it"), "{}", stderr(&out));
    assert_eq!(env.path_of("still-busy"), path);
    assert_eq!(env.session("still-busy")["branch"], "still-busy");
    assert_eq!(env.session("still-busy")["state"], "running");
}

#[test]
fn rename_to_a_taken_name_changes_nothing() {
    let env = TestEnv::new();
    env.ok(&["new", "a", "--bg", "--agent", "shell"]);
    env.ok(&["new", "b", "--bg", "--agent", "shell"]);
    env.ok(&["new", "c", "--bg", "--agent", "shell"]);
    env.ok(&["stop", "c"]);
    env.ok(&["rename", "c", "d"]);
    let named = |env: &TestEnv| {
        let sessions = env.sessions();
        let rows: Vec<String> =
            sessions.iter().map(|s| format!("{} {} {}", s["name"], s["branch"], s["path"])).collect();
        (env.repo_state(), rows)
    };
    let before = named(&env);
    let err = env.fails(&["rename", "a", "b"]);
    assert!(err.contains("`b` already finds session `b`"), "{err}");
    // An old name of another session is taken too.
    let err = env.fails(&["rename", "a", "c"]);
    assert!(err.contains("`c` already finds session `d`"), "{err}");
    assert_eq!(named(&env), before);
}

#[test]
fn rename_of_a_pushed_branch_needs_branch() {
    let env = TestEnv::new();
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    let remote = env.tmp.path().join("remote.git");
    env.git(&["remote", "add", "origin", remote.to_str().expect("utf-8")]);
    env.ok(&["new", "shipped", "--bg", "--agent", "shell"]);
    env.ok(&["stop", "shipped"]);
    env.git(&["push", "-q", "origin", "shipped"]);
    let before = env.repo_state();
    let err = env.fails(&["rename", "shipped", "renamed"]);
    assert!(err.contains("branch `shipped` is pushed"), "{err}");
    assert!(err.contains("tandem rename shipped renamed --branch"), "{err}");
    assert_eq!(env.repo_state(), before);
    env.ok(&["rename", "shipped", "renamed", "--branch"]);
    assert_eq!(env.session("renamed")["branch"], "renamed");
}

#[test]
fn commands_in_a_session_worktree_use_that_session() {
    let env = TestEnv::new();
    env.ok(&["new", "here", "--bg", "--agent", "shell"]);
    env.wait_state("here", "running");
    let path = env.path_of("here");
    let sub = path.join("sub");
    std::fs::create_dir_all(&sub).expect("mkdir");
    assert_eq!(path_in(&env, &sub, &["path"]), path.display().to_string());
    for args in [&["diff", "--stat"][..], &["history"], &["send", "echo sent-from-the-worktree"]] {
        let out = env.tandem_in(&sub, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // `run` (and `shell`, `open`) too: the command runs in the worktree.
    let out = env.tandem_in(&sub, &["run", "--", "pwd"]);
    assert!(out.status.success(), "run: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), path.display().to_string());
    // Outside any session's worktree: what to type.
    let err = env.fails(&["path"]);
    assert!(err.contains("no session name given") && err.contains("`here`"), "{err}");
}

#[test]
fn sessions_of_other_repositories_are_reachable_from_anywhere() {
    let env = TestEnv::new();
    let other = other_repo(&env);
    let out = env.tandem_in(&other, &["new", "elsewhere", "--bg", "--agent", "shell"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = path_in(&env, &other, &["path", "elsewhere"]);
    // From this repository: REPO/NAME, and --repo by folder or by name.
    assert_eq!(path_in(&env, &env.repo, &["path", "other/elsewhere"]), path);
    assert_eq!(path_in(&env, &env.repo, &["--repo", other.to_str().expect("utf-8"), "path", "elsewhere"]), path);
    assert_eq!(path_in(&env, &env.repo, &["path", "--repo", "other", "elsewhere"]), path);
    // From outside any repository: the bare name, when only one has it.
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    assert_eq!(path_in(&env, &outside, &["path", "elsewhere"]), path);
    // A repository tandem does not know.
    let err = env.fails(&["path", "nowhere/elsewhere"]);
    assert!(err.contains("tandem knows no repository `nowhere`") && err.contains("`other`"), "{err}");
}

#[test]
fn a_mistyped_name_gets_did_you_mean() {
    let env = TestEnv::new();
    env.ok(&["new", "slow", "--bg", "--agent", "shell"]);
    let err = env.fails(&["diff", "slo"]);
    assert!(err.contains("no session named `slo`") && err.contains("did you mean `slow`?"), "{err}");
}

#[test]
fn a_mistyped_subcommand_suggests_visible_commands_only() {
    let env = TestEnv::new();
    let out = env.tandem(&["lst"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("'list'"), "{err}");
    assert!(!err.contains("'host'"), "a hidden command is suggested: {err}");
}
