//! `tandem attach` leaves the user's terminal as it found it (issue 19):
//! a shell in a real terminal (a tmux pane of the test's own) prints
//! marker lines, attaches to an agent that draws over the whole screen,
//! and gets its lines back, without the agent's screen, whichever way the
//! attach ends: the detach key, `kill -TERM` / `kill -INT` of the
//! `tandem attach` process, or the agent's exit; the same for `tandem new`,
//! which attaches. And a session the supervisor stopped for idleness comes
//! back by itself on `attach`, `send` and `approve`, resuming its
//! conversation (the real Claude Code against the API stand-in).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::anthropic::{MessagesStub, Step, use_claude};
use crate::common::{TestEnv, agent_and_env, wait_within};

/// A tmux server of the test's own, with one 80×24 pane running bash
/// in the repository with the test's environment and `tandem` on `PATH`.
struct Pane {
    socket: String,
}

impl Pane {
    fn start(env: &TestEnv) -> Pane {
        let socket = env.tmp.path().join("tmux-attach.sock").to_string_lossy().into_owned();
        let pane = Pane { socket };
        let bin_dir = TestEnv::bin().parent().expect("the binary's folder").to_string_lossy().into_owned();
        let path = std::env::var("TEST_PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut command = vec![
            "env".to_owned(),
            "-i".to_owned(),
            format!("PATH={bin_dir}:{path}"),
            format!("HOME={}", env.home.display()),
            format!("TANDEM_HOME={}", env.tandem_home.display()),
            "SHELL=/bin/bash".to_owned(),
            "TERM=tmux-256color".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            "GIT_CONFIG_NOSYSTEM=1".to_owned(),
            "PS1=pane$ ".to_owned(),
        ];
        command.extend(env.env.iter().map(|(k, v)| format!("{k}={v}")));
        command.extend(["bash", "--norc", "--noprofile"].map(str::to_owned));
        let line = command.iter().map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect::<Vec<_>>().join(" ");
        pane.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-c",
            &env.repo.to_string_lossy(),
            &line,
        ]);
        pane.wait_for("the shell's prompt", |s| s.contains("pane$"));
        pane
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen (no scrollback).
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p"])
    }

    /// Types `line` and Enter.
    fn line(&self, line: &str) {
        self.run(&["send-keys", "-l", line]);
        self.run(&["send-keys", "Enter"]);
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", keys]);
    }

    /// Waits up to 30 s for the screen to satisfy `f`; the panic shows
    /// the last screen.
    fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if f(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clears the screen and prints three marker lines named `tag`.
    fn markers(&self, tag: &str) {
        self.line("clear");
        self.line(&format!("printf 'mark-{tag}-%s\\n' 1 2 3"));
        self.wait_for("the marker lines", |s| has_markers(s, tag) && s.trim_end().ends_with("pane$"));
    }

    /// The pid of the pane's foreground child (`tandem attach`).
    fn child_pid(&self) -> i32 {
        let shell: i32 = self.run(&["display-message", "-p", "#{pane_pid}"]).trim().parse().expect("pane pid");
        let child = || {
            std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
                let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // `pid (comm) state ppid …`; comm may hold spaces.
                let ppid: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
                (ppid == shell).then_some(pid)
            })
        };
        crate::common::wait_for("the attach process", child)
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

fn has_markers(screen: &str, tag: &str) -> bool {
    (1..=3).all(|n| screen.lines().any(|l| l.trim_end() == format!("mark-{tag}-{n}")))
}

/// An agent that draws on every row of the screen (in the main screen,
/// as Claude Code does), then exits when it reads a line.
fn drawing_agent(env: &TestEnv) -> String {
    let script = env.tmp.path().join("draw.sh");
    std::fs::write(
        &script,
        "printf '\\033[H\\033[2J'\ni=1\nwhile [ $i -le 24 ]; do printf '\\033[%d;1HAGENT-ROW-%d' $i $i; i=$((i+1)); done\nread x\n",
    )
    .expect("write the agent");
    format!("sh {}", script.display())
}

/// An agent that draws on its own alternate screen, leaves it when it
/// reads a line (printing `MAIN-AGAIN` on its main screen), then waits.
fn alternate_screen_agent(env: &TestEnv) -> String {
    let script = env.tmp.path().join("alt.sh");
    std::fs::write(
        &script,
        "printf '\\033[?1049h\\033[H\\033[2J'\ni=1\nwhile [ $i -le 24 ]; do printf '\\033[%d;1HALT-ROW-%d' $i $i; i=$((i+1)); done\nread x\nprintf '\\033[?1049lMAIN-AGAIN\\r\\n'\nread y\n",
    )
    .expect("write the agent");
    format!("sh {}", script.display())
}

/// Attaches in the pane and waits for the agent's screen.
fn attach(pane: &Pane, name: &str) {
    pane.line(&format!("tandem attach {name}"));
    pane.wait_for("the agent's screen", |s| s.contains("AGENT-ROW-5") && !s.contains("mark-"));
}

/// The terminal is as it was: the markers are back, the agent's screen
/// is gone, and the shell prompts again.
fn assert_restored(pane: &Pane, tag: &str, what: &str) -> String {
    let screen = pane.wait_for(&format!("the shell's prompt after {what}"), |s| {
        s.trim_end().ends_with("pane$") && s.lines().any(|l| l.starts_with("ended-"))
    });
    assert!(has_markers(&screen, tag), "the marker lines are gone after {what}:\n{screen}");
    assert!(!screen.contains("AGENT-ROW"), "the agent's screen stays after {what}:\n{screen}");
    screen
}

/// Issue 19: detaching (and every other end of an attach) gives the
/// user's terminal back as it was, as tmux does.
#[test]
fn issue_19_attach_leaves_the_terminal_as_it_found_it() {
    let env = TestEnv::new();
    let agent = drawing_agent(&env);
    env.ok(&["new", "drawn", "--bg", "--agent", &agent]);
    env.wait_state("drawn", "running");
    let pane = Pane::start(&env);

    // The detach key.
    pane.markers("detach");
    attach(&pane, "drawn; echo ended-$?");
    pane.keys("C-\\");
    let screen = assert_restored(&pane, "detach", "the detach key");
    assert!(screen.contains("detached from drawn"), "{screen}");

    // The attach process killed: TERM, then INT.
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let tag = signal.to_ascii_lowercase();
        pane.markers(&tag);
        attach(&pane, "drawn; echo ended-$?");
        let pid = pane.child_pid();
        let killed = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("kill");
        assert!(killed.success());
        let screen = assert_restored(&pane, &tag, &format!("kill -{signal}"));
        assert!(screen.contains(&format!("ended-{code}")), "{screen}");
        assert_eq!(env.session("drawn")["state"], "running", "the agent keeps running");
    }

    // `tandem new` attaches the same way.
    pane.markers("new");
    pane.line(&format!("tandem new fresh --agent '{agent}'; echo ended-$?"));
    pane.wait_for("the new agent's screen", |s| s.contains("AGENT-ROW-5") && !s.contains("mark-"));
    pane.keys("C-\\");
    assert_restored(&pane, "new", "detaching from `tandem new`");

    // An agent leaving its own alternate screen while attached: the
    // terminal stays on tandem's, showing the agent's main screen.
    env.ok(&["new", "alt", "--bg", "--agent", &alternate_screen_agent(&env)]);
    env.wait_state("alt", "running");
    pane.markers("alt");
    pane.line("tandem attach alt; echo ended-$?");
    pane.wait_for("the agent's alternate screen", |s| s.contains("ALT-ROW-5") && !s.contains("mark-"));
    pane.keys("Enter");
    let screen = pane.wait_for("the agent's main screen", |s| s.contains("MAIN-AGAIN"));
    assert!(!screen.contains("mark-") && !screen.contains("ALT-ROW"), "{screen}");
    pane.keys("C-\\");
    assert_restored(&pane, "alt", "detaching from an agent back on its main screen");

    // The agent exits (it reads a line) while attached.
    pane.markers("exit");
    attach(&pane, "drawn; echo ended-$?");
    pane.keys("Enter");
    let screen = assert_restored(&pane, "exit", "the agent's exit");
    assert!(screen.contains("the agent of session drawn exited"), "{screen}");
    env.wait_state("drawn", "exited");
}

/// Issue 19: an agent the supervisor stopped after its idle timeout
/// starts again, resuming its conversation, on the next `send`, `attach`
/// or `approve`, saying so on stderr; one the user stopped stays stopped,
/// and attaching to it names `tandem respawn`.
#[test]
fn issue_19_an_idle_stopped_agent_comes_back_by_itself() {
    let Some((claude, mut env)) = agent_and_env("claude") else { return };
    let stub = MessagesStub::start(vec![Step::text("First answer."), Step::text("Back after the idle stop.")]);
    use_claude(&mut env, &claude, &stub, &["Write"]);

    env.ok(&["new", "napper", "--bg", "-p", "Say something"]);
    wait_within("the first answer", Duration::from_secs(60), || {
        env.ok(&["history", "napper"]).contains("First answer.").then_some(())
    });
    let conversation = env.wait_state("napper", "idle")["agent_session"].as_str().expect("conversation").to_owned();

    // Idle past a short timeout: stopped by the supervisor. (The timeout
    // is off again while the agent is woken, so a slow start on a loaded
    // machine is not taken for idleness.)
    let nap = || {
        env.user_config("[supervisor]\nidle_timeout_secs = 1\n");
        env.wait_state("napper", "stopped");
        env.user_config("[supervisor]\nidle_timeout_secs = 0\n");
    };
    nap();
    let note = "napper was stopped after ";
    let how = " idle; starting it again, resuming its conversation";

    // `send` starts it again, resumed, and the prompt reaches it.
    let out = env.tandem(&["send", "napper", "Are you back?"]);
    let err = crate::common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("note: {note}")) && err.contains(how), "{err}");
    let history = || env.ok(&["history", "napper"]);
    let answered = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        history().contains("Back after the idle stop.")
    });
    assert!(answered, "no answer after the idle stop; the history:\n{}", history());
    let last = stub.main_requests().pop().expect("a request after the idle stop")["messages"].to_string();
    assert!(last.contains("Say something"), "the conversation was resumed: {last}");
    let s = env.wait_state("napper", "idle");
    assert_eq!(s["agent_session"].as_str(), Some(conversation.as_str()), "the same conversation");

    // Stopped again; `attach` starts it again and attaches.
    nap();
    let mut pty = env.pty(&["attach", "napper"], 24, 80);
    let raw = pty.wait_for_raw("attaching to napper");
    assert!(raw.contains(note) && raw.contains(how), "{raw}");
    pty.wait_for_raw("tandem: attached to napper");
    pty.send(b"\x1c");
    assert_eq!(pty.wait_exit(), 0);
    assert_eq!(env.session("napper")["agent_session"].as_str(), Some(conversation.as_str()));

    // Stopped again; `approve` starts it again (nothing is asked, so it
    // then says so).
    nap();
    let out = env.tandem(&["approve", "napper"]);
    let err = crate::common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(note) && err.contains(how), "{err}");
    assert!(err.contains("is not waiting for a permission decision"), "{err}");
    env.wait_state("napper", "idle");

    // Stopped by the user, running or already stopped for idleness: it
    // stays stopped, and the errors name respawn.
    let stays_stopped = || {
        let err = env.fails(&["attach", "napper"]);
        assert!(err.contains("session napper is not running (stopped)"), "{err}");
        assert!(err.contains("`tandem respawn napper`") && !err.contains("logs"), "{err}");
        let err = env.fails(&["send", "napper", "Hello?"]);
        assert!(err.contains("`tandem respawn napper`") && !err.contains("note:"), "{err}");
        assert_eq!(env.session("napper")["state"], "stopped");
    };
    env.ok(&["stop", "napper"]);
    stays_stopped();
    env.ok(&["respawn", "napper"]);
    env.wait_state("napper", "idle");
    nap();
    assert!(env.ok(&["stop", "napper"]).contains("session napper is not running (stopped)"));
    stays_stopped();
}
