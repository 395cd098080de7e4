//! Agents: what program a session runs, and how its first prompt reaches
//! it.
//!
//! - `claude`: Claude Code's interactive TUI; the prompt is its first
//!   positional argument (`claude "PROMPT"` runs it at once and stays in
//!   the TUI). It reports its state through hooks ([`claude`]).
//! - `claude-structured`: Claude Code with no terminal, driven through
//!   its stream-json protocol ([`claude_stream`]); the prompt is its first
//!   input line.
//! - `shell`: the user's `$SHELL` (else `/bin/sh`); the prompt is typed
//!   into it as a command line.
//! - anything else: a command line split as a POSIX shell would (quotes,
//!   no expansion); the prompt is typed into it.
//!
//! With no agent named, `claude` is used when it is on `PATH`, else
//! `shell`, so a first run works on any machine.

pub mod claude;
pub mod claude_stream;

use std::ffi::OsStr;
use std::path::Path;

use crate::process::which;

/// Claude Code through stream-json, with no terminal.
pub const STRUCTURED: &str = "claude-structured";

/// Whether agent `name` is Claude Code (either way it runs).
#[must_use]
pub fn is_claude(name: &str) -> bool {
    name == "claude" || name == STRUCTURED
}

/// Whether agent `name` reports what it does (running, needs input,
/// idle); other agents' state comes from their process alone.
#[must_use]
pub fn reports_state(name: &str) -> bool {
    is_claude(name)
}

/// A resolved agent: the argument vector to run and the input to type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// What is shown in `tandem list`: `claude`, `shell`, or the command.
    pub name: String,
    /// Program (an absolute path) and arguments.
    pub argv: Vec<String>,
    /// Typed into the PTY once the agent starts (prompt plus Enter).
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
        Some(STRUCTURED) => {
            let mut argv = vec![find("claude")?];
            argv.extend(claude_stream::ARGS.iter().map(|a| (*a).to_owned()));
            Ok(AgentSpec { name: STRUCTURED.to_owned(), argv, typed_input: prompt.map(claude_stream::prompt) })
        }
        Some("") => Err(AgentError::Empty),
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
