// Whole on purpose (issue 18): the agents table and the lookups that answer from it, 500 lines of code and their tests; each agent's behaviour is in its own module.
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
//! `shell`, so a first run works on any machine.
//!
//! Every question about an agent (which names select it, what it runs,
//! whether it reports state, resumes, reviews, how it answers a one-shot
//! question, its driver) is answered by its row of [`AGENTS`]; what the
//! row points at (a driver, argument lists) lives in the agent's module.
//! Adding an agent: a module for its protocol, a [`Kind`] variant (and in
//! [`Kind::ALL`]), and its row in [`AGENTS`].

pub mod claude;
pub mod claude_stream;
pub mod codex;
pub mod driver;
pub mod gemini;
pub mod question;

use std::ffi::OsStr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::process::which;

/// Claude Code through stream-json, with no terminal.
pub const STRUCTURED: &str = "claude-structured";

/// The adapters tandem has; each has one row in [`AGENTS`].
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

/// How a `--agent` line selects a row of [`AGENTS`] (the line trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// The whole line is this word.
    Exact(&'static str),
    /// The line's program (its first word, without a directory) is this
    /// word and the next word, if any, is an option: `codex -c x=1`, not
    /// `codex exec hi` (a subcommand is the user's own command line).
    Program(&'static str),
    /// Any line: the last row.
    Any,
}

/// Which program a row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// This program, found on `PATH`; the line's words are not used.
    Named(&'static str),
    /// `$SHELL`, else `/bin/sh`.
    Shell,
    /// The line's first word, found on `PATH`; its other words follow the
    /// row's mode arguments.
    FromLine,
}

/// How the first prompt reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// As the last argument of its command line (Claude Code's TUI).
    Argument,
    /// Typed into its PTY once it starts, with Enter (`\r`).
    Typed,
    /// Handed, as given, to its [`driver::Driver`].
    Message,
}

/// Who chooses the id of an agent's conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationIds {
    /// The agent keeps no conversation tandem knows of.
    None,
    /// tandem, before the agent starts (Claude's `--session-id`); a
    /// recorded one is resumed only when its transcript exists.
    Tandem,
    /// The agent, which reports it; a recorded one is asked to resume.
    Agent,
}

/// What a trial of a task is first told ([`Kind::task_prompt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPrompt {
    /// The whole brief.
    Brief,
    /// One line pointing at `.tandem/brief.md` (a typed prompt of many
    /// lines would press Enter at each).
    PointToBrief,
    /// Nothing: a shell would run the brief as commands.
    None,
}

/// Makes a structured agent's driver from its working directory and the
/// conversation it opens.
pub type MakeDriver = fn(&Path, &Conversation) -> Box<dyn driver::Driver>;

/// Variables an agent needs beside the session's environment, from its
/// working directory and that environment.
pub type ExtraEnv = fn(&Path, &[(String, String)]) -> Vec<(String, String)>;

/// Everything tandem asks about one agent: one row of [`AGENTS`]. The
/// behaviour the row names (drivers, argument lists, extra variables)
/// lives in the agent's own module.
#[derive(Debug)]
pub struct Profile {
    /// The kind this row describes.
    pub kind: Kind,
    /// The `--agent` lines that select it.
    pub names: Names,
    /// The program it runs.
    pub program: Program,
    /// Arguments right after the program that put it in its structured
    /// mode (empty for an agent in a PTY).
    pub mode_args: &'static [&'static str],
    /// How its first prompt reaches it.
    pub prompt: Prompt,
    /// The driver of a structured agent (on pipes), made for its working
    /// directory and the conversation it opens; `None`: it runs in a PTY.
    pub driver: Option<MakeDriver>,
    /// Whether it reports what it does (running, needs input, idle);
    /// other agents' state comes from their process alone.
    pub reports_state: bool,
    /// Who chooses its conversation's id.
    pub conversation_ids: ConversationIds,
    /// Whether `tandem review` may run it (it takes a review prompt in
    /// words); else the default agent reviews.
    pub reviews: bool,
    /// Options added to its command line for a review, which make it
    /// refuse every write (Codex fences itself); empty for none.
    pub read_only: &'static str,
    /// The arguments of a one-shot, tool-less question (titles,
    /// summaries), between the program and the question; `None`: it has
    /// no such mode.
    pub one_shot: Option<&'static [&'static str]>,
    /// Variables it needs beside the session's environment, from its
    /// working directory and that environment.
    pub extra_env: Option<ExtraEnv>,
    /// The bytes that interrupt it in a PTY.
    pub interrupt_key: &'static [u8],
    /// What a trial of a task is first told.
    pub task_prompt: TaskPrompt,
}

/// Every agent tandem knows, one row each, in the order a `--agent` line
/// is matched against their [`Names`] (the catch-all last).
pub static AGENTS: &[Profile] = &[
    Profile {
        kind: Kind::Claude,
        names: Names::Exact("claude"),
        program: Program::Named("claude"),
        mode_args: &[],
        prompt: Prompt::Argument,
        driver: None,
        reports_state: true,
        conversation_ids: ConversationIds::Tandem,
        reviews: true,
        read_only: "",
        one_shot: Some(claude::ONE_SHOT),
        extra_env: None,
        interrupt_key: claude::INTERRUPT,
        task_prompt: TaskPrompt::Brief,
    },
    Profile {
        kind: Kind::ClaudeStructured,
        names: Names::Exact(STRUCTURED),
        program: Program::Named("claude"),
        mode_args: claude_stream::ARGS,
        prompt: Prompt::Message,
        driver: Some(claude_stream::driver),
        reports_state: true,
        conversation_ids: ConversationIds::Tandem,
        reviews: true,
        read_only: "",
        one_shot: Some(claude::ONE_SHOT),
        extra_env: None,
        interrupt_key: claude::INTERRUPT,
        task_prompt: TaskPrompt::Brief,
    },
    Profile {
        kind: Kind::Shell,
        names: Names::Exact("shell"),
        program: Program::Shell,
        mode_args: &[],
        prompt: Prompt::Typed,
        driver: None,
        reports_state: false,
        conversation_ids: ConversationIds::None,
        reviews: false,
        read_only: "",
        one_shot: None,
        extra_env: None,
        interrupt_key: CTRL_C,
        task_prompt: TaskPrompt::None,
    },
    Profile {
        kind: Kind::Codex,
        names: Names::Program("codex"),
        program: Program::FromLine,
        mode_args: codex::ARGS,
        prompt: Prompt::Message,
        driver: Some(codex::driver),
        reports_state: true,
        conversation_ids: ConversationIds::Agent,
        reviews: true,
        read_only: codex::READ_ONLY,
        one_shot: Some(codex::ONE_SHOT),
        extra_env: None,
        interrupt_key: CTRL_C,
        task_prompt: TaskPrompt::Brief,
    },
    Profile {
        kind: Kind::Gemini,
        names: Names::Program("gemini"),
        program: Program::FromLine,
        mode_args: gemini::ARGS,
        prompt: Prompt::Message,
        driver: Some(gemini::driver),
        reports_state: true,
        conversation_ids: ConversationIds::Agent,
        reviews: true,
        read_only: "",
        one_shot: Some(gemini::ONE_SHOT),
        extra_env: Some(gemini::git_identity),
        interrupt_key: CTRL_C,
        task_prompt: TaskPrompt::Brief,
    },
    Profile {
        kind: Kind::Command,
        names: Names::Any,
        program: Program::FromLine,
        mode_args: &[],
        prompt: Prompt::Typed,
        driver: None,
        reports_state: false,
        conversation_ids: ConversationIds::None,
        reviews: false,
        read_only: "",
        one_shot: None,
        extra_env: None,
        interrupt_key: CTRL_C,
        task_prompt: TaskPrompt::PointToBrief,
    },
];

/// Ctrl-C, what interrupts most programs in a terminal.
const CTRL_C: &[u8] = b"\x03";

impl Kind {
    /// Every kind, each with one row in [`AGENTS`].
    pub const ALL: [Kind; 6] =
        [Kind::Claude, Kind::ClaudeStructured, Kind::Codex, Kind::Gemini, Kind::Shell, Kind::Command];

    /// The adapter for agent `name` (as given to `--agent`): the first
    /// row of [`AGENTS`] whose [`Names`] select it.
    #[must_use]
    pub fn of(name: &str) -> Kind {
        let line = name.trim();
        let words = shell_words::split(line).unwrap_or_default();
        let program = words.first().map(|p| Path::new(p).file_name().map_or(p.as_str(), |f| f.to_str().unwrap_or("")));
        let options_only = words.get(1).is_none_or(|w| w.starts_with('-'));
        let selects = |names: Names| match names {
            Names::Exact(word) => line == word,
            Names::Program(word) => program == Some(word) && options_only,
            Names::Any => true,
        };
        AGENTS.iter().find(|row| selects(row.names)).map_or(Kind::Command, |row| row.kind)
    }

    /// This kind's row of [`AGENTS`].
    #[must_use]
    pub fn profile(self) -> &'static Profile {
        AGENTS
            .iter()
            .find(|row| row.kind == self)
            .expect("AGENTS has a row for every Kind (test every_kind_has_one_row)")
    }

    /// Whether it runs on pipes through a [`driver::Driver`].
    #[must_use]
    pub fn structured(self) -> bool {
        self.profile().driver.is_some()
    }

    /// What a trial of a task running this agent is first told, its brief
    /// being `brief`.
    #[must_use]
    pub fn task_prompt(self, brief: &str) -> Option<String> {
        match self.profile().task_prompt {
            TaskPrompt::Brief => Some(brief.to_owned()),
            TaskPrompt::PointToBrief => Some("Read .tandem/brief.md and do what it says.".to_owned()),
            TaskPrompt::None => None,
        }
    }
}

/// Whether agent `name` is Claude Code (either way it runs): its row runs
/// the `claude` program.
#[must_use]
pub fn is_claude(name: &str) -> bool {
    Kind::of(name).profile().program == Program::Named("claude")
}

/// Whether agent `name` can resume its conversation up to one of its
/// messages, dropping what came after (`tandem rewind --conversation`):
/// only `claude-structured` (Claude Code's `--resume-session-at`, which
/// its TUI ignores). Codex and Gemini have no such option.
#[must_use]
pub fn resumes_at_message(name: &str) -> bool {
    Kind::of(name) == Kind::ClaudeStructured
}

/// Whether agent `name` reports what it does (running, needs input,
/// idle); other agents' state comes from their process alone.
#[must_use]
pub fn reports_state(name: &str) -> bool {
    Kind::of(name).profile().reports_state
}

/// Whether `tandem review` may run agent `name` (else the default agent
/// reviews).
#[must_use]
pub fn can_review(name: &str) -> bool {
    Kind::of(name).profile().reviews
}

/// The command line a review runs agent `name` with: `name` plus what
/// makes the agent refuse every write where it can fence itself (`codex
/// -c sandbox_mode=read-only`).
#[must_use]
pub fn review_line(name: &str) -> String {
    match Kind::of(name).profile().read_only {
        "" => name.to_owned(),
        options => format!("{name} {options}"),
    }
}

/// The bytes that interrupt agent `name` in a PTY (Esc for Claude Code's
/// TUI, Ctrl-C for others).
#[must_use]
pub fn interrupt_key(name: &str) -> &'static [u8] {
    Kind::of(name).profile().interrupt_key
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
    Kind::of(name).profile().driver.map(|make| make(cwd, conversation))
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
    let ids = Kind::of(name).profile().conversation_ids;
    match (fork_of, recorded) {
        (Some(source), _) => Conversation::Fork(source.to_owned()),
        (None, Some(id)) if ids != ConversationIds::Tandem || exists(id) => Conversation::Resume(id.to_owned()),
        (None, Some(id)) => Conversation::New(id.to_owned()),
        (None, None) => Conversation::Any,
    }
}

/// Variables agent `name` needs beside the session's environment `env`
/// to work in `cwd` (Gemini: the git identity, see [`gemini`]).
#[must_use]
pub fn extra_env(name: &str, cwd: &Path, env: &[(String, String)]) -> Vec<(String, String)> {
    Kind::of(name).profile().extra_env.map_or_else(Vec::new, |extra| extra(cwd, env))
}

/// The command line of a one-shot, tool-less question to agent `name`
/// (installed at `program`), for titles and summaries: `claude -p`,
/// `codex exec`, `gemini -p`; `None` for agents that have no such mode.
/// The answer is the command's stdout.
#[must_use]
pub fn one_shot(name: &str, program: &str, question: &str) -> Option<Vec<String>> {
    let args = Kind::of(name).profile().one_shot?;
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
    match agent.map(str::trim) {
        None if find("claude").is_ok() => resolve(Some("claude"), prompt, env, cwd),
        None => resolve(Some("shell"), prompt, env, cwd),
        Some("") => Err(AgentError::Empty),
        Some(line) => {
            let row = Kind::of(line).profile();
            let (program, rest) = match row.program {
                Program::Named(program) => (program.to_owned(), Vec::new()),
                Program::Shell => (var("SHELL").filter(|s| !s.is_empty()).unwrap_or("/bin/sh").to_owned(), Vec::new()),
                Program::FromLine => {
                    let mut words = shell_words::split(line)
                        .map_err(|e| AgentError::Unparsable { command: line.to_owned(), why: e.to_string() })?;
                    if words.is_empty() {
                        return Err(AgentError::Empty);
                    }
                    let program = words.remove(0);
                    (program, words)
                }
            };
            let mut argv = vec![find(&program)?];
            argv.extend(row.mode_args.iter().map(|a| (*a).to_owned()));
            argv.extend(rest);
            let typed_input = match row.prompt {
                Prompt::Argument => {
                    argv.extend(prompt.map(str::to_owned));
                    None
                }
                Prompt::Typed => prompt.map(|p| format!("{p}\r")),
                Prompt::Message => prompt.map(str::to_owned),
            };
            Ok(AgentSpec { name: line.to_owned(), argv, typed_input })
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
    fn every_kind_has_one_row() {
        // Adding a Kind fails to compile here until it is in Kind::ALL.
        let listed = |kind: Kind| match kind {
            Kind::Claude | Kind::ClaudeStructured | Kind::Codex | Kind::Gemini | Kind::Shell | Kind::Command => {
                Kind::ALL.contains(&kind)
            }
        };
        for kind in Kind::ALL {
            assert!(listed(kind));
            assert_eq!(AGENTS.iter().filter(|row| row.kind == kind).count(), 1, "{kind:?} has one row");
        }
        assert_eq!(AGENTS.len(), Kind::ALL.len(), "no row without a kind");
        assert_eq!(AGENTS.last().map(|row| row.names), Some(Names::Any), "the catch-all row is last");
        for row in AGENTS {
            assert_eq!(
                row.driver.is_some(),
                row.prompt == Prompt::Message,
                "{:?}: a driver takes the prompt",
                row.kind
            );
            assert_eq!(row.driver.is_some(), !row.mode_args.is_empty(), "{:?}: a driver needs a mode", row.kind);
        }
    }

    /// The names users type resolve to the same program, arguments and
    /// typed input as before the table (issue 18).
    #[test]
    fn the_names_users_type_resolve_as_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
            path.to_string_lossy().into_owned()
        };
        let (claude, codex, gemini, sh, aider) = (bin("claude"), bin("codex"), bin("gemini"), bin("sh"), bin("aider"));
        let env = vec![("PATH".to_owned(), dir.path().display().to_string()), ("SHELL".to_owned(), sh.clone())];
        let at = Path::new("/");
        let got = |agent: Option<&str>| resolve(agent, Some("hi"), &env, at).expect("resolve");
        let spec = |name: &str, argv: &[&str], typed: Option<&str>| AgentSpec {
            name: name.to_owned(),
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
            typed_input: typed.map(str::to_owned),
        };
        assert_eq!(got(None), spec("claude", &[&claude, "hi"], None), "the default is Claude when installed");
        assert_eq!(got(Some(" claude ")), spec("claude", &[&claude, "hi"], None));
        let mut structured = vec![claude.as_str()];
        structured.extend(claude_stream::ARGS);
        assert_eq!(got(Some("claude-structured")), spec("claude-structured", &structured, Some("hi")));
        assert_eq!(got(Some("codex")), spec("codex", &[&codex, "app-server"], Some("hi")));
        assert_eq!(
            got(Some("codex -c model=o3")),
            spec("codex -c model=o3", &[&codex, "app-server", "-c", "model=o3"], Some("hi"))
        );
        assert_eq!(got(Some("codex exec hi")), spec("codex exec hi", &[&codex, "exec", "hi"], Some("hi\r")));
        assert_eq!(got(Some("gemini --yolo")), spec("gemini --yolo", &[&gemini, "--acp", "--yolo"], Some("hi")));
        assert_eq!(got(Some("shell")), spec("shell", &[&sh], Some("hi\r")));
        assert_eq!(got(Some("aider --yes")), spec("aider --yes", &[&aider, "--yes"], Some("hi\r")));
        assert_eq!(
            got(Some("claude --resume x")),
            spec("claude --resume x", &[&claude, "--resume", "x"], Some("hi\r"))
        );
        assert_eq!(resolve(Some("  "), None, &env, at), Err(AgentError::Empty));
        assert_eq!(resolve(Some("''"), None, &env, at), Err(AgentError::NotFound { program: String::new() }));
        let no_claude = tempfile::tempdir().expect("tempdir");
        let only_sh =
            vec![("PATH".to_owned(), no_claude.path().display().to_string()), ("SHELL".to_owned(), sh.clone())];
        assert_eq!(resolve(None, Some("ls"), &only_sh, at), Ok(spec("shell", &[&sh], Some("ls\r"))));
        // What the supervisor asks of a session's agent.
        assert!(can_review("codex -c x=1") && can_review("claude") && !can_review("shell") && !can_review("aider"));
        assert_eq!(review_line("codex"), "codex -c sandbox_mode=read-only");
        assert_eq!(review_line("claude"), "claude");
        assert_eq!(interrupt_key("claude"), b"\x1b");
        assert_eq!(interrupt_key("codex"), b"\x03");
        assert!(is_claude("claude-structured") && !is_claude("codex"));
        assert_eq!(Kind::of("shell").task_prompt("brief"), None);
        assert_eq!(Kind::of("codex").task_prompt("brief").as_deref(), Some("brief"));
        assert!(Kind::of("aider").task_prompt("brief").is_some_and(|p| p.contains(".tandem/brief.md")));
        assert!(extra_env("codex", at, &env).is_empty());
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
