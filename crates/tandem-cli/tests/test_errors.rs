//! Errors that lied or crashed (issue 17, "Errors that lie or crash",
//! findings 8 and 10): odd environments and paths, a broken pipe, a
//! database that cannot be written or read, names that must be made
//! usable, submodules and `core.bare` repositories, a 0×0 client. Each
//! bad input gets one line naming the cause and the next command, a
//! non-zero exit, and nothing changed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, stderr, wait_for};

/// Runs `tandem ARGS` in `dir`, asserts success, returns stdout.
fn ok_in(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let out = env.tandem_in(dir, args);
    assert!(out.status.success(), "tandem {args:?} failed: {}", stderr(&out));
    crate::common::stdout(&out)
}

fn new_shell(env: &TestEnv, name: &str) {
    env.ok(&["new", name, "--bg", "--agent", "shell"]);
    env.wait_state(name, "running");
}

/// Runs `tandem ARGS` in `dir` with one extra variable whose value is raw
/// bytes; returns (exit code, stderr).
fn with_raw_var(env: &TestEnv, dir: &Path, key: &str, value: &[u8], args: &[&str]) -> (Option<i32>, String) {
    let out = env.command_in(dir, args).env(key, OsStr::from_bytes(value)).output().expect("run tandem");
    (out.status.code(), stderr(&out))
}

/// Issue 17: a non-UTF-8 variable (`FOO=$'\xff'`, or an `OLDPWD` with such
/// bytes) made `new`, `rm`, `archive`, `fork` and `task new` panic (exit
/// 101). Such a variable cannot be handed on as text: it is left out of
/// the agent's environment, and the command says so and works.
#[test]
fn a_non_utf8_environment_variable_is_left_out_not_a_crash() {
    let env = TestEnv::new();
    let repo = env.repo.clone();
    let (code, err) = with_raw_var(&env, &repo, "FOO", b"\xff", &["new", "x", "--bg", "--agent", "shell"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("`FOO`") && err.contains("not UTF-8"), "the note names the variable: {err}");
    env.wait_state("x", "running");
    let (code, err) = with_raw_var(&env, &repo, "OLDPWD", b"/tmp/\xff", &["fork", "x", "y"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = with_raw_var(&env, &repo, "FOO", b"\xff", &["archive", "y"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = with_raw_var(&env, &repo, "OLDPWD", b"/tmp/\xff", &["rm", "x"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) =
        with_raw_var(&env, &repo, "FOO", b"\xff", &["task", "new", "do it", "--trials", "1", "--agents", "shell"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Issue 17: a working directory whose path is not UTF-8 made `list` say
/// "the supervisor did not answer" (and `new` panic). tandem keeps paths
/// as text, so it refuses at once, naming the folder and what to do.
#[test]
fn a_repository_whose_path_is_not_utf8_is_refused_clearly() {
    let env = TestEnv::new();
    let name = OsStr::from_bytes(b"r\xffx");
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "placeholder"]);
    let odd = env.tmp.path().join(name);
    std::fs::rename(env.tmp.path().join("placeholder"), &odd).expect("rename");
    std::fs::write(odd.join("a"), "a\n").expect("write");
    env.git_in(&odd, &["add", "a"]);
    env.git_in(&odd, &["commit", "-q", "-m", "i"]);
    for args in [&["list"][..], &["new", "x", "--bg", "--agent", "shell"]] {
        let err = env.fails_in(&odd, args);
        assert!(err.contains("not valid UTF-8") && err.contains("rename"), "{args:?}: {err}");
    }
    // Any other path sent to the supervisor: an env file's.
    let file = env.tmp.path().join(OsStr::from_bytes(b"e\xff"));
    std::fs::write(&file, "A=1\n").expect("env file");
    let out = env.command_in(&env.repo, &["new", "x", "--bg", "--agent", "shell", "--env-file"]).arg(&file).output();
    let out = out.expect("run tandem");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("UTF-8") && err.contains("rename") && err.lines().count() == 1, "{err}");
    assert!(!env.tandem_home.join("data/worktrees").exists(), "nothing was made");
}

/// Issue 17: a newline in the repository's path broke reading git's
/// answers line by line. Such a repository works like any other.
#[test]
fn a_newline_in_the_repository_path_works() {
    let env = TestEnv::new();
    let odd = env.tmp.path().join("two\nlines");
    std::fs::rename(&env.repo, &odd).expect("rename");
    ok_in(&env, &odd, &["new", "nl", "--bg", "--agent", "shell"]);
    let out = ok_in(&env, &odd, &["list"]);
    assert!(out.contains("nl"), "{out}");
    ok_in(&env, &odd, &["rm", "--wait", "nl"]);
    assert_eq!(env.git_in(&odd, &["worktree", "list", "--porcelain", "-z"]).matches("worktree ").count(), 1);
}

/// Issue 17: `tandem archive s | head -1` panicked on the broken pipe.
/// A closed stdout ends the command quietly, its work done, as other
/// command-line tools do.
#[test]
fn a_closed_stdout_ends_quietly() {
    let env = TestEnv::new();
    new_shell(&env, "s");
    new_shell(&env, "t");
    for args in [&["archive", "s"][..], &["list"], &["rm", "t"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = env.command_in(&env.repo, args).stdout(Stdio::from(writer)).output().expect("run");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    let s: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["list", "--json", "--archived"])).expect("list --json is JSON");
    assert!(s.iter().any(|s| s["name"] == "s" && s["state"] == "archived"), "archive finished: {s:?}");
}

/// Makes a file immutable (`chattr +i`), which stops root too; undone on
/// drop so the temporary folder can go.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: &[PathBuf]) -> Option<Immutable> {
        for path in paths {
            let ok =
                Command::new("chattr").arg("+i").arg(path).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
            if !ok {
                drop(Immutable(paths.to_vec()));
                return None;
            }
        }
        Some(Immutable(paths.to_vec()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(path).stderr(Stdio::null()).status();
        }
    }
}

/// Issue 17: a read-only database made `new`, `rm`, `archive` and
/// `doctor` print only "error: database error", and a failed `rm` still
/// stopped the agent. Each now names the cause and the fix, and changes
/// nothing.
#[test]
fn a_read_only_database_is_named_and_nothing_changes() {
    let env = TestEnv::new();
    new_shell(&env, "s");
    let state = env.tandem_home.join("state");
    let files: Vec<PathBuf> =
        ["tandem.db", "tandem.db-wal", "tandem.db-shm"].iter().map(|f| state.join(f)).filter(|p| p.exists()).collect();
    let before = env.repo_state();
    let Some(_immutable) = Immutable::set(&[files, vec![state.clone()]].concat()) else {
        crate::common::skipped("`chattr +i` is not available here, so a database root cannot write is not either");
        return;
    };
    let commands = [
        &["new", "t", "--bg", "--agent", "shell"][..],
        &["rm", "s"],
        &["rm", "--force", "s"],
        &["archive", "s"],
        &["respawn", "s"],
        &["stop", "s"],
    ];
    for args in commands {
        let err = env.fails(args);
        assert!(err.contains("read-only") && err.contains("writable"), "{args:?}: {err}");
    }
    assert_eq!(env.repo_state(), before, "git is untouched");
    // Checking needs no write: `doctor` still reports.
    env.ok(&["doctor"]);
    let s = env.session("s");
    assert_eq!(s["state"], "running", "the agent was not stopped: {s}");
}

/// Issue 17: a garbage database made every command wait ten seconds and
/// say "it did not listen in time", the cause only in `supervisor.log`.
#[test]
fn a_damaged_database_is_named_at_once() {
    let env = TestEnv::new();
    let state = env.tandem_home.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("tandem.db"), vec![0x5a_u8; 40_000]).expect("garbage");
    for args in [&["list"][..], &["daemon", "start"], &["new", "x", "--bg", "--agent", "shell"]] {
        let started = Instant::now();
        let err = env.fails(args);
        assert!(err.contains("not a database") && err.contains("mv "), "{args:?}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?} took {:?}", started.elapsed());
    }
    assert!(!env.tandem_home.join("data/worktrees").exists(), "nothing was made");
}

/// Issue 17: the help promises "`-` for other characters", but `fix
/// login` was refused; it becomes `fix-login`, and says so.
#[test]
fn a_name_with_other_characters_becomes_its_slug() {
    let env = TestEnv::new();
    let out = env.tandem(&["new", "fix login", "--bg", "--agent", "shell"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("`fix-login`"), "it says what the name became: {}", stderr(&out));
    env.wait_state("fix-login", "running");
}

/// Issue 17: an 82-character name was cut at 63 characters mid-word, so
/// two long names collided. It is cut at a word boundary, and a second
/// name cut to the same slug is refused, saying why.
#[test]
fn long_names_are_cut_between_words_and_never_collide() {
    let env = TestEnv::new();
    let first = "refactor-the-authentication-module-to-use-the-new-session-storage-and-tokens-first";
    let second = "refactor-the-authentication-module-to-use-the-new-session-storage-and-tokens-second";
    assert!(first.len() > 63);
    let out = env.tandem(&["new", first, "--bg", "--agent", "shell"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let slug = crate::common::stdout(&out).split('\t').next().expect("slug").to_owned();
    assert!(slug.len() <= 63 && first.starts_with(&format!("{slug}-")), "cut between words: {slug}");
    let before = env.repo_state();
    let err = env.fails(&["new", second, "--bg", "--agent", "shell"]);
    assert!(err.contains(&format!("is cut to `{slug}` (63 characters at most)")) && err.contains("already"), "{err}");
    assert_eq!(env.repo_state(), before);
    assert_eq!(env.sessions().len(), 1);
}

/// Finding 8: a session made inside a submodule could be created but not
/// removed, archived or checked ("… is inside the .git folder").
#[test]
fn a_session_of_a_submodule_can_be_removed() {
    let env = TestEnv::new();
    let sub = env.tmp.path().join("sub");
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "sub"]);
    std::fs::write(sub.join("s.txt"), "s\n").expect("write");
    env.git_in(&sub, &["add", "s.txt"]);
    env.git_in(&sub, &["commit", "-q", "-m", "s"]);
    env.git(&["-c", "protocol.file.allow=always", "submodule", "-q", "add", sub.to_str().expect("utf-8"), "sub"]);
    env.git(&["commit", "-q", "-m", "add sub"]);
    let inner = env.repo.join("sub");
    ok_in(&env, &inner, &["new", "insub", "--bg", "--agent", "shell"]);
    ok_in(&env, &inner, &["doctor"]);
    ok_in(&env, &inner, &["respawn", "insub"]);
    ok_in(&env, &inner, &["archive", "insub"]);
    ok_in(&env, &inner, &["restore", "insub"]);
    ok_in(&env, &inner, &["rm", "--wait", "insub"]);
    assert_eq!(env.git_in(&inner, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
}

/// Finding 8: from a linked worktree of a `core.bare` repository a
/// session could be made but never removed ("… is a bare repository").
/// tandem refuses at `new`, saying what to do, and makes nothing.
#[test]
fn a_worktree_of_a_bare_repository_is_refused_at_new() {
    let env = TestEnv::new();
    let bare = env.tmp.path().join("bare.git");
    env.git_in(env.tmp.path(), &["clone", "-q", "--bare", env.repo.to_str().expect("utf-8"), "bare.git"]);
    env.git_in(&bare, &["worktree", "add", "-q", "../linked", "main"]);
    let linked = env.tmp.path().join("linked");
    let state = |dir: &Path| {
        env.git_in(dir, &["for-each-ref"]) + env.git_in(dir, &["worktree", "list", "--porcelain"]).as_str()
    };
    let before = state(&bare);
    let err = env.fails_in(&linked, &["new", "x", "--bg", "--agent", "shell"]);
    assert!(err.contains("bare") && err.contains("git clone"), "{err}");
    assert_eq!(state(&bare), before);
}

/// Finding 10: a client reporting a 0×0 terminal shrank the agent's
/// terminal to 2×2 for good. Sizes that small are ignored.
#[test]
fn a_zero_sized_client_leaves_the_agents_size_alone() {
    let env = TestEnv::new();
    new_shell(&env, "sized");
    // The client's terminal reports 0×0 (`stty` inside the pseudo-terminal;
    // the test's own screen keeps a size it can draw).
    let mut cmd = portable_pty::CommandBuilder::new("sh");
    cmd.args(["-c", "stty rows 0 cols 0 && exec \"$0\" attach sized"]);
    cmd.arg(TestEnv::bin());
    cmd.cwd(&env.repo);
    cmd.env_clear();
    for (k, v) in env.command_in(&env.repo, &[]).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut tiny = crate::common::Pty::spawn(cmd, 24, 80);
    wait_for("the tiny client to attach", || tiny.raw_text().contains("attaching to sized").then_some(()));
    tiny.send(b"\x1c");
    tiny.wait_exit();
    // The agent's own view of its terminal, written where the test reads it.
    env.ok(&["send", "sized", "stty size > size.txt"]);
    let file = env.path_of("sized").join("size.txt");
    let size =
        wait_for("the agent to write its size", || std::fs::read_to_string(&file).ok().filter(|s| s.ends_with('\n')));
    assert_eq!(size.trim(), "24 80", "the size from `new` stays");
}

/// A small tmpfs at a folder, so a test can fill a disk without filling
/// the machine's; unmounted (lazily: processes may hold files) on drop,
/// then `remove` is deleted.
struct SmallDisk {
    at: PathBuf,
    remove: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, remove: &Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk { at: at.to_path_buf(), remove: remove.to_path_buf() })
    }

    /// Writes into `file` until the disk is full.
    fn fill(&self, file: &str) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.at.join(file)).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.write_all(&[0u8; 512]);
        while f.write_all(&[0u8]).is_ok() {}
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.remove);
    }
}

/// Issue 17: on a full disk `new`, `rm`, `archive` printed only "error:
/// database error", `send` typed the prompt and then said "no running
/// agent", and a failed `rm --force` still stopped the agent. Each now
/// says the disk is full and changes nothing.
#[test]
fn a_full_disk_is_named_and_nothing_changes() {
    let disk;
    let env = TestEnv::new();
    disk = SmallDisk::mount(&env.tandem_home.join("state"), env.tmp.path());
    let Some(disk) = disk.as_ref() else {
        crate::common::skipped("cannot mount a small tmpfs here (needs root), so a full disk cannot be made");
        return;
    };
    new_shell(&env, "s");
    let before = env.repo_state();
    disk.fill("filler");
    for args in [&["new", "t", "--bg", "--agent", "shell"][..], &["rm", "--force", "s"], &["archive", "s"]] {
        let err = env.fails(args);
        assert!(err.contains("disk is full"), "{args:?}: {err}");
    }
    let err = env.fails(&["send", "s", "echo typed-$((6*7))"]);
    assert!(err.contains("disk is full") && !err.contains("no running agent"), "{err}");
    assert_eq!(env.repo_state(), before, "git is untouched");
    std::fs::remove_file(env.tandem_home.join("state/filler")).expect("free the disk");
    let s = env.session("s");
    assert_eq!(s["state"], "running", "the agent was not stopped: {s}");
    assert!(!env.ok(&["logs", "s"]).contains("typed-42"), "the refused prompt was not typed");
}
