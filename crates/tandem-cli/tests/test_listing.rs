//! What `tandem list` shows (issue 4, "Living"): changes, diffstat, base
//! and remote counts, last activity; its cache never shows a stale fact;
//! `tandem config show` and `tandem completions`.

use crate::common::TestEnv;

fn facts(env: &TestEnv, name: &str) -> (u64, u64, u64, u64) {
    let s = env.session(name);
    let n = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    (n("changed"), n("untracked"), n("ahead"), s["diffstat"]["insertions"].as_u64().unwrap_or(u64::MAX))
}

#[test]
fn every_change_shows_up_at_once_however_often_list_runs() {
    let env = TestEnv::new();
    env.ok(&["new", "watched", "--bg", "--agent", "shell"]);
    let path = env.path_of("watched");
    assert_eq!(facts(&env, "watched"), (0, 0, 0, 0));
    // Twice more with nothing changed, so the cache is warm and watching.
    assert_eq!(facts(&env, "watched"), (0, 0, 0, 0));
    assert_eq!(facts(&env, "watched"), (0, 0, 0, 0));
    std::fs::write(path.join("untracked.txt"), "x\n").expect("write");
    assert_eq!(facts(&env, "watched"), (0, 1, 0, 0));
    std::fs::write(path.join("README.md"), "# test repo\nmore\n").expect("write");
    assert_eq!(facts(&env, "watched"), (1, 1, 0, 1));
    env.git_in(&path, &["add", "-A"]);
    env.git_in(&path, &["commit", "-q", "-m", "work"]);
    assert_eq!(facts(&env, "watched"), (0, 0, 1, 2));
    // A folder made after the watches were set is watched too.
    std::fs::create_dir_all(path.join("deep/er")).expect("mkdir");
    std::fs::write(path.join("deep/er/f.txt"), "1\n").expect("write");
    assert_eq!(facts(&env, "watched").1, 1);
    env.git_in(&path, &["add", "-A"]);
    env.git_in(&path, &["commit", "-q", "-m", "deep"]);
    assert_eq!(facts(&env, "watched"), (0, 0, 2, 3));
    std::fs::write(path.join("deep/er/f.txt"), "1\n2\n").expect("write");
    assert_eq!(facts(&env, "watched"), (1, 0, 2, 4));
    // The base moving on shows as behind.
    std::fs::write(env.repo.join("base.txt"), "moved on\n").expect("write");
    env.git(&["add", "base.txt"]);
    env.git(&["commit", "-q", "-m", "base moves"]);
    assert_eq!(env.session("watched")["behind"], 1);
    // A file excluded by hand stops counting.
    std::fs::write(path.join("junk.tmp"), "x\n").expect("write");
    assert_eq!(facts(&env, "watched").1, 1);
    std::fs::write(env.repo.join(".git/info/exclude"), "*.tmp\n").expect("write");
    assert_eq!(facts(&env, "watched").1, 0);
    let s = env.session("watched");
    assert!(s["last_activity"].as_i64().expect("last activity") > 0, "{s}");
    let table = env.ok(&["list"]);
    assert!(table.contains("1 changed") && table.contains("+4 -0") && table.contains("2 ahead, 1 behind"), "{table}");
}

#[test]
fn config_show_prints_every_value_and_its_source() {
    let mut env = TestEnv::new();
    std::fs::create_dir_all(env.tandem_home.join("config")).expect("dir");
    std::fs::write(env.tandem_home.join("config/config.toml"), "[stop]\ngrace_ms = 100\n").expect("write");
    std::fs::write(env.repo.join(".tandem.toml"), "[worktrees]\ndir = \".tandem/worktrees\"\n").expect("write");
    env.env.push(("TANDEM_BRANCH_PREFIX".into(), "user".into()));
    let out = env.ok(&["config", "show"]);
    let line = |key: &str| out.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or("").to_owned();
    assert!(line("stop.grace_ms").contains("= 100") && line("stop.grace_ms").ends_with("config/config.toml"), "{out}");
    assert!(line("worktrees.dir").ends_with(".tandem.toml"), "{out}");
    assert!(line("branch.prefix").contains("\"user\"") && line("branch.prefix").ends_with("$TANDEM_BRANCH_PREFIX"));
    assert!(line("base.default").ends_with("# default"), "{out}");
    // In-repository worktrees are excluded from git.
    env.ok(&["new", "inside", "--bg", "--agent", "shell"]);
    assert!(env.repo.join(".tandem/worktrees/inside").is_dir());
    assert_eq!(env.git(&["status", "--porcelain"]).trim(), "?? .tandem.toml");
}

#[test]
fn states_of_agents_that_do_not_report_are_inferred_from_output() {
    let env = TestEnv::new();
    env.user_config("[supervisor]\nquiet_secs = 2\n");
    env.ok(&["new", "quiet", "--bg", "--agent", "shell"]);
    let s = env.wait_state("quiet", "idle");
    assert_eq!(s["state_inferred"], true, "{s}");
    assert!(env.ok(&["list"]).contains("idle (inferred)"));
    env.ok(&["send", "quiet", "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done"]);
    let s = env.wait_state("quiet", "running");
    assert_eq!(s["state_inferred"], true);
    crate::common::wait_for("the loop to end", || env.ok(&["logs", "quiet"]).contains("tick-6").then_some(()));
    env.wait_state("quiet", "idle");
}

#[test]
fn a_commit_by_another_process_shows_in_the_very_next_list_and_status() {
    // Issue 23: the supervisor keeps the sessions it read for `list` and
    // `status` until anyone commits to the store. Hooks, hosts and
    // commands write it directly; the first `list` or `status` after
    // their commit must see it, not one ~100 ms later.
    use tandem_core::store::{MetaUpdate, SessionState, Store, TaskStatus};
    let env = TestEnv::new();
    env.user_config("[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    let id = env.session("alpha")["id"].as_str().expect("id").to_owned();
    let store = Store::open(&env.tandem_home.join("state/tandem.db")).expect("store");
    for i in 0..15 {
        // Warm: the rows are kept.
        env.ok(&["list"]);
        let title = format!("title {i}");
        store
            .update_meta(&id, &MetaUpdate { title: Some(Some(title.clone())), ..MetaUpdate::default() })
            .expect("meta");
        let out = env.ok(&["list", "--columns", "name,title"]);
        assert!(out.contains(&title), "round {i}: {out}");
        let status = if i % 2 == 0 { TaskStatus::InReview } else { TaskStatus::InProgress };
        store.update_meta(&id, &MetaUpdate { status: Some(status), ..MetaUpdate::default() }).expect("meta");
        let rows = env.sessions();
        assert_eq!(rows[0]["status"], status.as_str(), "round {i}");
    }
    env.ok(&["status"]);
    store.set_state(&id, SessionState::Stopped, None).expect("state");
    assert_eq!(env.ok(&["status"]), "1 done\n");
    assert!(env.ok(&["list"]).contains("stopped"));
}
