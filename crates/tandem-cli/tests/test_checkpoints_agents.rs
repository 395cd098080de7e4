//! Checkpoints (issue 22) end to end: the real Claude Code, Codex and
//! Gemini CLIs against their stand-ins, one checkpoint per turn that
//! changed something; and a `kill -9` of the supervisor in the middle of
//! a checkpoint, after which the next start leaves no temporary index,
//! no `.lock` and no row without its ref.
//!
//! The agent tests are skipped with a printed reason only when the CLI is
//! absent and `TANDEM_TEST_REQUIRE_AGENTS` is unset.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::common::{TestEnv, agent_and_env, hook_event, wait_for, wait_within};

/// How long a real agent may take for one turn (its start included) on a
/// loaded machine.
const TURN: Duration = Duration::from_secs(90);

/// `tandem checkpoints NAME --json`, parsed (newest first).
fn checkpoints(env: &TestEnv, name: &str) -> Vec<serde_json::Value> {
    let out = env.ok(&["checkpoints", name, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).expect("json").as_array().expect("array").clone()
}

/// Waits until checkpoint `n` of the session is listed; returns the list.
fn wait_checkpoint(env: &TestEnv, name: &str, n: u64) -> Vec<serde_json::Value> {
    wait_within(&format!("checkpoint {n} of {name}"), TURN, || {
        let list = checkpoints(env, name);
        list.iter().any(|c| c["n"] == n).then_some(list)
    })
}

/// `(files, added, removed)` of a checkpoint.
fn stat(c: &serde_json::Value) -> (u64, u64, u64) {
    let num = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} of {c}"));
    (num("files"), num("added"), num("removed"))
}

/// The prompts of the listed checkpoints, newest first.
fn prompts(list: &[serde_json::Value]) -> Vec<&str> {
    list.iter().map(|c| c["prompt"].as_str().unwrap_or("")).collect()
}

/// The worktree's own admin folder (`.git/worktrees/NAME`).
fn admin_dir(env: &TestEnv, wt: &Path) -> PathBuf {
    PathBuf::from(env.git_in(wt, &["rev-parse", "--path-format=absolute", "--git-dir"]).trim())
}

/// Every row of `tandem checkpoints NAME --json` has its ref, and the ref
/// names the row's commit. A checkpoint being taken has its row a moment
/// before its ref (the order that makes a kill between them mendable):
/// a ref gets a few seconds to appear.
fn assert_rows_have_their_refs(env: &TestEnv, list: &[serde_json::Value]) {
    for c in list {
        let reference = c["ref"].as_str().expect("ref");
        let commit = c["commit"].as_str().expect("commit");
        let resolves = || {
            let out = env.command_git_in(&env.repo, &["rev-parse", "--verify", "--quiet", reference]);
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let _ = wait_within_or_not(Duration::from_secs(5), || resolves() == commit);
        assert_eq!(resolves(), commit, "{reference} names the row's commit: {c}");
    }
}

/// Polls `f` until it holds or `timeout` passes; whether it held.
fn wait_within_or_not(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The files of a worktree (`.git` aside) with their contents, sorted.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path.strip_prefix(root).expect("inside").to_string_lossy().into_owned();
                out.push((name, std::fs::read(&path).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// The real agents

/// The real Claude Code: three turns (write a file; edit and commit it;
/// delete it and `git reset --hard HEAD~1`) make exactly three
/// checkpoints with their diffstats, each leaving the agent's index and
/// HEAD as they were; `rewind 1` brings the file back while the commit
/// the reset dropped stays reachable, and `rewind --undo` returns. In a
/// fourth turn's long command a rewind is refused, changing nothing,
/// until `--stop`.
///
/// The last tool call of each turn copies the worktree's index and HEAD
/// files aside; after it the agent only answers in text, so the copy and
/// the files once the turn's checkpoint is listed must be the same bytes:
/// nothing in between (the checkpoint, the supervisor) wrote them.
#[test]
fn claude_three_turns_three_checkpoints_rewind_and_undo() {
    use crate::common::anthropic::{MessagesStub, Step, use_claude};
    let Some((claude, mut env)) = agent_and_env("claude") else { return };
    let worktrees = env.tmp.path().join("wt");
    let seen = env.tmp.path().join("seen");
    std::fs::create_dir_all(&seen).expect("seen dir");
    env.user_config(&format!("[worktrees]\ndir = {:?}\n", worktrees.to_string_lossy()));
    let wt = worktrees.join("cl");
    let keep = |n: u32| {
        let at = seen.join(n.to_string());
        format!(
            "cp \"$(git rev-parse --git-path index)\" '{0}.index' && cp \"$(git rev-parse --git-path HEAD)\" '{0}.head'",
            at.display()
        )
    };
    let stub = MessagesStub::start(vec![
        // Turn 1: write a file.
        Step::tool("Write", json!({ "file_path": wt.join("notes.txt"), "content": "one\ntwo\nthree\n" })),
        Step::tool("Bash", json!({ "command": keep(1), "description": "Keep index and HEAD" })),
        Step::text("Wrote notes.txt."),
        // Turn 2: edit it, and commit.
        Step::tool(
            "Bash",
            json!({
                "command": format!(
                    "printf 'one\\n2\\nthree\\n' > notes.txt && git add notes.txt && git commit -q -m 'Edit notes' && {}",
                    keep(2)
                ),
                "description": "Edit and commit notes.txt"
            }),
        ),
        Step::text("Edited and committed."),
        // Turn 3: delete it, and reset the commit away.
        Step::tool(
            "Bash",
            json!({
                "command": format!("rm notes.txt && git reset -q --hard HEAD~1 && {}", keep(3)),
                "description": "Delete notes.txt and drop the commit"
            }),
        ),
        Step::text("Deleted and reset."),
        // Turn 4: a file, then a long command (Claude Code refuses long
        // sleeps in the foreground).
        Step::tool(
            "Bash",
            json!({
                "command": "echo mid > mid.txt; timeout 60 tail -f /dev/null; echo never",
                "description": "Wait long"
            }),
        ),
    ]);
    use_claude(&mut env, &claude, &stub, &["Write", "Bash"]);

    env.ok(&["new", "cl", "--bg", "-p", "Write notes.txt"]);
    assert_eq!(env.path_of("cl"), wt);
    let base = env.git(&["rev-parse", "main"]).trim().to_owned();
    let admin = admin_dir(&env, &wt);
    let index_and_head =
        || (std::fs::read(admin.join("index")).expect("index"), std::fs::read(admin.join("HEAD")).expect("HEAD"));
    let kept = |n: u32| {
        let at = seen.join(n.to_string());
        let read = |ext: &str| {
            std::fs::read(at.with_extension(ext)).unwrap_or_else(|e| panic!("turn {n}'s copy of the {ext}: {e}"))
        };
        (read("index"), read("head"))
    };

    let turn = |n: u32, prompt: &str| {
        if n > 1 {
            env.wait_state("cl", "idle");
            env.ok(&["send", "cl", prompt]);
        }
        let list = wait_checkpoint(&env, "cl", u64::from(n));
        let ((index, head), (kept_index, kept_head)) = (index_and_head(), kept(n));
        assert!(
            index == kept_index && head == kept_head,
            "turn {n}: the agent's index ({} bytes, as the turn left it {}) and HEAD ({:?}, then {:?}) changed",
            index.len(),
            kept_index.len(),
            String::from_utf8_lossy(&head),
            String::from_utf8_lossy(&kept_head)
        );
        list
    };
    let list = turn(1, "Write notes.txt");
    assert_eq!(stat(&list[0]), (1, 3, 0), "{list:?}");
    assert_eq!(list[0]["head"], base.as_str());
    let list = turn(2, "Edit notes.txt and commit it");
    assert_eq!(stat(&list[0]), (1, 1, 1), "{list:?}");
    let committed = env.git_in(&wt, &["rev-parse", "HEAD"]).trim().to_owned();
    assert_ne!(committed, base);
    assert_eq!(list[0]["head"], committed.as_str());
    let list = turn(3, "Delete notes.txt and drop the commit");
    assert_eq!(stat(&list[0]), (1, 0, 3), "{list:?}");
    assert_eq!(env.git_in(&wt, &["rev-parse", "HEAD"]).trim(), base, "the reset went back");

    // The agent answered its last turn; it is idle and nothing is pending.
    env.wait_state("cl", "idle");
    let list = checkpoints(&env, "cl");
    assert_eq!(list.len(), 3, "exactly one checkpoint per turn: {list:?}");
    assert_eq!(
        prompts(&list),
        ["Delete notes.txt and drop the commit", "Edit notes.txt and commit it", "Write notes.txt"]
    );
    assert!(list.iter().all(|c| c["cause"] == "turn" && c["agent"] == "claude"), "{list:?}");
    assert_rows_have_their_refs(&env, &list);
    assert_eq!(env.git(&["branch", "--contains", &committed]), "", "no branch keeps the dropped commit");

    // Rewind to turn 1: the file is back, as it was then.
    let before = (files_of(&wt), env.git_in(&wt, &["rev-parse", "HEAD"]), index_and_head());
    let out = env.ok(&["rewind", "cl", "1"]);
    assert!(out.contains("--undo"), "{out}");
    assert_eq!(std::fs::read_to_string(wt.join("notes.txt")).expect("back"), "one\ntwo\nthree\n");
    assert_eq!(env.git_in(&wt, &["rev-parse", "HEAD"]).trim(), base, "HEAD stays without --hard");
    // The commit the reset dropped (HEAD before `git reset --hard
    // HEAD~1`; HEAD~1 itself is the base, which main keeps) is still
    // reachable, from the checkpoint refs alone (no branch has it).
    let reachable =
        env.git(&["for-each-ref", "--contains", &committed, "--format=%(refname)", "refs/tandem/checkpoints/"]);
    assert!(!reachable.trim().is_empty(), "the dropped commit is kept by a checkpoint ref");
    assert_eq!(env.git(&["cat-file", "-p", &format!("{committed}:notes.txt")]), "one\n2\nthree\n");

    // Undo: the worktree, HEAD and index as before the rewind.
    env.ok(&["rewind", "cl", "--undo"]);
    assert!(!wt.join("notes.txt").exists());
    let after = (files_of(&wt), env.git_in(&wt, &["rev-parse", "HEAD"]), index_and_head());
    assert!(after == before, "rewind --undo returns to the state before the rewind");
    assert_rows_have_their_refs(&env, &checkpoints(&env, "cl"));

    // Mid-turn: a rewind is refused and changes nothing; with --stop the
    // agent is stopped first, and the state it left is checkpointed
    // before the files go back.
    env.ok(&["send", "cl", "Wait a while"]);
    wait_within("the long command", TURN, || {
        env.ok(&["history", "cl"]).contains("tool-call    Bash: echo mid > mid.txt").then_some(())
    });
    // Its content, not just the file: `>` makes it before `echo` writes.
    wait_for("mid.txt", || (std::fs::read(wt.join("mid.txt")).ok()? == b"mid\n").then_some(()));
    let (files, repo, list) = (files_of(&wt), env.repo_state(), checkpoints(&env, "cl"));
    let err = env.fails(&["rewind", "cl", "1"]);
    assert!(err.contains("middle of a turn") && err.contains("--stop"), "{err}");
    assert!(files_of(&wt) == files && env.repo_state() == repo, "a refused rewind changes nothing");
    assert_eq!(checkpoints(&env, "cl"), list, "and makes no checkpoint");
    env.ok(&["rewind", "cl", "1", "--stop"]);
    assert_eq!(env.session("cl")["state"], "stopped");
    assert_eq!(std::fs::read_to_string(wt.join("notes.txt")).expect("back"), "one\ntwo\nthree\n");
    assert!(!wt.join("mid.txt").exists());
    let list = checkpoints(&env, "cl");
    assert_eq!((list[0]["cause"].as_str(), list[0]["rewound_to"].as_u64()), (Some("rewind"), Some(1)), "{list:?}");
    let reference = list[0]["ref"].as_str().expect("ref");
    assert_eq!(env.git(&["show", &format!("{reference}:mid.txt")]), "mid\n", "the stopped turn's work is kept");
}

/// Codex through its app-server: a turn that writes a file, one that
/// only answers, one that writes another: two checkpoints, each with its
/// turn's prompt.
#[test]
fn codex_one_checkpoint_per_turn_that_changes_files() {
    use crate::common::openai::{ResponsesStub, Step, codex_env, write_codex_config};
    let Some((codex, mut env)) = agent_and_env("codex") else { return };
    let stub = ResponsesStub::start(vec![
        Step::shell("printf 'a\\n' > a.txt"),
        Step::text("Wrote a.txt."),
        Step::text("Nothing to change."),
        Step::shell("printf 'b1\\nb2\\n' > b.txt"),
        Step::text("Wrote b.txt."),
    ]);
    let home = env.tmp.path().join("codex-home");
    write_codex_config(&home, &stub.base_url(), env.tmp.path());
    env.env.extend(codex_env(&stub, &home));
    let dir = codex.parent().expect("codex has a folder").to_string_lossy().into_owned();
    env.env.push(("PATH".to_owned(), format!("{dir}:/usr/local/bin:/usr/bin:/bin")));
    let agent = "codex -c approval_policy=never -c sandbox_mode=danger-full-access";
    env.ok(&["new", "cx", "--bg", "--agent", agent, "-p", "Write a.txt"]);
    three_turns(&env, "cx", "Nothing to change.");
}

/// Gemini through ACP: as [`codex_one_checkpoint_per_turn_that_changes_files`].
#[test]
fn gemini_one_checkpoint_per_turn_that_changes_files() {
    use crate::common::gemini::{GeminiStub, Step, gemini_env, write_gemini_settings};
    let Some((gemini, mut env)) = agent_and_env("gemini") else { return };
    let stub = GeminiStub::start(vec![
        Step::write_file("a.txt", "a\n"),
        Step::text("Wrote a.txt."),
        Step::text("Nothing to change."),
        Step::write_file("b.txt", "b1\nb2\n"),
        Step::text("Wrote b.txt."),
    ]);
    let home = env.tmp.path().join("gemini-home");
    write_gemini_settings(&home);
    env.env.extend(gemini_env(&stub, &home).into_iter().filter(|(k, _)| !k.starts_with("GIT_")));
    let dir = gemini.parent().expect("gemini has a folder").to_string_lossy().into_owned();
    env.env.push(("PATH".to_owned(), format!("{dir}:/usr/local/bin:/usr/bin:/bin")));
    env.ok(&["new", "gm", "--bg", "--agent", "gemini --yolo -m gemini-2.5-flash", "-p", "Write a.txt"]);
    three_turns(&env, "gm", "Nothing to change.");
}

/// The turns after `new NAME -p "Write a.txt"`: checkpoint 1 for it; a
/// turn answered with `talk` (no file changed) makes none; the next,
/// writing `b.txt`, makes checkpoint 2. Were the talking turn
/// checkpointed, it would be 2 and `Write b.txt` 3.
fn three_turns(env: &TestEnv, name: &str, talk: &str) {
    let list = wait_checkpoint(env, name, 1);
    assert_eq!((prompts(&list), stat(&list[0])), (vec!["Write a.txt"], (1, 1, 0)), "{list:?}");
    let idle = || {
        wait_within(&format!("{name} to end its turn"), TURN, || {
            let s = env.session(name);
            ["idle", "asking"].contains(&s["state"].as_str().unwrap_or("")).then_some(())
        });
    };
    idle();
    env.ok(&["send", name, "Tell me about it"]);
    wait_within("the talking turn's answer", TURN, || env.ok(&["history", name]).contains(talk).then_some(()));
    idle();
    env.ok(&["send", name, "Write b.txt"]);
    let list = wait_within("the checkpoint of `Write b.txt`", TURN, || {
        let list = checkpoints(env, name);
        list.iter().any(|c| c["prompt"] == "Write b.txt").then_some(list)
    });
    assert_eq!(prompts(&list), ["Write b.txt", "Write a.txt"], "one checkpoint per turn that changed files");
    assert_eq!((list[0]["n"].as_u64(), stat(&list[0])), (Some(2), (1, 2, 0)), "{list:?}");
    assert_rows_have_their_refs(env, &list);
    let shown = env.ok(&["diff", name, "--checkpoint", "2", "--name-only"]);
    assert_eq!(shown.trim(), "b.txt");
}

// ---------------------------------------------------------------------------
// kill -9 of the supervisor mid-checkpoint

/// A shell session `cp` whose supervisor reads the fault file, its turns
/// reported by hook events as Claude Code's are; returns the
/// environment, the session's id and worktree, and the fault file.
fn crash_env() -> (TestEnv, String, PathBuf, PathBuf) {
    let mut env = TestEnv::new();
    let faults = env.tmp.path().join("faults");
    env.env.push(("TANDEM_FAULTS".into(), faults.to_string_lossy().into_owned()));
    // Turns end only as reported (the hooks below), never by the shell's
    // output going quiet: a checkpoint after the restart is the killed
    // turn's, taken again because it was not marked seen.
    env.user_config("[supervisor]\nquiet_secs = 3600\n");
    env.ok(&["new", "cp", "--bg", "--agent", "shell"]);
    let id = env.session("cp")["id"].as_str().expect("id").to_owned();
    let wt = env.path_of("cp");
    (env, id, wt, faults)
}

/// Temporary index files of snapshots in the state folder.
fn scratch_files(env: &TestEnv) -> Vec<String> {
    let dir = env.tandem_home.join("state");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot-index-") || n.starts_with("index-copy-"))
        .collect();
    names.sort();
    names
}

/// `.lock` files under the repository's checkpoint refs.
fn ref_locks(env: &TestEnv) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "lock") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&env.repo.join(".git/refs/tandem/checkpoints"), &mut out);
    out
}

fn checkpoint_refs(env: &TestEnv) -> String {
    env.git(&["for-each-ref", "--format=%(refname) %(objectname)", "refs/tandem/checkpoints/"])
}

/// Ends a hooked turn that wrote `notes.txt`, with `fault` armed (a
/// line of the fault file; `None` when something else kills, writing
/// `<point> <pid>` to `<faults>.fired` as a fault does): the supervisor's
/// checkpointer reaches it and is killed. Waits until the supervisor is
/// gone and, if `orphans`, every command it started too; returns its pid.
fn kill_mid_checkpoint(env: &TestEnv, id: &str, wt: &Path, faults: &Path, fault: Option<&str>, orphans: bool) -> i32 {
    let supervisor = env.supervisor_pid().expect("a supervisor runs");
    hook_event(env, id, &json!({ "hook_event_name": "UserPromptSubmit", "prompt": "write notes" }));
    std::fs::write(wt.join("notes.txt"), "one\ntwo\n").expect("write");
    if let Some(fault) = fault {
        std::fs::write(faults, format!("{fault}\n")).expect("arm");
    }
    hook_event(env, id, &json!({ "hook_event_name": "Stop", "last_assistant_message": "done" }));
    let fired = PathBuf::from(format!("{}.fired", faults.display()));
    let text = wait_for("the fault to fire", || std::fs::read_to_string(&fired).ok().filter(|t| t.ends_with('\n')));
    let pid: i32 = text.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("the killed pid");
    assert_eq!(pid, supervisor, "the supervisor was killed at {text}");
    wait_for("the killed supervisor (and what it started) to end", || {
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err();
        (gone && (!orphans || tandem_core::process::running_members(pid).is_empty())).then_some(())
    });
    pid
}

/// After the kill, the next command starts a supervisor that mends what
/// the killed one left: checks the leftovers, waits for the turn's one
/// checkpoint (re-taken or mended) and returns it.
fn restart_and_check(env: &TestEnv, killed: i32) -> serde_json::Value {
    env.ok(&["list"]);
    let now = env.supervisor_pid().expect("a supervisor again");
    assert_ne!(now, killed);
    let left = tandem_core::process::running_members(killed);
    assert!(left.is_empty(), "the killed supervisor's commands were ended: {left:?}");
    let list = wait_checkpoint(env, "cp", 1);
    // A checkpoint the new supervisor is taking has its own for a moment.
    wait_within("no temporary index left", Duration::from_secs(10), || scratch_files(env).is_empty().then_some(()));
    assert_eq!(ref_locks(env), Vec::<PathBuf>::new(), "no lock under the checkpoint refs");
    assert_eq!(list.len(), 1, "the turn has one checkpoint: {list:?}");
    assert_rows_have_their_refs(env, &list);
    assert_eq!(list[0]["prompt"], "write notes");
    let reference = list[0]["ref"].as_str().expect("ref");
    assert_eq!(env.git(&["show", &format!("{reference}:notes.txt")]), "one\ntwo\n");
    list[0].clone()
}

/// Killed after the commit, before the row: no row, no ref (the commit
/// is an object nothing names); the next supervisor checkpoints the
/// turn, once.
#[test]
fn a_supervisor_killed_after_the_commit_before_the_row_leaves_no_row_and_no_ref() {
    let (env, id, wt, faults) = crash_env();
    let killed = kill_mid_checkpoint(&env, &id, &wt, &faults, Some("checkpoint.committed"), true);
    assert_eq!((stored_rows(&env), checkpoint_refs(&env).as_str()), (0, ""), "no row and no ref");
    assert_eq!(scratch_files(&env), Vec::<String>::new(), "the temporary indexes were gone before the commit");
    restart_and_check(&env, killed);
}

/// Killed after the row, before the ref: the next supervisor writes the
/// ref the row names, and makes no second checkpoint.
#[test]
fn a_supervisor_killed_after_the_row_before_the_ref_gets_the_ref_at_restart() {
    let (env, id, wt, faults) = crash_env();
    let killed = kill_mid_checkpoint(&env, &id, &wt, &faults, Some("checkpoint.stored"), true);
    assert_eq!((stored_rows(&env), checkpoint_refs(&env).as_str()), (1, ""), "the row, not yet the ref");
    let c = restart_and_check(&env, killed);
    assert_eq!(c["n"], 1);
}

/// Killed while git adds the worktree to the temporary index: the
/// orphaned git finishes and leaves the index file; the next supervisor
/// deletes it, and checkpoints the turn.
#[test]
fn a_supervisor_killed_mid_index_leaves_no_temporary_index() {
    let (env, id, wt, faults) = crash_env();
    let killed = kill_mid_checkpoint(&env, &id, &wt, &faults, Some("git:add"), true);
    let left = scratch_files(&env);
    assert!(!left.is_empty(), "the killed checkpoint left its temporary index: the case the sweep is for");
    assert_eq!((stored_rows(&env), checkpoint_refs(&env).as_str()), (0, ""));
    restart_and_check(&env, killed);
}

/// Killed while `git update-ref` holds the checkpoint ref's lock: a
/// `reference-transaction` hook (git runs it with the lock taken, in the
/// supervisor's process group) kills the supervisor, then waits. The
/// half-written ref (its `.lock`, and the row without the ref) is what
/// the next start finds: it ends the orphaned git, removes the lock and
/// writes the ref.
#[test]
fn a_supervisor_killed_mid_update_ref_leaves_no_half_ref() {
    let (env, id, wt, faults) = crash_env();
    let hook = env.repo.join(".git/hooks/reference-transaction");
    let lock = env.tandem_home.join("run/supervisor.lock");
    let fired = format!("{}.fired", faults.display());
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$1\" = prepared ] || exit 0\ngrep -q ' refs/tandem/checkpoints/' || exit 0\n\
             pid=$(cat '{}')\nkill -9 \"$pid\"\necho \"reference-transaction $pid\" > '{fired}'\nexec sleep 30\n",
            lock.display()
        ),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let killed = kill_mid_checkpoint(&env, &id, &wt, &faults, None, false);
    assert_eq!((stored_rows(&env), checkpoint_refs(&env).as_str()), (1, ""), "the row, not the ref");
    assert_eq!(ref_locks(&env).len(), 1, "git holds the ref's lock: {:?}", ref_locks(&env));
    std::fs::remove_file(&hook).expect("unhook");
    restart_and_check(&env, killed);
}

/// Checkpoint rows in the store, read straight from the database (no
/// `tandem` command, so no supervisor starts).
fn stored_rows(env: &TestEnv) -> i64 {
    let db = rusqlite::Connection::open(env.tandem_home.join("state/tandem.db")).expect("open the store");
    db.query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0)).expect("count")
}

/// A prompt queued while a turn runs is submitted the moment the turn
/// ends (Claude Code's hooks report `Stop`, then `UserPromptSubmit` at
/// once), often before the checkpointer looks: the ended turn's
/// checkpoint still carries its own prompt, and the next turn's its own.
/// The supervisor is stopped while the hooks report, so the checkpointer
/// looks only after both, every time.
#[test]
fn a_prompt_queued_during_a_turn_is_the_next_checkpoints() {
    let env = TestEnv::new();
    env.user_config("[supervisor]\nquiet_secs = 3600\n");
    env.ok(&["new", "q", "--bg", "--agent", "shell"]);
    let id = env.session("q")["id"].as_str().expect("id").to_owned();
    let wt = env.path_of("q");
    hook_event(&env, &id, &json!({ "hook_event_name": "UserPromptSubmit", "prompt": "first" }));
    std::fs::write(wt.join("a.txt"), "a\n").expect("write");
    let alive = |pid: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    let supervisor = env.supervisor_pid().expect("a supervisor runs");
    env.ok(&["daemon", "stop"]);
    wait_for("the supervisor to exit", || (!alive(supervisor)).then_some(()));
    hook_event(&env, &id, &json!({ "hook_event_name": "Stop", "last_assistant_message": "done" }));
    hook_event(&env, &id, &json!({ "hook_event_name": "UserPromptSubmit", "prompt": "second" }));
    assert!(env.supervisor_pid().is_none_or(|p| !alive(p)), "the hooks started no supervisor");
    env.ok(&["daemon", "start"]);
    let list = wait_checkpoint(&env, "q", 1);
    assert_eq!((prompts(&list), stat(&list[0])), (vec!["first"], (1, 1, 0)), "{list:?}");
    std::fs::write(wt.join("b.txt"), "b\n").expect("write");
    hook_event(&env, &id, &json!({ "hook_event_name": "Stop", "last_assistant_message": "done again" }));
    let list = wait_checkpoint(&env, "q", 2);
    assert_eq!(prompts(&list), ["second", "first"], "{list:?}");
}
