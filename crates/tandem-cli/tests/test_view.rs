//! The agent view end to end: `tandem` with no arguments in a real
//! terminal (a tmux pane, driven with `send-keys` and read with
//! `capture-pane`).

use std::process::Command;
use std::time::Duration;

use crate::common::{TestEnv, hook_event, wait_within};

/// A tmux server of the test's own, and the pane running the view.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `tandem` (no arguments) in a 120×32 pane in the repository,
    /// with the test's environment.
    fn start(env: &TestEnv) -> Tmux {
        Tmux::start_with(env, &[])
    }

    /// Starts `tandem ARGS` the same way.
    fn start_with(env: &TestEnv, args: &[&str]) -> Tmux {
        Tmux::start_binary(env, &TestEnv::bin(), args)
    }

    /// Starts `BIN ARGS` (a tandem binary) the same way.
    fn start_binary(env: &TestEnv, bin: &std::path::Path, args: &[&str]) -> Tmux {
        Tmux::start_in(env, bin, &env.repo, args)
    }

    /// Starts `BIN ARGS` the same way in the folder `dir`.
    fn start_in(env: &TestEnv, bin: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> Tmux {
        let socket = env.tmp.path().join("tmux.sock").to_string_lossy().into_owned();
        let tmux = Tmux { socket };
        let mut vars = vec![
            format!("PATH={}", std::env::var("TEST_PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())),
            format!("HOME={}", env.home.display()),
            format!("TANDEM_HOME={}", env.tandem_home.display()),
            "SHELL=/bin/bash".to_owned(),
            "TERM=tmux-256color".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            "GIT_CONFIG_NOSYSTEM=1".to_owned(),
        ];
        vars.extend(env.env.iter().map(|(k, v)| format!("{k}={v}")));
        let mut command = vec!["env".to_owned(), "-i".to_owned()];
        command.extend(vars);
        command.push(bin.to_string_lossy().into_owned());
        command.extend(args.iter().map(|a| (*a).to_owned()));
        // The pane's own `TMUX` (tmux sets it), expanded by the pane's shell.
        let line = command.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ").replacen(
            "'env' '-i' ",
            "'env' '-i' \"TMUX=$TMUX\" ",
            1,
        );
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "32",
            "-c",
            &dir.to_string_lossy(),
            &line,
        ]);
        tmux.run(&["set-option", "-g", "remain-on-exit", "on"]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p"])
    }

    /// The screen with its colours and attributes (escape sequences).
    fn screen_escaped(&self) -> String {
        self.run(&["capture-pane", "-p", "-e"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend(keys);
        self.run(&args);
    }

    fn text(&self, text: &str) {
        self.run(&["send-keys", "-l", text]);
    }

    /// Waits up to 30 s for the pane's screen to satisfy `f`; the panic
    /// shows the last screen.
    fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if f(&screen) {
                return screen;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the pane's command has exited.
    fn dead(&self) -> bool {
        self.run(&["display-message", "-p", "#{pane_dead}"]).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[test]
fn the_view_creates_attaches_detaches_and_removes_a_session() {
    let mut env = TestEnv::new();
    // Output quiet for a second: a shell is `idle` (inferred).
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "1".into()));
    let view = Tmux::start(&env);
    view.wait_for("the empty view", |s| s.contains("No sessions yet. Press c to start one."));

    // A new session from the form: name, agent, (base), prompt.
    view.keys(&["c"]);
    view.wait_for("the form", |s| s.contains("new session"));
    view.text("viewjob");
    view.keys(&["Tab"]);
    view.text("shell");
    view.keys(&["Tab", "Tab"]);
    view.text("echo hi-from-view");
    view.keys(&["Enter"]);
    // Running, or already idle (quiet for a second) on a loaded machine.
    view.wait_for("the new session, running", |s| {
        (s.contains("RUNNING (1)") && s.contains("● viewjob")) || (s.contains("IDLE (1)") && s.contains("○ viewjob"))
    });
    // The footer says what happened, in words, the path apart.
    view.wait_for("new's answer", |s| s.contains("started session viewjob (shell) in /"));
    assert_eq!(env.session("viewjob")["agent"], "shell");
    let worktree = env.path_of("viewjob");
    view.wait_for("its screen in the preview", |s| s.contains("hi-from-view"));

    // Attach full screen; the detach key comes back to the view.
    view.keys(&["Enter"]);
    view.wait_for("the attached shell", |s| s.contains("tsh$") && !s.contains("RUNNING"));
    view.text("echo attached-here");
    view.keys(&["Enter"]);
    view.wait_for("the command's output", |s| s.contains("attached-here") && !s.contains("IDLE"));
    view.keys(&["C-\\"]);
    let screen = view.wait_for("the view again, the session idle", |s| s.contains("IDLE (1)") && s.contains("viewjob"));
    assert!(screen.contains("detached from viewjob"), "{screen}");

    // Remove: the confirmation says nothing is unsaved; y removes.
    view.keys(&["d"]);
    view.wait_for("the confirmation", |s| s.contains("Remove viewjob? Nothing unsaved"));
    view.keys(&["y"]);
    view.wait_for("the empty view again", |s| s.contains("No sessions yet."));
    assert!(env.sessions().is_empty());
    assert!(!worktree.exists(), "the worktree went with the session");
    // git's bookkeeping is finished after the answer.
    wait_within("git to forget the worktree", Duration::from_secs(20), || {
        let worktrees = env.git(&["worktree", "list", "--porcelain"]);
        (!worktrees.contains(&*worktree.to_string_lossy())).then_some(())
    });

    // q quits; the terminal is left as it was (no alternate screen).
    view.keys(&["q"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !view.dead() {
        let screen = view.screen();
        let processes = Command::new("ps").args(["-eo", "pid,ppid,stat,args"]).output().expect("ps");
        assert!(
            std::time::Instant::now() < deadline,
            "the view did not exit after q; the screen:\n{screen}\nprocesses:\n{}",
            String::from_utf8_lossy(&processes.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let screen = view.screen();
    assert!(!screen.contains("tandem ·"), "{screen}");
}

/// Inside tmux, `tandem new --tmux` attaches in a new tmux window named
/// after the session.
#[test]
fn new_with_tmux_opens_a_window() {
    let env = TestEnv::new();
    let tmux = Tmux::start_with(&env, &["new", "in-window", "--tmux", "--agent", "shell", "-p", "echo from-window"]);
    let windows = wait_within("the session's window", Duration::from_secs(30), || {
        let windows = tmux.run(&["list-windows", "-F", "#{window_name}"]);
        windows.lines().any(|w| w == "in-window").then_some(windows)
    });
    assert!(windows.lines().count() >= 2, "{windows}");
    let screen = wait_within("the attached agent", Duration::from_secs(30), || {
        let screen = tmux.run(&["capture-pane", "-p", "-t", "in-window"]);
        screen.contains("from-window").then_some(screen)
    });
    assert!(screen.contains("tsh$"), "{screen}");
    assert_eq!(env.session("in-window")["state"], "running");
    env.ok(&["rm", "--force", "in-window"]);
}

/// The supervisor pushes changes: a `Changes` request on the current
/// count, sent before a session's row changes (a store commit by another
/// process) or a file in its worktree does, answers with a higher count
/// as soon as the change is seen, well before its wait ends
/// (`CHANGES_WAIT`); with nothing changed it answers the same count.
#[test]
fn the_supervisor_pushes_changes() {
    use tandem_core::protocol::{self, CHANGES_WAIT, PROTOCOL_VERSION, Request, Response};
    let env = TestEnv::new();
    env.ok(&["new", "watched", "--bg", "--agent", "shell"]);
    let worktree = env.path_of("watched");
    let mut stream =
        std::os::unix::net::UnixStream::connect(env.tandem_home.join("run/supervisor.sock")).expect("connect");
    protocol::send(&mut stream, &Request::Hello { version: PROTOCOL_VERSION }).expect("hello");
    assert!(matches!(protocol::recv::<Response>(&mut stream), Ok(Some(Response::Hello { .. }))));
    // Sends the request, then makes the change (the request is on its way
    // first), then reads the answer: the count and how long it took.
    let mut across = |generation, change: &dyn Fn()| {
        let sent = std::time::Instant::now();
        protocol::send(&mut stream, &Request::Changes { generation }).expect("changes");
        change();
        match protocol::recv::<Response>(&mut stream).expect("answer") {
            Some(Response::Changed { generation }) => (generation, sent.elapsed()),
            other => panic!("unexpected answer {other:?}"),
        }
    };
    // Let the start-up settle: the count stops moving.
    let (mut now, _) = across(0, &|| ());
    loop {
        let (next, _) = across(now, &|| ());
        if next == now {
            break;
        }
        now = next;
    }
    assert_eq!(across(now, &|| ()).0, now, "nothing changed, the same count after the wait");

    let set = || {
        assert!(
            env.command_in(&env.repo, &["set", "watched", "--priority", "high"])
                .output()
                .expect("set")
                .status
                .success()
        )
    };
    let (after_set, took) = across(now, &set);
    assert!(after_set > now, "a row change is pushed");
    assert!(took < CHANGES_WAIT, "pushed, not found at the end of the wait: {took:?}");

    let mut now = after_set;
    loop {
        let (next, _) = across(now, &|| ());
        if next == now {
            break;
        }
        now = next;
    }
    let touch = || std::fs::write(worktree.join("new-file.txt"), "x\n").expect("write");
    let (after_file, took) = across(now, &touch);
    assert!(after_file > now, "a file change in the worktree is pushed");
    assert!(took < CHANGES_WAIT, "pushed, not found at the end of the wait: {took:?}");
    env.ok(&["rm", "--force", "watched"]);
}

/// Issue 18: the view carries out actions through core's typed client,
/// not by running the `tandem` binary again. The view here runs from a
/// copy of the binary that is deleted once it has started: an action that
/// ran `tandem` would fail to start it.
#[test]
fn the_views_actions_go_through_the_typed_client_not_the_binary() {
    let env = TestEnv::new();
    env.ok(&["new", "first", "--bg", "--agent", "shell"]);
    let bin = env.tmp.path().join("copy").join("tandem");
    std::fs::create_dir_all(bin.parent().expect("a folder")).expect("mkdir");
    std::fs::copy(TestEnv::bin(), &bin).expect("copy tandem");
    let view = Tmux::start_binary(&env, &bin, &[]);
    view.wait_for("the session listed", |s| s.contains("first") && s.contains("shell"));
    std::fs::remove_file(&bin).expect("delete the copy");

    view.keys(&["x"]);
    view.wait_for("the stop's answer", |s| s.contains("stopped session first"));
    assert_eq!(env.session("first")["state"], "stopped");

    view.keys(&["c"]);
    view.wait_for("the form", |s| s.contains("new session"));
    view.text("second");
    view.keys(&["Tab"]);
    view.text("shell");
    view.keys(&["Tab", "Tab"]);
    view.text("echo from-the-view");
    view.keys(&["Enter"]);
    view.wait_for("the new session", |s| s.contains("started session second (shell)"));
    wait_within("second runs", Duration::from_secs(20), || {
        env.ok(&["logs", "second"]).contains("from-the-view").then_some(())
    });
    view.keys(&["q"]);
}

/// The screen line that holds `text`.
fn line_with<'a>(screen: &'a str, text: &str) -> &'a str {
    screen.lines().find(|l| l.contains(text)).unwrap_or_else(|| panic!("no line with {text}:\n{screen}"))
}

/// Issue 19: the selected row is marked with `>` (readable without
/// colour, under `NO_COLOR`), and the mark follows the selection.
/// Two shell sessions, `alpha` and `beta`, in a view without colour,
/// once it shows both with `alpha` marked; and that screen.
fn alpha_and_beta_in_a_view() -> (TestEnv, Tmux, String) {
    let mut env = TestEnv::new();
    env.env.push(("NO_COLOR".into(), "1".into()));
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    env.ok(&["new", "alpha", "--bg", "--agent", "shell"]);
    env.ok(&["new", "beta", "--bg", "--agent", "shell"]);
    let view = Tmux::start(&env);
    let screen = view.wait_for("both sessions, alpha marked", |s| s.contains("beta") && marked(s, "alpha"));
    (env, view, screen)
}

/// Whether `name`'s row is the selected one (marked `> `).
fn marked(screen: &str, name: &str) -> bool {
    screen.lines().any(|l| l.starts_with("> ") && l.contains(name))
}

#[test]
fn the_selected_row_is_marked_without_colour() {
    let (_env, view, screen) = alpha_and_beta_in_a_view();
    assert!(line_with(&screen, "beta").starts_with("  "), "{screen}");
    view.keys(&["j"]);
    let screen = view.wait_for("the mark on beta", |s| s.contains("alpha") && marked(s, "beta"));
    assert!(line_with(&screen, "alpha").starts_with("  "), "{screen}");
    // Reverse video, never grey on grey (the old selection's 90/100 SGR).
    let escaped = view.screen_escaped();
    let selected = line_with(&escaped, "beta");
    assert!(selected.contains("\x1b[7m") || selected.contains(";7m"), "{selected:?}");
    assert!(!escaped.contains("\x1b[100m") && !escaped.contains("48;5;8m"), "{escaped:?}");
    view.keys(&["q"]);
}

/// Issue 19: the preview is the agent's screen at the agent's width
/// (80 columns here, wider than the side-by-side preview of a 120-column
/// view), not its left part.
#[test]
fn the_preview_shows_the_agents_whole_width() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    env.ok(&["new", "wide", "--bg", "--agent", "shell"]);
    // The mark ends at column 70; the command line shows `$M`, not it.
    env.ok(&["send", "wide", "M=EDGE; printf '%70s\\n' \"RIGHT-$M-MARK\""]);
    wait_within("the agent's output", Duration::from_secs(20), || {
        env.ok(&["logs", "wide"]).contains("RIGHT-EDGE-MARK").then_some(())
    });
    let view = Tmux::start(&env);
    view.wait_for("the whole row in the preview", |s| s.contains("RIGHT-EDGE-MARK"));
    view.keys(&["q"]);
}

/// Issue 19: a session that needs input shows its question in the
/// preview, with paths relative to its worktree, as its row and history
/// do.
#[test]
fn the_question_shows_with_paths_relative_to_the_worktree() {
    let env = TestEnv::new();
    env.ok(&["new", "asker", "--bg", "--agent", "shell"]);
    let worktree = env.path_of("asker");
    let id = env.session("asker")["id"].as_str().expect("id").to_owned();
    let asked = serde_json::json!({
        "hook_event_name": "PermissionRequest",
        "tool_name": "Bash",
        "tool_input": { "command": format!("cat {}/notes/todo.txt", worktree.display()) },
    });
    hook_event(&env, &id, &asked);
    let view = Tmux::start(&env);
    // The question above the preview, and the history line, relative.
    let screen = view.wait_for("the question in the preview and the history", |s| {
        s.contains("asks: Bash: cat notes/todo.txt  (y approve · n deny)")
            && s.contains("asks permission for Bash: cat notes/todo.txt")
    });
    assert!(!screen.contains(&*worktree.to_string_lossy()), "no absolute worktree path:\n{screen}");
    // n answers it (a shell cannot be answered from outside: the footer
    // says what was tried and why not).
    view.keys(&["n"]);
    view.wait_for("deny's answer", |s| s.contains("could not deny asker: session `asker` runs `shell`"));
    view.keys(&["q"]);
}

/// Issue 19: the footer says what an action did, in words; `y` on a
/// session that asks nothing says so; a message clears after a few
/// seconds.
#[test]
fn footer_messages_say_what_happened_and_clear() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    env.ok(&["new", "work", "--bg", "--agent", "shell"]);
    let view = Tmux::start(&env);
    view.wait_for("the session", |s| s.contains("work"));
    view.keys(&["y"]);
    view.wait_for("y's answer", |s| s.contains("work asks nothing: there is nothing to approve"));
    view.keys(&["n"]);
    let screen = view.wait_for("n's answer", |s| s.contains("work asks nothing: there is nothing to deny"));
    assert!(!screen.contains("new session (Tab"), "n is not the new-session form:\n{screen}");
    view.keys(&["s"]);
    view.text("echo said-from-the-view");
    view.keys(&["Enter"]);
    view.wait_for("send's answer", |s| s.contains("sent to work: echo said-from-the-view"));
    let started = std::time::Instant::now();
    view.wait_for("the message to clear", |s| !s.contains("sent to work"));
    assert!(started.elapsed() >= Duration::from_secs(3), "it stayed long enough to read");
    view.keys(&["q"]);
}

/// Issue 19: an archived row offers restore, and `a` restores it.
#[test]
fn an_archived_row_offers_restore() {
    let env = TestEnv::new();
    env.ok(&["new", "shelved", "--bg", "--agent", "shell"]);
    env.ok(&["archive", "shelved"]);
    let view = Tmux::start(&env);
    view.wait_for("the folded archive", |s| s.contains("1 archived (A to show)"));
    view.keys(&["A"]);
    view.wait_for("the archived row, offering restore", |s| {
        s.contains("ARCHIVED (1)") && s.lines().any(|l| l.contains("shelved") && l.contains("a: restore"))
    });
    view.keys(&["a"]);
    view.wait_for("restore's answer", |s| s.contains("restored session shelved in"));
    assert_ne!(env.session("shelved")["state"], "archived");
    assert!(env.path_of("shelved").is_dir());
    view.keys(&["q"]);
}

/// Issue 19: a group's header offers stopping and removing every session
/// in it, each after one question that says what would be lost, in the
/// words `tandem rm` refuses with.
#[test]
fn a_group_is_stopped_and_removed_after_one_question() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    env.ok(&["new", "one", "--bg", "--agent", "shell"]);
    env.ok(&["new", "two", "--bg", "--agent", "shell"]);
    std::fs::write(env.path_of("two").join("draft.txt"), "x\n").expect("write");
    let view = Tmux::start(&env);
    view.wait_for("both running, the header's offer", |s| s.contains("RUNNING (2)  X: stop all · D: remove all"));
    view.keys(&["X"]);
    view.wait_for("the question", |s| s.contains("Stop 2 sessions in RUNNING (one, two)?"));
    view.keys(&["y"]);
    view.wait_for("stop's answer", |s| s.contains("stopped 2 of 2 sessions"));
    assert_eq!(env.session("one")["state"], "stopped");
    assert_eq!(env.session("two")["state"], "stopped");
    view.wait_for("both done", |s| s.contains("DONE (2)"));
    view.keys(&["D"]);
    let screen = view.wait_for("the question", |s| s.contains("Remove 2 sessions in DONE"));
    let question: String = screen.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(question.contains("session `two` has 1 untracked file"), "{screen}");
    view.keys(&["y"]);
    view.wait_for("remove's answer", |s| s.contains("removed 2 sessions"));
    assert!(env.sessions().is_empty());
    view.keys(&["q"]);
}

/// Issue 19: `?` lists every key, diff, review, merge and restore among
/// them.
#[test]
fn help_lists_diff_review_merge_and_restore() {
    let env = TestEnv::new();
    let view = Tmux::start(&env);
    view.wait_for("the empty view", |s| s.contains("No sessions yet"));
    view.keys(&["?"]);
    let screen = view.wait_for("the help", |s| s.contains("keys (any key closes)"));
    for key in ["v  diff", "R  review", "m  merge", "a  archive/restore", "X  stop group", "D  remove group", "c  new"]
    {
        assert!(screen.contains(key), "{key} is not in the help:\n{screen}");
    }
    view.keys(&["q"]);
}

/// Issue 19: bare `tandem` outside any repository opens every
/// repository's sessions (a REPO column), instead of failing.
#[test]
fn bare_tandem_outside_a_repository_shows_every_repository() {
    let env = TestEnv::new();
    env.ok(&["new", "somewhere", "--bg", "--agent", "shell"]);
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let view = Tmux::start_in(&env, &TestEnv::bin(), &outside, &[]);
    // Its repository, `repo`, in a REPO column.
    view.wait_for("every repository", |s| {
        s.contains("all repositories")
            && s.contains("REPO")
            && s.lines().any(|l| l.contains("somewhere") && l.contains("repo "))
    });
    view.keys(&["q"]);
}

/// Issue 19: diff (`v`) and merge (`m`, after a question) have keys; each
/// runs on the terminal, as `tandem diff` and `tandem merge` do, and
/// comes back to the view on Enter.
#[test]
fn diff_and_merge_keys_run_and_come_back() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    env.ok(&["new", "feature", "--bg", "--agent", "shell"]);
    let worktree = env.path_of("feature");
    std::fs::write(worktree.join("added.txt"), "hello-from-diff\n").expect("write");
    env.git_in(&worktree, &["add", "added.txt"]);
    env.git_in(&worktree, &["commit", "-q", "-m", "add a file"]);
    let view = Tmux::start(&env);
    view.wait_for("the session", |s| s.contains("feature"));

    view.keys(&["v"]);
    view.wait_for("the diff", |s| s.contains("+hello-from-diff") && s.contains("press Enter to return"));
    view.keys(&["Enter"]);
    view.wait_for("the view again", |s| s.contains("diff of feature: done") && s.contains("RUNNING (1)"));

    view.keys(&["m"]);
    view.wait_for("the question", |s| s.contains("Merge feature into main?"));
    view.keys(&["y"]);
    view.wait_for("merge's offer to archive", |s| s.contains("archive session feature now? [y/N]"));
    view.text("n");
    view.keys(&["Enter"]);
    view.wait_for("the end of the merge", |s| s.contains("press Enter to return"));
    assert_eq!(env.git(&["show", "main:added.txt"]).trim(), "hello-from-diff");
    view.keys(&["Enter"]);
    view.wait_for("the view again", |s| s.contains("merge of feature: done"));
    view.keys(&["q"]);
}

/// Issue 19: the view says each state in `tandem list`'s words (`idle
/// (inferred)`, not `idle?`), and an agent that exited with an error is
/// under ERROR as `failed (exit 3)`, not DONE.
#[test]
fn the_view_says_states_in_lists_words_and_shows_failures_as_errors() {
    let mut env = TestEnv::new();
    // Output quiet for a second: a shell is `idle` (inferred).
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "1".into()));
    env.ok(&["new", "quiet", "--bg", "--agent", "shell"]);
    env.ok(&["new", "crashed", "--bg", "--agent", "sh -c 'exit 3'"]);
    env.wait_state("crashed", "failed");
    let view = Tmux::start(&env);
    let screen = view.wait_for("both rows in list's words", |s| {
        s.contains("quiet  idle (inferred)") && s.contains("crashed  failed (exit 3)")
    });
    let lines: Vec<&str> = screen.lines().collect();
    let at = |text: &str| lines.iter().position(|l| l.contains(text)).unwrap_or_else(|| panic!("no {text}:\n{screen}"));
    assert_eq!(at("ERROR (1)") + 1, at("crashed  failed (exit 3)"), "{screen}");
    assert!(!screen.contains("DONE"), "{screen}");
    let list = env.ok(&["list"]);
    assert!(list.contains("idle (inferred)") && list.contains("failed (exit 3)"), "{list}");
}

/// Issue 19: the view renames a session (`e`), as `tandem rename` does;
/// the footer says what changed.
#[test]
fn the_view_renames_a_session() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    env.ok(&["new", "first-name", "--bg", "--agent", "shell"]);
    let view = Tmux::start(&env);
    view.wait_for("the session", |s| s.contains("first-name"));
    view.keys(&["e"]);
    view.wait_for("the prompt", |s| s.contains("rename first-name to:"));
    view.text("second-name");
    view.keys(&["Enter"]);
    view.wait_for("rename's answer", |s| s.contains("renamed session first-name to second-name"));
    view.wait_for("the row renamed", |s| s.contains("● second-name"));
    assert_eq!(env.session("second-name")["agent"], "shell");
    view.keys(&["?"]);
    view.wait_for("rename in the help", |s| s.contains("e  rename"));
    view.keys(&["q"]);
}

/// The view ends when its terminal goes away (its tmux pane killed), as
/// with SIGHUP: it used to spin for ever on a terminal that hung up,
/// reading 0 bytes, and every closed pane left one such process behind.
#[test]
fn the_view_ends_when_its_terminal_goes_away() {
    let env = TestEnv::new();
    let view = Tmux::start(&env);
    view.wait_for("the view", |s| s.contains("No sessions yet"));
    let pid: i32 = view.run(&["display-message", "-p", "#{pane_pid}"]).trim().parse().expect("pane pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the pane's process");
    assert!(exe.to_string_lossy().contains("tandem"), "the pane runs the view itself: {exe:?}");
    // Killing the tmux server hangs the pane's terminal up.
    drop(view);
    let ended = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')))
    };
    wait_within("the view to end", Duration::from_secs(10), || ended().then_some(()));
}

/// Registers remote `name` in `env` as `tandem remote add` would, with
/// last known `rows` (name, state), reaching `destination` (one that
/// does not answer, so the rows show as `unreachable`).
pub(crate) fn remote_with_rows(env: &TestEnv, name: &str, destination: &str, rows: &[(&str, &str)]) {
    use tandem_core::remote::{Known, Remote};
    use tandem_core::rows::SessionRow;
    let known = Known {
        remote: Remote { name: name.into(), destination: destination.into(), tandem: None, added_at: 1 },
        last_seen: Some(tandem_core::unix_now() - 600),
        last_error: None,
        facts: None,
        rows: rows
            .iter()
            .map(|(row, state)| SessionRow {
                id: format!("remote-{row}"),
                name: (*row).to_owned(),
                agent: "claude".into(),
                branch: (*row).to_owned(),
                state: (*state).to_owned(),
                since: tandem_core::unix_now() - 900,
                ..SessionRow::default()
            })
            .collect(),
    };
    let dir = env.tandem_home.join("state").join("remotes");
    std::fs::create_dir_all(&dir).expect("remotes dir");
    std::fs::write(dir.join(format!("{name}.json")), serde_json::to_vec(&known).expect("json")).expect("registry");
}

/// A TCP port that accepts and never says a word: an ssh to it waits for
/// the server's greeting until its timeout. Kept open by the listener.
pub(crate) fn silent_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// Issue 21: remote hosts' sessions show beside the local ones with a
/// HOST column; a host that does not answer never holds up the local
/// rows, and its last known rows then say `unreachable`; enter on one
/// attaches through its host (`tandem attach HOST:NAME`), other keys say
/// they act on local sessions only.
#[test]
fn remote_sessions_show_with_their_host_and_never_hold_up_local_rows() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    env.env.push(("TANDEM_REMOTE_TIMEOUT".into(), "10s".into()));
    env.ok(&["new", "near", "--bg", "--agent", "shell"]);
    let (_listener, port) = silent_port();
    remote_with_rows(&env, "gpu", &format!("ssh://127.0.0.1:{port}"), &[("far-away", "running")]);
    let view = Tmux::start(&env);
    let screen = view.wait_for("the local session", |s| s.contains("near"));
    assert!(!screen.contains("far-away"), "the local rows came first, not waiting on the silent host:\n{screen}");
    let screen = view.wait_for("the remote's last known row, unreachable", |s| {
        s.contains("far-away") && s.contains("unreachable (was running")
    });
    assert!(screen.contains("HOST"), "{screen}");
    assert!(line_with(&screen, "far-away").contains("gpu"), "{screen}");
    assert!(line_with(&screen, "near").contains("local"), "{screen}");
    view.keys(&["G"]);
    view.wait_for("the remote row selected", |s| s.lines().any(|l| l.contains("far-away") && l.contains("> gpu")));
    view.keys(&["x"]);
    view.wait_for("x's answer", |s| s.contains("gpu:far-away is on gpu: this key acts on local sessions only"));
    view.keys(&["Enter"]);
    view.wait_for("enter, tried on the host", |s| {
        s.contains("cannot attach to gpu:far-away: remote `gpu` did not answer")
    });
    view.keys(&["q"]);
}

/// Issue 21, with a real host (`common::sshd`): the view shows a remote
/// session live (its host answering) beside the local one, and enter on
/// it attaches on its host, as `tandem attach HOST:NAME` does; the
/// detach key comes back to the view.
#[test]
fn the_view_shows_a_live_remote_session_and_attaches_to_it_there() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    let Some(sshd) = crate::common::sshd::Sshd::start(&mut env) else { return };
    let host = sshd.install_tandem(&env);
    env.ok(&["new", "here", "--agent", "shell", "--bg"]);
    env.ok(&["new", "--on", host, "job", "--agent", "shell", "--bg"]);
    let view = Tmux::start(&env);
    view.wait_for("the remote session, running", |s| {
        s.lines().any(|l| l.contains(host) && l.contains("job") && l.contains("running"))
    });
    view.keys(&["G"]);
    view.wait_for("the remote row selected", |s| {
        s.lines().any(|l| l.contains("job") && l.contains(&format!("> {host}")))
    });
    view.keys(&["Enter"]);
    view.wait_for("the remote shell", |s| s.contains(crate::common::PROMPT) && !s.contains("RUNNING"));
    view.text("echo remote=$(id -un)");
    view.keys(&["Enter"]);
    view.wait_for("the command's output, run as the remote user", |s| s.contains(&format!("remote={}", sshd.user())));
    view.keys(&["C-\\"]);
    view.wait_for("the view again", |s| s.contains(&format!("detached from {host}:job")));
    view.keys(&["q"]);
}

/// Issue 22: `T` lists the selected session's turns with their
/// diffstat; a turn's diff runs on the terminal and comes back to the
/// list; `r` (after `y`) rewinds, saying the checkpoint made first and
/// that `u` undoes it; `u` (after `y`) undoes; a rewind refused while
/// the agent is mid-turn says why and changes nothing.
#[test]
fn turns_are_listed_diffed_rewound_and_undone_in_the_view() {
    let mut env = TestEnv::new();
    env.env.push(("TANDEM_SUPERVISOR_QUIET_SECS".into(), "3600".into()));
    let id = crate::test_web_turns::two_turns(&env, "feature");
    let notes = env.path_of("feature").join("notes.txt");
    let read = || std::fs::read_to_string(&notes).expect("notes");
    let view = Tmux::start(&env);
    view.wait_for("the session", |s| s.contains("feature"));

    view.keys(&["T"]);
    view.wait_for("the turns", |s| {
        s.contains("turns of feature") && s.contains("edit the notes") && s.contains("1 file, +1 -1")
    });
    view.keys(&["Enter"]);
    view.wait_for("the turn's diff", |s| s.contains("+two") && s.contains("press Enter to return"));
    view.keys(&["Enter"]);
    view.wait_for("the list again", |s| {
        s.contains("turns of feature") && s.contains("diff of checkpoint 2 of feature: done")
    });

    view.keys(&["j", "r"]);
    view.wait_for("the question", |s| s.contains("Rewind feature to checkpoint 1 (write the notes)?"));
    view.keys(&["y"]);
    view.wait_for("the rewind said", |s| {
        s.contains("rewound feature to checkpoint 1") && s.contains("what was there is checkpoint 3: u undoes it")
    });
    assert_eq!(read(), "one\n");
    view.wait_for("the checkpoint made first, listed", |s| s.contains("before rewind to 1"));

    view.keys(&["u"]);
    view.wait_for("the undo question", |s| s.contains("Undo feature's last rewind?"));
    view.keys(&["y"]);
    view.wait_for("the undo said", |s| s.contains("undid feature's last rewind: back as at checkpoint 3"));
    assert_eq!(read(), "two\n");

    // A turn starts and is still running: the rewind is refused.
    hook_event(&env, &id, &serde_json::json!({ "hook_event_name": "UserPromptSubmit", "prompt": "more" }));
    std::fs::write(&notes, "three\n").expect("write");
    let state = env.repo_state();
    let before = env.ok(&["checkpoints", "feature", "--json"]);
    view.keys(&["G", "r"]);
    view.wait_for("the question", |s| s.contains("Rewind feature to checkpoint 1"));
    view.keys(&["y"]);
    view.wait_for("the refusal", |s| {
        s.contains("could not rewind feature to checkpoint 1: session `feature`'s agent is in the middle of a turn")
    });
    assert_eq!(read(), "three\n");
    assert_eq!(env.repo_state(), state, "no ref or branch moved");
    assert_eq!(env.ok(&["checkpoints", "feature", "--json"]), before, "and no checkpoint was made");

    view.keys(&["Escape"]);
    view.wait_for("the sessions again", |s| !s.contains("turns of feature") && s.contains("RUNNING"));
    view.keys(&["q"]);
}

/// Issue 23: the rows are read on a thread of their own, so a key is
/// answered at once even while the supervisor takes its time (here it is
/// stopped with `SIGSTOP` past the view's 2 s refresh, which the view
/// used to wait on before it read the next key).
#[test]
fn a_key_is_answered_while_the_supervisor_is_slow_to_list() {
    let (env, view, _) = alpha_and_beta_in_a_view();
    let supervisor = nix::unistd::Pid::from_raw(env.supervisor_pid().expect("a supervisor runs"));
    nix::sys::signal::kill(supervisor, nix::sys::signal::Signal::SIGSTOP).expect("stop the supervisor");
    // Resumed however the test ends.
    struct Resume(nix::unistd::Pid);
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
        }
    }
    let _resume = Resume(supervisor);
    // Past the refresh: the view has asked for the rows and waits.
    std::thread::sleep(Duration::from_millis(2_500));
    view.keys(&["j"]);
    let started = std::time::Instant::now();
    loop {
        let screen = view.screen();
        if marked(&screen, "beta") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the view did not answer a key while the supervisor was stopped:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(_resume);
    view.keys(&["q"]);
}
