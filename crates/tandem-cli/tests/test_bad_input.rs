//! Every bad input of issue 3: a one-line error, exit 1, nothing changed.

use crate::common::TestEnv;

#[test]
fn outside_a_repository_and_in_a_bare_one() {
    let env = TestEnv::new();
    let outside = env.tmp.path().join("not-a-repo");
    std::fs::create_dir_all(&outside).expect("mkdir");
    for args in [&["new", "x", "--bg"][..], &["list"], &["attach", "x"], &["logs", "x"], &["stop", "x"], &["rm", "x"]] {
        let err = env.fails_in(&outside, args);
        assert!(err.contains("not inside a git repository"), "{args:?}: {err}");
    }
    let bare = env.tmp.path().join("bare.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "bare.git"]);
    let err = env.fails_in(&bare, &["new", "x", "--bg"]);
    assert!(err.contains("bare repository"), "{err}");
    assert!(!env.tandem_home.join("data").exists(), "nothing was made");
}

#[test]
fn names_that_are_not_safe_branch_and_folder_names() {
    let env = TestEnv::new();
    let before = env.repo_state();
    let long = "a".repeat(201);
    // Any other name is made a slug (`fix login` → `fix-login`, issue 17).
    for name in ["@", "..", "-", "ü", long.as_str()] {
        let err = env.fails(&["new", "--bg", "--agent", "shell", "--", name]);
        assert!(err.contains("session name"), "{name}: {err}");
    }
    assert_eq!(env.repo_state(), before);
    assert!(env.sessions().is_empty());
}

#[test]
fn a_name_already_used() {
    let env = TestEnv::new();
    env.ok(&["new", "twice", "--bg", "--agent", "shell"]);
    let before = env.repo_state();
    let err = env.fails(&["new", "twice", "--bg", "--agent", "shell"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(env.repo_state(), before);
    // A branch that exists already is refused too.
    env.git(&["branch", "taken"]);
    let before_branch = env.repo_state();
    let err = env.fails(&["new", "taken", "--bg", "--agent", "shell"]);
    assert!(err.contains("branch `taken` already exists"), "{err}");
    assert_eq!(env.repo_state(), before_branch);
    assert_eq!(env.sessions().len(), 1);
}

#[test]
fn protected_branches_are_never_a_session_branch() {
    let env = TestEnv::new();
    // A default branch other than main: origin/HEAD names `trunk`.
    env.git(&["update-ref", "refs/remotes/origin/trunk", "HEAD"]);
    env.git(&["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk"]);
    let before = env.repo_state();
    for name in ["main", "master", "develop", "trunk"] {
        let err = env.fails(&["new", name, "--bg", "--agent", "shell"]);
        assert!(err.contains("protected"), "{name}: {err}");
    }
    assert_eq!(env.repo_state(), before);
    assert!(env.sessions().is_empty());
}

#[test]
fn a_base_ref_that_does_not_exist_and_an_agent_that_is_not_found() {
    let env = TestEnv::new();
    let before = env.repo_state();
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--base", "no-such-ref"]);
    assert!(err.contains("base ref `no-such-ref`"), "{err}");
    let err = env.fails(&["new", "y", "--bg", "--agent", "no-such-agent-xyz --flag"]);
    assert!(err.contains("`no-such-agent-xyz` was not found"), "{err}");
    let err = env.fails(&["new", "z", "--bg", "--agent", "claude"]);
    assert!(err.contains("`claude` was not found"), "{err}");
    assert_eq!(env.repo_state(), before);
    assert!(env.sessions().is_empty());
    assert!(
        !env.tandem_home.join("data/worktrees").exists()
            || std::fs::read_dir(env.tandem_home.join("data/worktrees"))
                .expect("dir")
                .all(|e| { std::fs::read_dir(e.expect("entry").path()).expect("dir").next().is_none() })
    );
}

#[test]
fn session_names_that_do_not_exist() {
    let env = TestEnv::new();
    env.ok(&["new", "real", "--bg", "--agent", "shell"]);
    let before = env.repo_state();
    for cmd in ["attach", "logs", "stop", "rm", "history"] {
        let err = env.fails(&[cmd, "ghost"]);
        assert!(err.contains("no session named `ghost`"), "{cmd}: {err}");
    }
    let err = env.fails(&["search", "x", "--session", "ghost"]);
    assert!(err.contains("no session named `ghost`"), "{err}");
    let err = env.fails(&["search", "  "]);
    assert!(err.contains("the search query is empty"), "{err}");
    assert_eq!(env.repo_state(), before);
    env.wait_state("real", "running");
}

#[test]
fn a_base_ref_may_be_any_commit_ish() {
    let env = TestEnv::new();
    let first = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(env.repo.join("later.txt"), "later\n").expect("write");
    env.git(&["add", "later.txt"]);
    env.git(&["commit", "-q", "-m", "later"]);
    env.git(&["tag", "v1", &first]);
    env.ok(&["new", "from-tag", "--bg", "--agent", "shell", "--base", "v1"]);
    let s = env.session("from-tag");
    assert_eq!(s["base"], "v1");
    assert_eq!(s["base_commit"], first.as_str());
    assert_eq!(env.git(&["rev-parse", "from-tag"]).trim(), first);
    assert_eq!(s["behind"], 0, "v1 has not moved");
}

#[test]
fn a_repository_without_commits() {
    let env = TestEnv::new();
    let empty = env.tmp.path().join("empty");
    env.git_in(env.tmp.path(), &["init", "-q", "empty"]);
    let err = env.fails_in(&empty, &["new", "x", "--bg", "--agent", "shell"]);
    assert!(err.contains("no commits yet"), "{err}");
    assert_eq!(env.git_in(&empty, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
}

#[test]
fn the_view_and_tmux_windows_outside_a_terminal_or_tmux() {
    let env = TestEnv::new();
    let before = env.repo_state();
    let err = env.fails(&["new", "x", "--tmux", "--agent", "shell"]);
    assert!(err.contains("not inside tmux ($TMUX is unset)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = env.fails(&["view"]);
    assert!(err.contains("the agent view needs a terminal; use `tandem list`"), "{err}");
    assert_eq!(env.repo_state(), before);
    assert!(!env.tandem_home.join("data").exists(), "no supervisor was started, nothing was made");
}
