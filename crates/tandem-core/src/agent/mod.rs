//! Agents: what program a session runs, how its first prompt reaches it,
//! and how tandem learns what it does. One adapter per agent:
//!
//! | agent | runs | state from |
//! |---|---|---|
//! | `claude` | Claude Code's TUI in a PTY; the prompt is its first argument | hooks ([`claude`]) |
//! | `claude-structured` | `claude -p` with stream-json on pipes | its output ([`claude_stream`]) |
//! | `codex` | `codex app-server`, JSON-RPC on pipes | its notifications ([`codex`]) |
//! | `gemini` | `gemini --acp`, the Agent Client Protocol on pipes | its updates ([`gemini`]) |
//! | `shell` | `$SHELL` (else `/bin/sh`) in a PTY; the prompt is typed | process and output (inferred) |
//! | any other command line | that program in a PTY; the prompt is typed | process and output (inferred) |
//!
//! A command line whose program is `codex` or `gemini` (and whose next
//! word is an option, not a subcommand) is that agent with the options
//! added, e.g. `--agent "codex -c model=o4-mini"` or `--agent "gemini
//! --yolo"`.
//!
//! With no agent named, `claude` is used when it is on `PATH`, else
//! `shell`, so a first run works on any machine. Adding an agent touches
//! its own module and the [`Kind`] table here.

pub mod claude;
pub mod claude_stream;
pub mod codex;
pub mod driver;
pub mod gemini;

use std::ffi::OsStr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::process::which;

/// Claude Code through stream-json, with no terminal.
pub const STRUCTURED: &str = "claude-structured";

/// The adapters tandem has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Claude,
    ClaudeStructured,
    Codex,
    Gemini,
    Shell,
    /// Any other command line.
    Command,
}

impl Kind {
    /// The adapter for agent `name` (as given to `--agent`).
    #[must_use]
    pub fn of(name: &str) -> Kind {
        let words = shell_words::split(name.trim()).unwrap_or_default();
        let program = words.first().map(|p| Path::new(p).file_name().map_or(p.as_str(), |f| f.to_str().unwrap_or("")));
        let options_only = words.get(1).is_none_or(|w| w.starts_with('-'));
        match (name.trim(), program) {
            ("claude", _) => Kind::Claude,
            (STRUCTURED, _) => Kind::ClaudeStructured,
            ("shell", _) => Kind::Shell,
            (_, Some("codex")) if options_only => Kind::Codex,
            (_, Some("gemini")) if options_only => Kind::Gemini,
            _ => Kind::Command,
        }
    }

    /// Whether it runs on pipes through a [`driver::Driver`].
    #[must_use]
    pub fn structured(self) -> bool {
        matches!(self, Kind::ClaudeStructured | Kind::Codex | Kind::Gemini)
    }

    /// The arguments that put the program in its structured mode, right
    /// after the program.
    fn mode_args(self) -> &'static [&'static str] {
        match self {
            Kind::ClaudeStructured => claude_stream::ARGS,
            Kind::Codex => codex::ARGS,
            Kind::Gemini => gemini::ARGS,
            Kind::Claude | Kind::Shell | Kind::Command => &[],
        }
    }
}

/// Whether agent `name` is Claude Code (either way it runs).
#[must_use]
pub fn is_claude(name: &str) -> bool {
    matches!(Kind::of(name), Kind::Claude | Kind::ClaudeStructured)
}

/// Whether agent `name` reports what it does (running, needs input,
/// idle); other agents' state comes from their process alone.
#[must_use]
pub fn reports_state(name: &str) -> bool {
    !matches!(Kind::of(name), Kind::Shell | Kind::Command)
}

/// Which conversation an agent works in, by the agent's own id for it
/// (Claude's session id, Codex's thread id, Gemini's session id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum Conversation {
    /// A new one; the agent picks the id.
    #[default]
    Any,
    /// A new one with this id (Claude's `--session-id`).
    New(String),
    /// The existing one with this id.
    Resume(String),
    /// A new one that starts as a copy of this one; the agent picks the
    /// new id.
    Fork(String),
}

/// The driver for a structured agent `name` working in `cwd`, opening
/// `conversation`; `None` for an agent in a PTY.
#[must_use]
pub fn driver(name: &str, cwd: &Path, conversation: &Conversation) -> Option<Box<dyn driver::Driver>> {
    match Kind::of(name) {
        Kind::ClaudeStructured => Some(Box::new(claude_stream::ClaudeStream::new())),
        Kind::Codex => Some(Box::new(codex::Codex::new(cwd, conversation))),
        Kind::Gemini => Some(Box::new(gemini::Gemini::new(cwd, conversation))),
        Kind::Claude | Kind::Shell | Kind::Command => None,
    }
}

/// The conversation a session of agent `name` opens when its agent
/// (re)starts: a fork of `fork_of` when given; else the one recorded
/// (`recorded`, the session's agent conversation id) if the agent can
/// resume it (`exists` says whether Claude has its transcript; Codex and
/// Gemini are asked and start afresh, saying so, if they cannot); else a
/// new one.
#[must_use]
pub fn conversation(
    name: &str,
    fork_of: Option<&str>,
    recorded: Option<&str>,
    exists: impl Fn(&str) -> bool,
) -> Conversation {
    let kind = Kind::of(name);
    match (fork_of, recorded) {
        (Some(source), _) => Conversation::Fork(source.to_owned()),
        (None, Some(id)) if !matches!(kind, Kind::Claude | Kind::ClaudeStructured) || exists(id) => {
            Conversation::Resume(id.to_owned())
        }
        (None, Some(id)) => Conversation::New(id.to_owned()),
        (None, None) => Conversation::Any,
    }
}

/// Variables agent `name` needs beside the session's environment `env`
/// to work in `cwd` (Gemini: the git identity, see [`gemini`]).
#[must_use]
pub fn extra_env(name: &str, cwd: &Path, env: &[(String, String)]) -> Vec<(String, String)> {
    match Kind::of(name) {
        Kind::Gemini => gemini::git_identity(cwd, env),
        _ => Vec::new(),
    }
}

/// The command line of a one-shot, tool-less question to agent `name`
/// (installed at `program`), for titles and summaries: `claude -p`,
/// `codex exec`, `gemini -p`; `None` for agents that have no such mode.
/// The answer is the command's stdout.
#[must_use]
pub fn one_shot(name: &str, program: &str, question: &str) -> Option<Vec<String>> {
    let args: &[&str] = match Kind::of(name) {
        // No tools and no saved conversation: a title needs neither.
        Kind::Claude | Kind::ClaudeStructured => &["-p", "--tools", "", "--no-session-persistence"],
        // Read-only, nothing saved; stdout carries only the last message.
        Kind::Codex => &["exec", "--skip-git-repo-check", "--ephemeral", "--sandbox", "read-only"],
        Kind::Gemini => &["--approval-mode", "plan", "-p"],
        Kind::Shell | Kind::Command => return None,
    };
    let mut argv = vec![program.to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv.push(question.to_owned());
    Some(argv)
}

/// A resolved agent: the argument vector to run and the input to type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// What is shown in `tandem list`: `claude`, `codex`, `shell`, or
    /// the command line as given.
    pub name: String,
    /// Program (an absolute path) and arguments.
    pub argv: Vec<String>,
    /// Typed into the PTY once the agent starts (prompt plus Enter); a
    /// structured agent's first prompt, as given.
    pub typed_input: Option<String>,
}

/// Why an agent could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("agent command `{program}` was not found on PATH; install it, or pass --agent shell or a full path")]
    NotFound { program: String },
    #[error("agent command line `{command}` cannot be parsed ({why}); check its quotes")]
    Unparsable { command: String, why: String },
    #[error("agent command line is empty; pass --agent claude, --agent shell, or a command")]
    Empty,
}

/// Resolves `agent` (None for the default) for a session started in
/// `cwd` with `env` (the environment of the `tandem new` call).
///
/// # Errors
/// [`AgentError`] when the program is not found or the line not parsable.
pub fn resolve(
    agent: Option<&str>,
    prompt: Option<&str>,
    env: &[(String, String)],
    cwd: &Path,
) -> Result<AgentSpec, AgentError> {
    let var = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let path_var = var("PATH").map(OsStr::new);
    let find = |program: &str| {
        which(program, path_var, cwd)
            .map(|p| p.to_string_lossy().into_owned())
            .ok_or_else(|| AgentError::NotFound { program: program.to_owned() })
    };
    let typed = prompt.map(|p| format!("{p}\r"));
    let shell = || -> Result<AgentSpec, AgentError> {
        let shell = var("SHELL").filter(|s| !s.is_empty()).unwrap_or("/bin/sh");
        Ok(AgentSpec { name: "shell".to_owned(), argv: vec![find(shell)?], typed_input: typed.clone() })
    };
    match agent.map(str::trim) {
        None => match find("claude") {
            Ok(_) => resolve(Some("claude"), prompt, env, cwd),
            Err(_) => shell(),
        },
        Some("shell") => shell(),
        Some("claude") => {
            let mut argv = vec![find("claude")?];
            argv.extend(prompt.map(str::to_owned));
            Ok(AgentSpec { name: "claude".to_owned(), argv, typed_input: None })
        }
        Some("") => Err(AgentError::Empty),
        Some(line) if Kind::of(line).structured() => {
            let kind = Kind::of(line);
            let mut words = shell_words::split(line)
                .map_err(|e| AgentError::Unparsable { command: line.to_owned(), why: e.to_string() })?;
            let program = if kind == Kind::ClaudeStructured { "claude".to_owned() } else { words.remove(0) };
            let mut argv = vec![find(&program)?];
            argv.extend(kind.mode_args().iter().map(|a| (*a).to_owned()));
            if kind != Kind::ClaudeStructured {
                argv.extend(words);
            }
            Ok(AgentSpec { name: line.to_owned(), argv, typed_input: prompt.map(str::to_owned) })
        }
        Some(line) => {
            let mut argv = shell_words::split(line)
                .map_err(|e| AgentError::Unparsable { command: line.to_owned(), why: e.to_string() })?;
            if argv.is_empty() {
                return Err(AgentError::Empty);
            }
            argv[0] = find(&argv[0])?;
            Ok(AgentSpec { name: line.to_owned(), argv, typed_input: typed })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> Vec<(String, String)> {
        vec![("PATH".to_owned(), path.to_owned()), ("SHELL".to_owned(), "/bin/sh".to_owned())]
    }

    #[test]
    fn default_falls_back_to_the_shell_without_claude() {
        let spec = resolve(None, Some("ls"), &env("/bin:/usr/bin"), Path::new("/")).expect("resolve");
        if which("claude", Some(OsStr::new("/bin:/usr/bin")), Path::new("/")).is_none() {
            assert_eq!(spec.name, "shell");
            assert_eq!(spec.typed_input.as_deref(), Some("ls\r"));
        }
    }

    #[test]
    fn agent_names_pick_their_adapter() {
        assert_eq!(Kind::of("claude"), Kind::Claude);
        assert_eq!(Kind::of("claude-structured"), Kind::ClaudeStructured);
        assert_eq!(Kind::of("codex"), Kind::Codex);
        assert_eq!(Kind::of("/opt/bin/codex -c model=o3"), Kind::Codex);
        assert_eq!(Kind::of("codex exec hi"), Kind::Command, "a subcommand is the user's own command line");
        assert_eq!(Kind::of("gemini --yolo"), Kind::Gemini);
        assert_eq!(Kind::of("shell"), Kind::Shell);
        assert_eq!(Kind::of("aider --yes"), Kind::Command);
        assert!(reports_state("gemini") && !reports_state("aider"));
        let dir = tempfile::tempdir().expect("tempdir");
        let codex = dir.path().join("codex");
        std::fs::write(&codex, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&codex, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let path = format!("{}:/bin", dir.path().display());
        let spec = resolve(Some("codex -c x=1"), Some("hi"), &env(&path), Path::new("/")).expect("resolve");
        assert_eq!(spec.argv, [codex.to_string_lossy().as_ref(), "app-server", "-c", "x=1"]);
        assert_eq!(spec.typed_input.as_deref(), Some("hi"), "a structured agent gets the prompt as it is");
        assert_eq!(
            conversation("codex", None, Some("t1"), |_| false),
            Conversation::Resume("t1".into()),
            "Codex is asked to resume whatever was recorded"
        );
        assert_eq!(conversation("claude", None, Some("c1"), |_| false), Conversation::New("c1".into()));
        assert_eq!(conversation("gemini", Some("g0"), Some("g1"), |_| true), Conversation::Fork("g0".into()));
        let ask = one_shot("gemini", "/bin/gemini", "title?").expect("gemini has a one-shot mode");
        assert_eq!(ask.last().map(String::as_str), Some("title?"));
        assert!(one_shot("aider", "/bin/aider", "title?").is_none());
    }

    #[test]
    fn command_lines_are_split_and_resolved() {
        let spec =
            resolve(Some("sh -c 'echo hi; sleep 1'"), None, &env("/bin:/usr/bin"), Path::new("/")).expect("resolve");
        assert!(spec.argv[0].ends_with("/sh"));
        assert_eq!(&spec.argv[1..], ["-c", "echo hi; sleep 1"]);
        assert_eq!(
            resolve(Some("no-such-agent-xyz --flag"), None, &env("/bin"), Path::new("/")),
            Err(AgentError::NotFound { program: "no-such-agent-xyz".to_owned() })
        );
        assert!(matches!(
            resolve(Some("sh 'unclosed"), None, &env("/bin"), Path::new("/")),
            Err(AgentError::Unparsable { .. })
        ));
    }
}
