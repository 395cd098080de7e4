//! Checkpoints and rewind (issue 22): every turn of every agent is kept
//! as a commit under `refs/tandem/checkpoints/`, without touching the
//! agent's worktree, index, HEAD or branch, and `tandem rewind` goes back
//! to any of them, undoably.

use std::path::Path;

use crate::common::{TestEnv, hook_event, stderr, wait_for};

/// `tandem checkpoints NAME --json`, parsed (newest first).
fn checkpoints(env: &TestEnv, name: &str) -> Vec<serde_json::Value> {
    let out = env.ok(&["checkpoints", name, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).expect("json").as_array().expect("array").clone()
}

/// Waits until the session has `n` checkpoints; returns them.
fn wait_checkpoints(env: &TestEnv, name: &str, n: usize) -> Vec<serde_json::Value> {
    wait_for(&format!("{n} checkpoints of {name}"), || {
        let list = checkpoints(env, name);
        (list.len() >= n).then_some(list)
    })
}

/// The bytes of the worktree's own index and HEAD (the agent's), from its
/// admin folder.
fn index_and_head(env: &TestEnv, wt: &Path) -> (Vec<u8>, Vec<u8>) {
    let admin = env.git_in(wt, &["rev-parse", "--path-format=absolute", "--git-dir"]);
    let admin = Path::new(admin.trim());
    (std::fs::read(admin.join("index")).unwrap_or_default(), std::fs::read(admin.join("HEAD")).expect("HEAD"))
}

fn id_of(env: &TestEnv, name: &str) -> String {
    env.session(name)["id"].as_str().expect("id").to_owned()
}

/// One turn the way Claude Code reports it through its hooks: the prompt,
/// then (after `work`) the turn's end.
fn hooked_turn(env: &TestEnv, id: &str, prompt: &str, work: impl FnOnce()) {
    hook_event(env, id, &serde_json::json!({ "hook_event_name": "UserPromptSubmit", "prompt": prompt }));
    work();
    hook_event(env, id, &serde_json::json!({ "hook_event_name": "Stop", "last_assistant_message": "done" }));
}

#[test]
fn a_reported_turn_that_changes_files_is_checkpointed_and_one_that_does_not_is_not() {
    let env = TestEnv::new();
    env.ok(&["new", "turns", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "turns");
    let wt = env.path_of("turns");
    let before = index_and_head(&env, &wt);

    hooked_turn(&env, &id, "write notes\nwith a second line", || {
        std::fs::write(wt.join("notes.txt"), "one\ntwo\n").expect("write");
    });
    let list = wait_checkpoints(&env, "turns", 1);
    assert_eq!(list[0]["n"], 1);
    assert_eq!(list[0]["cause"], "turn");
    assert_eq!(list[0]["prompt"], "write notes", "the prompt's first line");
    assert_eq!((list[0]["files"].as_u64(), list[0]["added"].as_u64()), (Some(1), Some(2)));
    let reference = list[0]["ref"].as_str().expect("ref").to_owned();
    assert_eq!(reference, format!("refs/tandem/checkpoints/{id}/1"));
    assert_eq!(env.git(&["rev-parse", &reference]).trim(), list[0]["commit"].as_str().expect("commit"));
    assert_eq!(env.git(&["show", &format!("{reference}:notes.txt")]), "one\ntwo\n", "untracked files are kept");
    assert_eq!(index_and_head(&env, &wt), before, "the agent's index and HEAD are untouched");
    assert!(env.git_in(&wt, &["status", "--porcelain"]).contains("?? notes.txt"), "nothing staged");

    // A turn that only talked: no checkpoint. A third that edits: one.
    hooked_turn(&env, &id, "explain it", || {});
    hooked_turn(&env, &id, "edit notes", || {
        std::fs::write(wt.join("notes.txt"), "one\n2\n").expect("write");
    });
    // (A checkpointer that ran late labels the edit's state with the
    // talk, then relabels it when the edit's turn end comes.)
    let list = wait_for("the edit's checkpoint", || {
        let list = checkpoints(&env, "turns");
        (list.len() >= 2 && list[0]["prompt"] == "edit notes").then_some(list)
    });
    assert_eq!(list.len(), 2, "the turn that changed nothing made none: {list:?}");
    assert_eq!(list[0]["n"], 2);
    assert_eq!(list[0]["prompt"], "edit notes");
    assert_eq!((list[0]["added"].as_u64(), list[0]["removed"].as_u64()), (Some(1), Some(1)));

    let table = env.ok(&["checkpoints", "turns"]);
    assert!(table.contains("edit notes") && table.contains("1 file, +1 -1"), "{table}");
    let diff = env.ok(&["diff", "turns", "--checkpoint", "2"]);
    assert!(diff.contains("-two") && diff.contains("+2"), "{diff}");
    let both = env.ok(&["diff", "turns", "--checkpoint", "1", "--to", "2", "--name-only"]);
    assert_eq!(both.trim(), "notes.txt");
}

#[test]
fn a_shells_inferred_turns_are_checkpointed_when_its_output_goes_quiet() {
    let env = TestEnv::new();
    env.user_config("[supervisor]\nquiet_secs = 1\n");
    env.ok(&["new", "sh", "--bg", "--agent", "shell"]);
    env.ok(&["send", "sh", "echo hello > greeting.txt"]);
    let list = wait_checkpoints(&env, "sh", 1);
    assert_eq!(list[0]["prompt"], "echo hello > greeting.txt");
    assert_eq!(list[0]["files"], 1);
    env.ok(&["send", "sh", "rm greeting.txt"]);
    let list = wait_checkpoints(&env, "sh", 2);
    assert_eq!((list[0]["files"].as_u64(), list[0]["removed"].as_u64()), (Some(1), Some(1)), "{list:?}");
}

#[test]
fn rewind_brings_files_back_keeps_the_commits_and_undo_returns() {
    let env = TestEnv::new();
    env.ok(&["new", "rw", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "rw");
    let wt = env.path_of("rw");
    // Turn 1: a file; turn 2: edit it and commit; turn 3: delete it and
    // reset the commit away.
    hooked_turn(&env, &id, "write it", || std::fs::write(wt.join("f.txt"), "first\n").expect("write"));
    wait_checkpoints(&env, "rw", 1);
    hooked_turn(&env, &id, "edit and commit", || {
        env.commit_in(&wt, "f.txt", "second\n", "second");
    });
    wait_checkpoints(&env, "rw", 2);
    let committed = env.git_in(&wt, &["rev-parse", "HEAD"]).trim().to_owned();
    hooked_turn(&env, &id, "wreck it", || {
        env.git_in(&wt, &["reset", "-q", "--hard", "HEAD~1"]);
        std::fs::write(wt.join("other.txt"), "junk\n").expect("write");
    });
    let list = wait_checkpoints(&env, "rw", 3);
    assert_eq!(list[0]["n"], 3);
    assert!(!wt.join("f.txt").exists());

    let out = env.ok(&["rewind", "rw", "1"]);
    assert!(out.contains("checkpoint 1") && out.contains("--undo"), "{out}");
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("back"), "first\n");
    assert!(!wt.join("other.txt").exists(), "a file made after checkpoint 1 goes");
    assert_eq!(
        env.git(&["cat-file", "-t", &committed]).trim(),
        "commit",
        "the commit the reset dropped is still there"
    );
    let reachable =
        env.git(&["for-each-ref", "--contains", &committed, "--format=%(refname)", "refs/tandem/checkpoints/"]);
    assert!(!reachable.trim().is_empty(), "and reachable from a checkpoint ref");

    env.ok(&["rewind", "rw", "--undo"]);
    assert!(!wt.join("f.txt").exists(), "undo: the state before the rewind");
    assert_eq!(std::fs::read_to_string(wt.join("other.txt")).expect("back"), "junk\n");

    // --hard: HEAD goes back to the commit of checkpoint 2.
    env.ok(&["rewind", "rw", "2", "--hard"]);
    assert_eq!(env.git_in(&wt, &["rev-parse", "HEAD"]).trim(), committed);
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("back"), "second\n");
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]).trim(), "", "index and worktree as then");
}

#[test]
fn rewind_of_some_files_leaves_the_rest() {
    let env = TestEnv::new();
    env.ok(&["new", "some", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "some");
    let wt = env.path_of("some");
    hooked_turn(&env, &id, "two files", || {
        std::fs::create_dir_all(wt.join("src")).expect("dir");
        std::fs::write(wt.join("src/a.txt"), "a1\n").expect("write");
        std::fs::write(wt.join("b.txt"), "b1\n").expect("write");
    });
    wait_checkpoints(&env, "some", 1);
    hooked_turn(&env, &id, "change both", || {
        std::fs::write(wt.join("src/a.txt"), "a2\n").expect("write");
        std::fs::write(wt.join("b.txt"), "b2\n").expect("write");
    });
    wait_checkpoints(&env, "some", 2);
    env.ok(&["rewind", "some", "1", "--files", "src"]);
    assert_eq!(std::fs::read_to_string(wt.join("src/a.txt")).expect("a"), "a1\n");
    assert_eq!(std::fs::read_to_string(wt.join("b.txt")).expect("b"), "b2\n", "not asked for: left");
}

#[test]
fn a_rewind_refused_mid_turn_or_for_bad_input_changes_nothing() {
    let env = TestEnv::new();
    env.ok(&["new", "busy", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "busy");
    let wt = env.path_of("busy");
    hooked_turn(&env, &id, "write", || std::fs::write(wt.join("f.txt"), "1\n").expect("write"));
    wait_checkpoints(&env, "busy", 1);
    // A turn starts, and is still running.
    hook_event(&env, &id, &serde_json::json!({ "hook_event_name": "UserPromptSubmit", "prompt": "more" }));
    std::fs::write(wt.join("f.txt"), "2\n").expect("write");
    let state = env.repo_state();
    let cps = checkpoints(&env, "busy");

    let err = env.fails(&["rewind", "busy", "1"]);
    assert!(err.contains("middle of a turn") && err.contains("--stop"), "{err}");
    for (args, says) in [
        (vec!["rewind", "busy", "9"], "no checkpoint 9"),
        (vec!["rewind", "busy", "1", "--files", "../outside"], "not a path inside"),
        (vec!["rewind", "busy", "--undo"], "no rewind to undo"),
        (vec!["diff", "busy", "--checkpoint", "7"], "no checkpoint 7"),
        (vec!["rewind", "busy", "1", "--conversation"], "only `claude-structured` can"),
        (vec!["checkpoints", "nosuch"], "nosuch"),
    ] {
        let err = env.fails(&args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let usage = env.tandem(&["rewind", "busy"]);
    assert!(!usage.status.success() && stderr(&usage).contains("<CHECKPOINT|--undo>"), "{}", stderr(&usage));
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "2\n");
    assert_eq!(env.repo_state(), state, "no ref or branch moved");
    assert_eq!(checkpoints(&env, "busy"), cps, "and no checkpoint was made");

    // --stop: the agent is stopped, then the rewind goes on.
    let out = env.tandem(&["rewind", "busy", "1", "--stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "1\n");
}

#[test]
fn checkpoints_survive_rm_and_archive_and_gc_drops_those_of_removed_sessions() {
    let env = TestEnv::new();
    for name in ["gone", "kept"] {
        env.ok(&["new", name, "--bg", "--agent", "shell"]);
        let id = id_of(&env, name);
        let wt = env.path_of(name);
        hooked_turn(&env, &id, "work", || std::fs::write(wt.join("w.txt"), "w\n").expect("write"));
        wait_checkpoints(&env, name, 1);
    }
    let gone = id_of(&env, "gone");
    let kept = id_of(&env, "kept");
    env.ok(&["rm", "--force", "gone"]);
    env.ok(&["archive", "kept"]);
    let refs = env.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/checkpoints/"]);
    assert!(refs.contains(&format!("{gone}/")) && refs.contains(&format!("{kept}/")), "{refs}");

    let out = env.ok(&["gc", "--older-than", "1"]);
    assert!(!out.contains("checkpoints of removed"), "removed just now: kept for a day: {out}");
    // Removed longer ago than the limit (0 days: any earlier second).
    let out = wait_for("gc to drop the removed session's checkpoints", || {
        let out = env.ok(&["gc", "--older-than", "0"]);
        out.contains("dropped the checkpoints of removed session gone (1 checkpoint)").then_some(out)
    });
    assert!(!out.contains("kept ("), "{out}");
    let refs = env.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/checkpoints/"]);
    assert!(!refs.contains(&format!("{gone}/")), "{refs}");
    assert!(refs.contains(&format!("{kept}/")), "an archived session keeps its checkpoints: {refs}");

    let doctor: serde_json::Value = serde_json::from_str(&env.ok(&["doctor", "--json"])).expect("json");
    assert_eq!(doctor["checkpoints"]["refs"], 1, "{doctor}");
    assert!(doctor["checkpoints"]["bytes"].as_u64().is_some_and(|b| b > 0), "{doctor}");
    assert!(env.ok(&["doctor"]).contains("checkpoints: 1 in this repository"));
}

#[test]
fn keep_bounds_each_sessions_checkpoints_and_a_repository_cannot_lower_it() {
    let env = TestEnv::new();
    // The repository asks for 1; only the user's config counts.
    std::fs::write(env.repo.join(".tandem.toml"), "[checkpoints]\nkeep = 1\n").expect("write");
    env.git(&["add", ".tandem.toml"]);
    env.git(&["commit", "-q", "-m", "keep one"]);
    env.user_config("[checkpoints]\nkeep = 2\n");
    env.ok(&["new", "few", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "few");
    let wt = env.path_of("few");
    for i in 1..=3 {
        hooked_turn(&env, &id, &format!("turn {i}"), || {
            std::fs::write(wt.join("f.txt"), format!("{i}\n")).expect("write")
        });
        wait_for(&format!("checkpoint {i}"), || {
            checkpoints(&env, "few").first().is_some_and(|c| c["n"] == i).then_some(())
        });
    }
    let list = checkpoints(&env, "few");
    let ns: Vec<u64> = list.iter().filter_map(|c| c["n"].as_u64()).collect();
    assert_eq!(ns, vec![3, 2], "the oldest went");
    let refs = env.git(&["for-each-ref", "--format=%(refname)", &format!("refs/tandem/checkpoints/{id}/")]);
    assert_eq!(refs.lines().count(), 2, "{refs}");
    assert!(env.ok(&["config", "show"]).contains("checkpoints.keep"), "shown with its source");
}

#[test]
fn sync_checkpoints_the_worktree_first() {
    let env = TestEnv::new();
    env.ok(&["new", "syncing", "--bg", "--agent", "shell", "--base", "main"]);
    let wt = env.path_of("syncing");
    std::fs::write(wt.join("mine.txt"), "uncommitted\n").expect("write");
    env.commit_in(&env.repo, "base.txt", "moved on\n", "main moves");
    env.ok(&["sync", "syncing"]);
    let list = checkpoints(&env, "syncing");
    assert_eq!(list.first().map(|c| c["cause"].clone()), Some(serde_json::json!("sync")), "{list:?}");
    let commit = list[0]["commit"].as_str().expect("commit");
    assert_eq!(env.git(&["show", &format!("{commit}:mine.txt")]), "uncommitted\n");
}

/// A turn that ends while a rewind of its session runs is checkpointed
/// once the rewind is over, never in the middle of it (the rewind's lock,
/// held here by the test as a rewind would hold it).
#[test]
fn a_turn_ending_during_a_rewind_is_checkpointed_after_it() {
    let env = TestEnv::new();
    env.ok(&["new", "locked", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "locked");
    let wt = env.path_of("locked");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.tandem_home.join("state/sessions").join(&id).join("rewind.lock"))
        .expect("lock file");
    lock.lock().expect("lock");
    hooked_turn(&env, &id, "during", || std::fs::write(wt.join("f.txt"), "1\n").expect("write"));
    // Another session's turn, ended after: once its checkpoint is there,
    // the checkpointer has looked at both (one look takes every pending
    // turn).
    env.ok(&["new", "other", "--bg", "--agent", "shell"]);
    let (other, other_wt) = (id_of(&env, "other"), env.path_of("other"));
    hooked_turn(&env, &other, "meanwhile", || std::fs::write(other_wt.join("g.txt"), "g\n").expect("write"));
    wait_checkpoints(&env, "other", 1);
    assert!(checkpoints(&env, "locked").is_empty(), "no checkpoint while a rewind runs");
    drop(lock);
    let list = wait_checkpoints(&env, "locked", 1);
    assert_eq!(list[0]["prompt"], "during", "the turn is not lost: {list:?}");
}

/// The checkpointer ran late: a turn's end was checkpointed only after
/// the next prompt was sent and its turn had written (here: no
/// supervisor ran meanwhile). That checkpoint holds the next turn's
/// work, so when the next turn ends with nothing more changed, it is the
/// next turn's checkpoint: relabelled, never left under the earlier
/// prompt (a rewind "to the end of turn A" would keep turn B's work).
#[test]
fn a_late_checkpoint_is_labelled_with_the_turn_whose_end_it_holds() {
    let env = TestEnv::new();
    env.ok(&["new", "late", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "late");
    let wt = env.path_of("late");
    env.ok(&["daemon", "stop"]);
    hooked_turn(&env, &id, "turn A", || std::fs::write(wt.join("f.txt"), "A\n").expect("write"));
    hook_event(&env, &id, &serde_json::json!({ "hook_event_name": "UserPromptSubmit", "prompt": "turn B" }));
    std::fs::write(wt.join("f.txt"), "B\n").expect("write");
    // A supervisor starts and checkpoints turn A's end, as the worktree is now.
    env.ok(&["list"]);
    let first = wait_checkpoints(&env, "late", 1);
    assert_eq!(first[0]["prompt"], "turn A", "turn B is under way: the newest ended turn is A");
    let commit = first[0]["commit"].as_str().expect("commit").to_owned();
    assert_eq!(env.git(&["show", &format!("{commit}:f.txt")]), "B\n");
    hook_event(&env, &id, &serde_json::json!({ "hook_event_name": "Stop", "last_assistant_message": "done" }));
    let relabelled = wait_for("the checkpoint to name turn B", || {
        let list = checkpoints(&env, "late");
        (list[0]["prompt"] == "turn B").then_some(list)
    });
    assert_eq!(relabelled.len(), 1, "no second checkpoint of the same state");
    assert_eq!(relabelled[0]["commit"], commit.as_str());

    // A turn that only talks leaves a checkpoint read before its prompt as it is.
    hooked_turn(&env, &id, "turn C", || std::fs::write(wt.join("f.txt"), "C\n").expect("write"));
    wait_for("turn C's checkpoint", || (checkpoints(&env, "late")[0]["prompt"] == "turn C").then_some(()));
    hooked_turn(&env, &id, "turn D, talk only", || {});
    hooked_turn(&env, &id, "turn E", || std::fs::write(wt.join("f.txt"), "E\n").expect("write"));
    let list = wait_for("turn E's checkpoint", || {
        let list = checkpoints(&env, "late");
        (list[0]["prompt"] == "turn E").then_some(list)
    });
    assert_eq!(list[1]["prompt"], "turn C", "{list:?}");
}
