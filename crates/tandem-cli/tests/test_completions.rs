//! Shell completion, tested by completing in the real shells: bash, zsh
//! and fish run in a tmux pane of the test's own, the script from
//! `tandem completions SHELL` is loaded as the README says, a partial
//! command line is typed with Tab, and the line the shell shows is read
//! with `capture-pane`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{TestEnv, skipped};

/// A tmux server of the test's own running one shell in a wide pane.
struct Shell {
    socket: String,
    prompt: &'static str,
}

impl Shell {
    /// Starts `shell` (`bash`, `zsh` or `fish`) without the user's rc
    /// files, in `env`'s repository, with `bin` (holding `tandem`) on PATH,
    /// and loads tandem's completion script as the README says.
    fn start(env: &TestEnv, bin: &Path, shell: &str) -> Shell {
        let socket = env.tmp.path().join(format!("{shell}.sock")).to_string_lossy().into_owned();
        let (prompt, command, setup) = match shell {
            "bash" => ("B> ", "bash --norc --noprofile", "PS1='B> '; source <(tandem completions bash)"),
            "zsh" => {
                ("Z> ", "zsh -f", "PROMPT='Z> '; autoload -U compinit && compinit -u; source <(tandem completions zsh)")
            }
            _ => (
                "F> ",
                "fish --no-config",
                "function fish_prompt; echo -n 'F> '; end; set -g fish_autosuggestion_enabled 0; \
                 tandem completions fish | source",
            ),
        };
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
        let line = format!(
            "env -i PATH='{path}' HOME='{}' TANDEM_HOME='{}' TERM=tmux-256color LANG=C.UTF-8 GIT_CONFIG_NOSYSTEM=1 {command}",
            env.home.display(),
            env.tandem_home.display()
        );
        let tmux = Shell { socket, prompt };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "20",
            "-c",
            &env.repo.to_string_lossy(),
            &line,
        ]);
        tmux.run(&["set-option", "-g", "remain-on-exit", "on"]);
        tmux.run(&["send-keys", "-l", setup]);
        tmux.run(&["send-keys", "Enter"]);
        // The setup line sets the prompt first: a bare prompt means it
        // has finished (a ctrl-c before would cut the script's loading).
        tmux.wait_line("the setup line to finish", |l| l == prompt.trim_end());
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane's last line that is not blank.
    fn last_line(&self) -> String {
        let screen = self.run(&["capture-pane", "-p"]);
        screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim_end().to_owned()
    }

    fn wait_line(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = self.last_line();
            if f(&line) {
                return line;
            }
            if std::time::Instant::now() > deadline {
                let screen = self.run(&["capture-pane", "-p"]);
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clears the screen and waits for a bare prompt.
    fn fresh_line(&self) {
        self.run(&["send-keys", "C-c"]);
        self.run(&["send-keys", "-l", "clear"]);
        self.run(&["send-keys", "Enter"]);
        let prompt = self.prompt.trim_end();
        self.wait_line("a bare prompt", |l| l == prompt);
    }

    /// Types `typed` and presses Tab, then waits for the shell's line
    /// to read `expected`. (Nothing is typed after the Tab: zsh and fish
    /// skip completing when more input is already waiting.)
    fn completes(&self, shell: &str, typed: &str, expected: &str) {
        self.fresh_line();
        self.run(&["send-keys", "-l", typed]);
        self.run(&["send-keys", "Tab"]);
        let want = format!("{}{expected}", self.prompt);
        self.wait_line(&format!("{shell} to complete `{typed}` to `{expected}`"), |l| l == want.trim_end());
        self.run(&["send-keys", "C-c"]);
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

/// Every argument that takes a session completes the live ones (all
/// commands, not a hand-kept list), `restore` completes archived ones
/// only, `task show` completes tasks and `--agent` / `--agents` the
/// built-in agents; in bash, zsh and fish.
#[test]
fn each_shell_completes_sessions_archived_sessions_tasks_and_agents() {
    let env = TestEnv::new();
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::os::unix::fs::symlink(TestEnv::bin(), bin.join("tandem")).expect("symlink");
    for name in ["alpha-one", "beta-two", "gamma-three", "gala-live"] {
        env.ok(&["new", name, "--bg", "--agent", "sh -c 'sleep 600'", "--base", "head"]);
    }
    env.ok(&["archive", "gamma-three"]);
    env.ok(&[
        "task",
        "new",
        "Speed up parsing",
        "--name",
        "zeta-task",
        "--trials",
        "1",
        "--agents",
        "sh -c 'sleep 600'",
        "--base",
        "head",
    ]);

    let mut ran = 0;
    for shell in ["bash", "zsh", "fish"] {
        if Command::new(shell).arg("-c").arg("exit 0").output().is_err() {
            skipped(&format!("{shell} is not installed"));
            continue;
        }
        ran += 1;
        let sh = Shell::start(&env, &bin, shell);
        sh.completes(shell, "tandem attach al", "tandem attach alpha-one ");
        sh.completes(shell, "tandem diff be", "tandem diff beta-two ");
        sh.completes(shell, "tandem history be", "tandem history beta-two ");
        // `ga` matches the archived gamma-three and the live gala-live:
        // restore offers only the first, attach only the second.
        sh.completes(shell, "tandem restore ga", "tandem restore gamma-three ");
        sh.completes(shell, "tandem attach ga", "tandem attach gala-live ");
        sh.completes(shell, "tandem task show ze", "tandem task show zeta-task ");
        sh.completes(shell, "tandem new --agent cod", "tandem new --agent codex ");
        sh.completes(shell, "tandem task new x --agents claude,gem", "tandem task new x --agents claude,gemini ");
    }
    assert!(ran > 0, "no shell ran");
}
