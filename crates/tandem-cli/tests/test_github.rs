//! Pull requests: `tandem pr`, the supervisor's status polling, `merge
//! --remote` and the `--from-pr` round trip, against a scripted stand-in
//! for GitHub's REST API (`common::github`) backed by a local bare
//! repository. The remote's URL is GitHub's; git's
//! `url.<bare>.insteadOf` sends the git traffic to the bare repository.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::github::GitHubStub;
use crate::common::{TestEnv, stderr, wait_within};

const TOKEN: &str = "ghp_test_token_0123456789";

/// A bare repository that stands for `https://github.com/octo/app.git`:
/// `origin` has GitHub's URL, rewritten to the bare repository by git.
fn with_github(env: &mut TestEnv) -> (PathBuf, GitHubStub) {
    let bare = env.tmp.path().join("app.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "-b", "main", "app.git"]);
    env.git(&["remote", "add", "origin", "https://github.com/octo/app.git"]);
    env.git(&["config", &format!("url.{}.insteadOf", bare.display()), "https://github.com/octo/app.git"]);
    env.git(&["push", "-q", "-u", "origin", "main"]);
    env.git(&["remote", "set-head", "origin", "main"]);
    let stub = GitHubStub::start(&bare, "octo", "app", TOKEN);
    env.env.push(("TANDEM_GITHUB_API_URL".to_owned(), stub.base_url()));
    env.env.push(("TANDEM_GITHUB_POLL_SECS".to_owned(), "1".to_owned()));
    (bare, stub)
}

/// A session with one commit (`subject`) adding `file`.
fn session_with_commit(env: &TestEnv, name: &str, file: &str, subject: &str) -> PathBuf {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    let wt = env.path_of(name);
    std::fs::write(wt.join(file), format!("{name}\n")).expect("write");
    env.git_in(&wt, &["add", file]);
    env.git_in(&wt, &["commit", "-q", "-m", subject]);
    wt
}

fn pr_of(env: &TestEnv, name: &str) -> serde_json::Value {
    env.session(name)["pr"].clone()
}

#[test]
fn pr_opens_a_pull_request_whose_status_the_supervisor_follows() {
    let mut env = TestEnv::new();
    let (bare, stub) = with_github(&mut env);
    let wt = session_with_commit(&env, "shipit", "feature.txt", "Add the feature");

    // No token anywhere (and no `gh`): refused before anything is pushed.
    let err = env.fails(&["pr", "shipit"]);
    assert!(err.contains("no GitHub token: set GH_TOKEN or GITHUB_TOKEN, or log in with `gh auth login`"), "{err}");
    assert!(env.git_in(&bare, &["branch", "--list", "shipit"]).is_empty(), "nothing pushed");

    // `gh auth token` is asked when the environment has none.
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::write(bin.join("gh"), format!("#!/bin/sh\n[ \"$1 $2\" = 'auth token' ] && echo {TOKEN}\n")).expect("gh");
    std::fs::set_permissions(bin.join("gh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    env.env.push(("PATH".to_owned(), format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display())));

    let out = env.ok(&["pr", "shipit"]);
    assert!(out.contains("opened pull request #1 (open) for shipit into main"), "{out}");
    assert!(out.contains("https://github.com/octo/app/pull/1"), "{out}");
    let pulls = stub.pulls();
    assert_eq!(pulls.len(), 1);
    let pull = &pulls[0];
    assert_eq!((pull.head.as_str(), pull.base.as_str(), pull.draft), ("shipit", "main", false));
    assert_eq!(pull.title, "Add the feature", "the only commit's subject");
    assert!(pull.body.contains("## Commits\n\n- ") && pull.body.contains("Add the feature"), "{}", pull.body);
    assert!(pull.body.contains("1 file changed, 1 insertion(+)"), "{}", pull.body);
    assert!(pull.body.contains("Opened with tandem from session `shipit` (agent: shell)."), "{}", pull.body);
    assert_eq!(env.git_in(&bare, &["rev-parse", "shipit"]), env.git_in(&wt, &["rev-parse", "HEAD"]), "pushed");
    let pr = pr_of(&env, "shipit");
    assert_eq!((pr["number"].as_u64(), pr["state"].as_str()), (Some(1), Some("open")), "{pr}");
    assert_eq!(env.session("shipit")["pr_number"], 1);
    assert!(env.ok(&["history", "shipit"]).contains("opened pull request #1: https://github.com/octo/app/pull/1"));
    let table = env.ok(&["list"]);
    assert!(table.lines().next().unwrap_or_default().contains("PR"), "{table}");
    assert!(table.contains("#1 open"), "{table}");

    // A second pull request for the same session, or for a branch that
    // already has one, is refused.
    let err = env.fails(&["pr", "shipit"]);
    assert!(err.contains("session `shipit` already has pull request #1 open: https://github.com/octo/app/pull/1"));
    session_with_commit(&env, "dup", "dup.txt", "Duplicate");
    env.ok(&["push", "dup"]);
    let by_hand = stub.open_pull("dup", "main");
    let err = env.fails(&["pr", "dup"]);
    assert!(err.contains(&format!("pull request #{by_hand} is already open for `dup`")), "{err}");
    assert_eq!(stub.pulls().len(), 2, "no new pull request");

    // A draft with the user's own words.
    session_with_commit(&env, "drafty", "d.txt", "Draft work");
    env.ok(&["pr", "drafty", "--draft", "--title", "WIP: drafty", "--body", "Not yet."]);
    let pull = stub.pulls().into_iter().find(|p| p.head == "drafty").expect("drafty's pull request");
    assert_eq!((pull.title.as_str(), pull.body.as_str(), pull.draft), ("WIP: drafty", "Not yet.", true));
    assert_eq!(pr_of(&env, "drafty")["state"], "draft");

    // The supervisor follows checks and reviews (every second here).
    stub.set_checks(1, &[("ci", "completed", Some("success")), ("lint", "in_progress", None)]);
    stub.add_review(1, "alice", "APPROVED");
    wait_within("checks pending and approved", Duration::from_secs(30), || {
        let pr = pr_of(&env, "shipit");
        (pr["checks"] == "pending" && pr["review"] == "approved").then_some(())
    });
    stub.set_checks(1, &[("ci", "completed", Some("success")), ("lint", "completed", Some("failure"))]);
    stub.add_review(1, "bob", "CHANGES_REQUESTED");
    wait_within("checks failing and changes requested", Duration::from_secs(30), || {
        let pr = pr_of(&env, "shipit");
        (pr["checks"] == "failing" && pr["review"] == "changes-requested").then_some(())
    });
    assert!(env.ok(&["list"]).contains("#1 open, checks failing, changes-requested"));
    // Unchanged resources are asked for with their ETag and cost a 304.
    wait_within("a 304 Not Modified", Duration::from_secs(10), || (stub.not_modified() > 0).then_some(()));

    // Merged on GitHub: the session is done and offered for archiving.
    stub.merge_now(1);
    wait_within("the merge to be seen", Duration::from_secs(30), || {
        (pr_of(&env, "shipit")["state"] == "merged").then_some(())
    });
    assert_eq!(env.session("shipit")["status"], "done");
    assert!(env.ok(&["history", "shipit"]).contains("pull request #1 was merged"));
    let out = env.tandem(&["list"]);
    assert!(
        stderr(&out).contains("note: shipit's pull request #1 was merged; `tandem archive shipit` puts it away"),
        "{}",
        stderr(&out)
    );

    // The round trip: a pull request tandem opened is checked out again
    // by its number.
    let tip = env.git_in(&wt, &["rev-parse", "HEAD"]);
    let out = env.ok(&["new", "--from-pr", "3", "--bg", "--agent", "shell"]);
    assert!(out.starts_with("pr-3"), "{out}");
    assert_eq!(
        env.git_in(&env.path_of("pr-3"), &["rev-parse", "HEAD"]),
        env.git_in(&env.path_of("drafty"), &["rev-parse", "HEAD"])
    );
    assert_ne!(env.git_in(&env.path_of("pr-3"), &["rev-parse", "HEAD"]), tip);
    assert_eq!(env.session("pr-3")["pr_number"], 3);
}

#[test]
fn pr_refuses_no_remote_a_remote_not_on_github_and_protected_branches() {
    let mut env = TestEnv::new();
    env.env.push(("GH_TOKEN".to_owned(), TOKEN.to_owned()));
    env.ok(&["new", "lonely", "--bg", "--agent", "shell", "--base", "head"]);
    let err = env.fails(&["pr", "lonely"]);
    assert!(err.contains("no remote; add one with `git remote add origin URL`"), "{err}");

    let plain = env.tmp.path().join("plain.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "-b", "main", "plain.git"]);
    env.git(&["remote", "add", "origin", &plain.to_string_lossy()]);
    env.git(&["push", "-q", "origin", "main"]);
    let err = env.fails(&["pr", "lonely"]);
    assert!(err.contains(&format!("remote `origin` ({}) is not a GitHub repository", plain.display())), "{err}");
    assert!(env.git_in(&plain, &["branch", "--list", "lonely"]).is_empty(), "nothing pushed");

    env.git(&["remote", "remove", "origin"]);
    let (bare, stub) = with_github(&mut env);
    session_with_commit(&env, "guarded", "g.txt", "Guarded");
    std::fs::write(env.repo.join(".tandem.toml"), "[branch]\nprotected = [\"guarded\"]\n").expect("write");
    let err = env.fails(&["pr", "guarded"]);
    assert!(err.contains("`guarded` is a protected branch; tandem never pushes it"), "{err}");
    assert!(env.git_in(&bare, &["branch", "--list", "guarded"]).is_empty(), "nothing pushed");
    assert!(stub.pulls().is_empty());

    // A bad token: GitHub's 401, said plainly.
    std::fs::remove_file(env.repo.join(".tandem.toml")).expect("rm");
    env.env.retain(|(k, _)| k != "GH_TOKEN");
    env.env.push(("GH_TOKEN".to_owned(), "wrong".to_owned()));
    let err = env.fails(&["pr", "guarded"]);
    assert!(err.contains("GitHub refused the token (HTTP 401: Bad credentials)"), "{err}");
}

#[test]
fn merge_remote_lands_the_pull_request_through_the_api_then_archives() {
    let mut env = TestEnv::new();
    env.env.push(("GH_TOKEN".to_owned(), TOKEN.to_owned()));
    let (bare, stub) = with_github(&mut env);
    let wt = session_with_commit(&env, "landing", "land.txt", "Land it");

    let err = env.fails(&["merge", "landing", "--remote"]);
    assert!(err.contains("session `landing` has no pull request; open one with `tandem pr landing`"), "{err}");
    env.ok(&["pr", "landing"]);

    // A commit GitHub has not seen: refused, nothing merged.
    std::fs::write(wt.join("late.txt"), "late\n").expect("write");
    env.git_in(&wt, &["add", "late.txt"]);
    env.git_in(&wt, &["commit", "-q", "-m", "Late"]);
    let main_before = env.git_in(&bare, &["rev-parse", "main"]);
    let err = env.fails(&["merge", "landing", "--remote"]);
    assert!(err.contains("is not the session's branch") && err.contains("`tandem push landing`"), "{err}");
    assert_eq!(env.git_in(&bare, &["rev-parse", "main"]), main_before);
    assert!(stub.pulls()[0].open);

    env.ok(&["push", "landing"]);
    let out = env.ok(&["merge", "landing", "--remote", "--squash", "--archive"]);
    assert!(out.contains("merged pull request #1 into main on GitHub"), "{out}");
    assert!(out.contains("archived session landing"), "{out}");
    let pull = &stub.pulls()[0];
    assert!(pull.merged && !pull.open);
    let main_after = env.git_in(&bare, &["rev-parse", "main"]);
    assert_ne!(main_after, main_before);
    assert_eq!(env.git_in(&bare, &["show", "main:late.txt"]), "late\n", "the squash has the whole branch");
    assert_eq!(env.git(&["rev-parse", "origin/main"]), main_after, "fetched after the merge");
    let archived: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["list", "--archived", "--json"])).expect("json");
    assert_eq!(archived[0]["name"], "landing");
    assert_eq!(archived[0]["status"], "done");
    assert_eq!(archived[0]["pr"]["state"], "merged");
    let log = stub.log();
    assert!(log.iter().any(|a| a.method == "PUT" && a.path == "/repos/octo/app/pulls/1/merge" && a.status == 200));
}
