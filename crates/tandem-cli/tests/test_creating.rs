//! Creating sessions (issue 4, "Creating"): slugs and branch prefixes,
//! existing branches, protected branches, base refs (`fresh`, `head`,
//! REF), pull requests, `.worktreeinclude`, setup hooks with approvals,
//! and replacement hooks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{TestEnv, stderr};

/// A bare repository as `origin`, with `main` pushed.
fn with_remote(env: &TestEnv) -> PathBuf {
    let remote = env.tmp.path().join("remote.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    env.git(&["remote", "add", "origin", remote.to_str().expect("utf-8")]);
    env.git(&["push", "-q", "origin", "main"]);
    remote
}

/// Commits `file` in a fresh clone of `remote` and pushes it to `refspec`.
fn push_commit(env: &TestEnv, remote: &Path, file: &str, refspec: &str) -> String {
    let clone = env.tmp.path().join(format!("clone-{}", file.replace('/', "-")));
    env.git_in(env.tmp.path(), &["clone", "-q", remote.to_str().expect("utf-8"), clone.to_str().expect("utf-8")]);
    std::fs::write(clone.join(file), "from elsewhere\n").expect("write");
    env.git_in(&clone, &["add", file]);
    env.git_in(&clone, &["commit", "-q", "-m", &format!("add {file}")]);
    env.git_in(&clone, &["push", "-q", "origin", &format!("HEAD:{refspec}")]);
    env.git_in(&clone, &["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn names_become_slugs_and_branches_take_the_configured_prefix() {
    let env = TestEnv::new();
    env.ok(&["new", "Fix_Login.Page", "--bg", "--agent", "shell"]);
    let s = env.session("fix-login-page");
    assert_eq!(s["branch"], "fix-login-page");
    assert!(s["path"].as_str().expect("path").ends_with("/fix-login-page"), "{s}");

    // `user`: git user.name (`Test`), slugified, then `/`.
    env.user_config("[branch]\nprefix = \"user\"\n");
    env.ok(&["new", "feat", "--bg", "--agent", "shell"]);
    assert_eq!(env.session("feat")["branch"], "test/feat");
    // Any other string is used as written; the environment beats the file.
    let mut env = env;
    env.env.push(("TANDEM_BRANCH_PREFIX".into(), "agents/".into()));
    env.ok(&["new", "lit", "--bg", "--agent", "shell"]);
    assert_eq!(env.session("lit")["branch"], "agents/lit");
    // Automatic names also get the prefix.
    let out = env.ok(&["new", "--bg", "--agent", "shell"]);
    let auto = out.split('\t').next().expect("name").to_owned();
    assert_eq!(env.session(&auto)["branch"], format!("agents/{auto}"));
    assert!(auto.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{auto}");
}

#[test]
fn an_existing_branch_is_checked_out_as_it_is_and_kept_on_rm() {
    let env = TestEnv::new();
    env.git(&["branch", "feature/login"]);
    let tip = env.git(&["rev-parse", "feature/login"]);
    env.ok(&["new", "--branch", "feature/login", "--bg", "--agent", "shell"]);
    let s = env.session("feature-login");
    assert_eq!(s["branch"], "feature/login");
    let path = env.path_of("feature-login");
    assert_eq!(env.git_in(&path, &["rev-parse", "HEAD"]), tip);
    assert_eq!(env.git_in(&path, &["branch", "--show-current"]).trim(), "feature/login");
    // --wait: git's records are pruned before the repository state below
    // is taken.
    env.ok(&["rm", "--wait", "feature-login"]);
    assert_eq!(env.git(&["rev-parse", "feature/login"]), tip, "the user's branch stays");

    // A branch checked out in another worktree is refused, changing nothing.
    env.git(&["worktree", "add", "-q", "-b", "elsewhere", env.tmp.path().join("other").to_str().expect("utf-8")]);
    let before = env.repo_state();
    let err = env.fails(&["new", "--branch", "elsewhere", "--bg", "--agent", "shell"]);
    assert!(err.contains("`elsewhere` is checked out in"), "{err}");
    assert_eq!(env.repo_state(), before);
}

#[test]
fn protected_branches_are_never_a_sessions_branch() {
    let env = TestEnv::new();
    env.user_config("[branch]\nprotected = [\"release\"]\n");
    let before = env.repo_state();
    for args in [
        &["new", "--branch", "main", "--bg"][..],
        &["new", "--branch", "develop", "--bg"],
        &["new", "master", "--bg"],
        &["new", "release", "--bg"],
    ] {
        let err = env.fails(args);
        assert!(err.contains("is a protected branch"), "{args:?}: {err}");
    }
    // The default branch, whatever its name.
    env.git(&["branch", "trunk"]);
    env.git(&["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk"]);
    env.git(&["update-ref", "refs/remotes/origin/trunk", "HEAD"]);
    let err = env.fails(&["new", "--branch", "trunk", "--bg"]);
    assert!(err.contains("is a protected branch"), "{err}");
    env.git(&["update-ref", "-d", "refs/remotes/origin/trunk"]);
    env.git(&["symbolic-ref", "--delete", "refs/remotes/origin/HEAD"]);
    env.git(&["branch", "-D", "trunk"]);
    assert_eq!(env.repo_state(), before);
}

#[test]
fn base_fresh_fetches_the_remote_default_branch_and_falls_back_to_head() {
    let env = TestEnv::new();
    let local = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    // No remote: HEAD, and it says so.
    let out = env.tandem(&["new", "solo", "--bg", "--agent", "shell"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no remote to fetch from; branching from main (HEAD) instead"), "{}", stderr(&out));
    assert_eq!(env.session("solo")["base"], "main");

    let remote = with_remote(&env);
    let upstream = push_commit(&env, &remote, "upstream.txt", "main");
    env.ok(&["new", "fresh", "--bg", "--agent", "shell"]);
    let s = env.session("fresh");
    assert_eq!((s["base"].as_str(), s["base_commit"].as_str()), (Some("origin/main"), Some(upstream.as_str())));
    assert!(env.path_of("fresh").join("upstream.txt").exists());
    assert_eq!(s["behind_remote"], 0);

    env.ok(&["new", "local", "--base", "head", "--bg", "--agent", "shell"]);
    let s = env.session("local");
    assert_eq!((s["base"].as_str(), s["base_commit"].as_str()), (Some("main"), Some(local.as_str())));
    assert_eq!(s["behind_remote"], 1, "{s}");

    env.git(&["tag", "v1"]);
    env.ok(&["new", "tagged", "--base", "v1", "--bg", "--agent", "shell"]);
    assert_eq!(env.session("tagged")["base"], "v1");

    // Unreachable remote: back to HEAD, saying why.
    env.git(&["remote", "set-url", "origin", "/nonexistent/remote.git"]);
    env.git(&["remote", "set-head", "origin", "--delete"]);
    let out = env.tandem(&["new", "offline", "--bg", "--agent", "shell"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("branching from main (HEAD) instead"), "{}", stderr(&out));
    assert_eq!(env.session("offline")["base_commit"], local);
}

#[test]
fn from_pr_checks_out_the_pull_requests_head() {
    let env = TestEnv::new();
    let remote = with_remote(&env);
    let head = push_commit(&env, &remote, "pr.txt", "refs/pull/7/head");
    env.ok(&["new", "--from-pr", "7", "--bg", "--agent", "shell"]);
    let s = env.session("pr-7");
    assert_eq!((s["branch"].as_str(), s["pr_number"].as_i64()), (Some("pr-7"), Some(7)));
    let path = env.path_of("pr-7");
    assert_eq!(env.git_in(&path, &["rev-parse", "HEAD"]).trim(), head);
    assert!(path.join("pr.txt").exists());
    assert_eq!(s["ahead"], 1, "{s}");
    // The commits are on the remote: rm needs no --force.
    env.ok(&["rm", "--wait", "pr-7"]);

    let before = env.repo_state();
    let err = env.fails(&["new", "--from-pr", "99", "--bg", "--agent", "shell"]);
    assert!(err.contains("cannot fetch pull request #99 from origin"), "{err}");
    assert_eq!(env.repo_state(), before);
}

#[test]
fn worktreeinclude_copies_ignored_listed_files_and_nothing_else() {
    let env = TestEnv::new();
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("stolen"), "secret\n").expect("write");
    std::fs::write(env.repo.join(".gitignore"), ".env\nsecret/\n*.log\nlink.env\nconf\n").expect("write");
    std::fs::write(env.repo.join("tracked.env"), "tracked\n").expect("write");
    env.git(&["add", ".gitignore", "tracked.env"]);
    env.git(&["commit", "-q", "-m", "ignores"]);
    std::fs::write(
        env.repo.join(".worktreeinclude"),
        ".env\nsecret/**\n*.env\n../outside/stolen\n/etc/passwd\nconf/**\nconf\n",
    )
    .expect("write");
    std::fs::write(env.repo.join(".env"), "TOKEN=1\n").expect("write");
    std::fs::set_permissions(env.repo.join(".env"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::create_dir_all(env.repo.join("secret")).expect("dir");
    std::fs::write(env.repo.join("secret/run.sh"), "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(env.repo.join("secret/run.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(env.repo.join("debug.log"), "ignored, not listed\n").expect("write");
    std::os::unix::fs::symlink(outside.join("stolen"), env.repo.join("link.env")).expect("symlink");
    std::os::unix::fs::symlink(&outside, env.repo.join("conf")).expect("symlink");

    env.ok(&["new", "inc", "--bg", "--agent", "shell"]);
    let s = env.session("inc");
    let included: Vec<&str> = s["included"].as_array().expect("included").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(included, [".env", "secret/run.sh"], "{s}");
    let path = env.path_of("inc");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&path.join(".env")), 0o600);
    assert_eq!(mode(&path.join("secret/run.sh")), 0o755);
    assert_eq!(std::fs::read_to_string(path.join("tracked.env")).expect("read"), "tracked\n");
    for absent in ["debug.log", "link.env", "conf", "stolen", "passwd"] {
        assert!(!path.join(absent).exists(), "{absent} was copied");
    }
    assert!(!env.tmp.path().join("stolen").exists());
}

#[test]
fn repository_hooks_run_only_once_approved_and_get_values_in_the_environment() {
    let env = TestEnv::new();
    std::fs::write(
        env.repo.join(".tandem.toml"),
        "[hooks]\nsetup = [\"printf '%s|%s|%s' \\\"$TANDEM_SESSION\\\" \\\"$TANDEM_BRANCH\\\" \\\"$TANDEM_BASE\\\" > hook-out.txt\"]\n",
    )
    .expect("write");
    let before = env.repo_state();
    let err = env.fails(&["new", "hooked", "--bg", "--agent", "shell"]);
    assert!(
        err.contains("hook command(s) or [env] value(s) you have not approved") && err.contains("tandem hooks approve"),
        "{err}"
    );
    assert_eq!(env.repo_state(), before);
    assert!(env.sessions().is_empty());

    let shown = env.ok(&["hooks", "show"]);
    assert!(shown.contains("NOT APPROVED"), "{shown}");
    env.ok(&["hooks", "approve", "--yes"]);
    assert!(env.ok(&["hooks", "show"]).contains("approved"));
    env.ok(&["new", "hooked", "--bg", "--agent", "shell"]);
    let out = std::fs::read_to_string(env.path_of("hooked").join("hook-out.txt")).expect("hook ran");
    assert_eq!(out, "hooked|hooked|main");

    // A changed command needs a new approval.
    std::fs::write(env.repo.join(".tandem.toml"), "[hooks]\nsetup = [\"exit 3\"]\n").expect("write");
    let err = env.fails(&["new", "changed", "--bg", "--agent", "shell"]);
    assert!(err.contains("not approved"), "{err}");
    env.ok(&["hooks", "approve", "--yes"]);
    // A failing setup hook leaves the session created and says so.
    let out = env.tandem(&["new", "failing", "--bg", "--agent", "shell"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("setup hook `exit 3` failed (exit 3)"), "{}", stderr(&out));
    env.wait_state("failing", "running");

    // The user's own hooks need no approval.
    std::fs::remove_file(env.repo.join(".tandem.toml")).expect("rm");
    env.user_config("[hooks]\nsetup = [\"touch mine.txt\"]\n");
    env.ok(&["new", "mine", "--bg", "--agent", "shell"]);
    assert!(env.path_of("mine").join("mine.txt").exists());
}

#[test]
fn replacement_hooks_make_and_remove_worktrees_instead_of_git() {
    let env = TestEnv::new();
    let layout = env.tmp.path().join("layout");
    let log = env.tmp.path().join("hook-log");
    let create = format!(
        "cat > {log}/create.json; d={layout}/custom-$TANDEM_SESSION; \
         git -C \"$TANDEM_REPO\" worktree add -q -b \"$TANDEM_BRANCH\" \"$d\" \"$TANDEM_BASE_COMMIT\" >&2; echo \"$d\"",
        log = log.display(),
        layout = layout.display()
    );
    let remove = format!(
        "cat > {log}/remove.json; git -C \"$TANDEM_REPO\" worktree remove --force \"$TANDEM_WORKTREE\"",
        log = log.display()
    );
    std::fs::create_dir_all(&log).expect("log dir");
    env.user_config(&format!("[hooks]\nworktree_create = '{create}'\nworktree_remove = '{remove}'\n"));
    env.ok(&["new", "custom", "--bg", "--agent", "shell"]);
    let path = env.path_of("custom");
    assert_eq!(path, layout.join("custom-custom"));
    assert!(path.join("README.md").exists());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(log.join("create.json")).expect("stdin")).expect("json");
    assert_eq!((json["name"].as_str(), json["branch"].as_str()), (Some("custom"), Some("custom")));
    assert!(json["repository"].as_str().is_some() && json["base_commit"].as_str().is_some(), "{json}");
    env.ok(&["rm", "custom"]);
    assert!(!path.exists());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(log.join("remove.json")).expect("stdin")).expect("json");
    assert_eq!(json["name"], "custom");
}

#[test]
fn bad_config_files_name_the_file_and_line() {
    let env = TestEnv::new();
    let before = env.repo_state();
    env.user_config("[branch]\nprefix = \"none\"\nprefx = 1\n");
    let err = env.fails(&["new", "x", "--bg"]);
    assert!(err.contains("config/config.toml:3: unknown field `prefx`"), "{err}");
    env.user_config("");
    std::fs::write(env.repo.join(".tandem.toml"), "[stop\ngrace_ms = 1\n").expect("write");
    let err = env.fails(&["list"]);
    assert!(err.contains(".tandem.toml:1:"), "{err}");
    std::fs::remove_file(env.repo.join(".tandem.toml")).expect("rm");
    assert_eq!(env.repo_state(), before);
}

#[test]
fn fork_starts_from_the_sources_commits_and_uncommitted_work() {
    let env = TestEnv::new();
    env.ok(&["new", "orig", "--bg", "--agent", "shell"]);
    let src = env.path_of("orig");
    std::fs::write(src.join("done.txt"), "committed\n").expect("write");
    env.git_in(&src, &["add", "done.txt"]);
    env.git_in(&src, &["commit", "-q", "-m", "done"]);
    std::fs::write(src.join("README.md"), "# edited, not committed\n").expect("write");
    std::fs::write(src.join("new.txt"), "untracked\n").expect("write");
    let status_before = env.git_in(&src, &["status", "--porcelain"]);

    let out = env.ok(&["fork", "orig"]);
    let (name, path) = out.trim().split_once('\t').expect("name<TAB>path");
    assert_eq!(name, "orig-fork");
    let fork = std::path::PathBuf::from(path);
    assert_eq!(env.git_in(&fork, &["log", "-1", "--format=%s"]).trim(), "done");
    assert_eq!(std::fs::read_to_string(fork.join("README.md")).expect("read"), "# edited, not committed\n");
    assert_eq!(std::fs::read_to_string(fork.join("new.txt")).expect("read"), "untracked\n");
    assert_eq!(env.git_in(&fork, &["branch", "--show-current"]).trim(), "orig-fork");
    assert_eq!(env.git_in(&src, &["status", "--porcelain"]), status_before, "the source is untouched");
    env.wait_state("orig-fork", "running");

    // A second fork takes the next free name; bad input changes nothing.
    assert_eq!(env.ok(&["fork", "orig"]).split('\t').next(), Some("orig-fork-2"));
    let before = env.repo_state();
    let err = env.fails(&["fork", "ghost"]);
    assert!(err.contains("no session named `ghost`"), "{err}");
    let err = env.fails(&["fork", "orig", "@@"]);
    assert!(err.contains("`@@`"), "{err}");
    assert_eq!(env.repo_state(), before);
}

/// On a terminal, `tandem new` asks before running a repository's hook
/// commands: "n" refuses and creates nothing; "y" approves them for
/// good and runs them.
#[test]
fn repository_hooks_are_asked_for_on_a_terminal() {
    let env = TestEnv::new();
    std::fs::write(env.repo.join(".tandem.toml"), "[hooks]\nsetup = [\"echo asked > asked.txt\"]\n").expect("write");
    let before = env.repo_state();
    let mut term = env.pty(&["new", "asked", "--bg", "--agent", "shell"], 24, 100);
    term.wait_for("asks to run these commands:");
    term.wait_for("[setup] echo asked > asked.txt");
    term.wait_for("[y/N]");
    term.type_line("n");
    assert_ne!(term.wait_exit(), 0);
    term.wait_for_raw("hook commands not approved; nothing was created");
    assert_eq!(env.repo_state(), before);
    assert!(env.sessions().is_empty());

    let mut term = env.pty(&["new", "asked", "--bg", "--agent", "shell"], 24, 100);
    term.wait_for("[y/N]");
    term.type_line("y");
    assert_eq!(term.wait_exit(), 0, "{}", term.raw_text());
    let path = env.path_of("asked");
    assert_eq!(std::fs::read_to_string(path.join("asked.txt")).expect("the hook ran"), "asked\n");
    // Approved for good: no question the next time.
    env.ok(&["new", "again", "--bg", "--agent", "shell"]);
    assert!(env.path_of("again").join("asked.txt").exists());
}
