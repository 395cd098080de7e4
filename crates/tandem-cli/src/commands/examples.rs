//! What `--help` adds to the derived command tree (issue 19): an
//! `Examples:` block for every visible command, and the `--agent` help
//! built from [`tandem_core::agent::AGENTS`] so it lists every built-in
//! agent and cannot drift from the table.
//!
//! The examples live here, in one table, rather than as `after_help`
//! attributes on each `Args` struct, so adding them touched no command's
//! file. `tandem --help`, the man pages and the completions all read the
//! tree [`command`] returns; a test walks it and fails for a visible
//! command without examples.

use clap::Command;
use tandem_core::agent::{AGENTS, Names};

use super::Cli;

/// Each command's examples by its path below `tandem` (`"config show"`).
/// Each line: the command, then what it does.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "new",
        "tandem new fix-login -p 'fix the login redirect'   Claude Code on a new branch fix-login
  tandem new --agent codex -p 'add tests'             Codex, named after its prompt
  tandem new api --base origin/release --bg           from a release branch, not attached
  tandem new spike --agent shell                      a shell in a fresh worktree",
    ),
    ("view", "tandem view\n  tandem view --all      every repository's sessions"),
    (
        "list",
        "tandem list
  tandem list --status in-progress --sort priority
  tandem list --json | jq '.[] | select(.state == \"needs_input\") | .name'
  tandem list --archived",
    ),
    ("attach", "tandem attach fix-login      Ctrl-\\ detaches; the agent keeps running"),
    (
        "logs",
        "tandem logs fix-login
  tandem logs fix-login --follow      keep printing until the agent exits (-F)",
    ),
    ("stop", "tandem stop fix-login"),
    (
        "rm",
        "tandem rm fix-login
  tandem rm --force fix-login      even with uncommitted or unmerged work (a snapshot is kept)",
    ),
    (
        "set",
        "tandem set fix-login --title 'Login redirect' --priority high
  tandem set fix-login --status in-review --pin",
    ),
    ("path", "cd \"$(tandem path fix-login)\""),
    (
        "rename",
        "tandem rename lucky-crane fix-login      name, folder (when its agent is stopped) and branch
  tandem rename fix-login login --branch     even a pushed branch (the remote keeps the old name)",
    ),
    (
        "status",
        "tandem status                      `1 needs input (api: Bash: cargo test), 2 running`
  tandem status --here               this repository only
  tandem status --json",
    ),
    ("env", "tandem env fix-login\n  tandem env fix-login --json"),
    ("send", "tandem send fix-login 'now add a test for it'"),
    ("interrupt", "tandem interrupt fix-login"),
    ("approve", "tandem approve fix-login"),
    ("deny", "tandem deny fix-login\n  tandem deny fix-login -m 'do not touch the schema; add a column instead'"),
    ("respawn", "tandem respawn fix-login      after a stop, a crash or a reboot"),
    ("fork", "tandem fork fix-login\n  tandem fork fix-login fix-login-alt"),
    (
        "diff",
        "tandem diff fix-login
  tandem diff fix-login --stat
  tandem diff fix-login --against remote
  tandem diff fix-login --uncommitted
  tandem diff fix-login --checkpoint 3      what the turn of checkpoint 3 changed
  tandem diff fix-login --checkpoint 2 --to 5",
    ),
    ("push", "tandem push fix-login"),
    ("pr", "tandem pr fix-login\n  tandem pr fix-login --draft --title 'Fix the login redirect'"),
    ("review", "tandem review fix-login\n  tandem review fix-login --agent codex --as fix-login-review"),
    ("sync", "tandem sync fix-login\n  tandem sync fix-login --rebase\n  tandem sync fix-login --abort"),
    (
        "merge",
        "tandem merge fix-login
  tandem merge fix-login --squash --archive
  tandem merge fix-login --remote      through its pull request on GitHub
  tandem merge fix-login --abort",
    ),
    ("conflicts", "tandem conflicts\n  tandem conflicts --json"),
    (
        "task",
        "tandem task new 'make the test suite pass on ARM' --agents claude,codex --check 'cargo test'
  tandem task show arm-tests
  tandem task promote arm-tests 2",
    ),
    (
        "task new",
        "tandem task new 'make the test suite pass on ARM' --agents claude,codex
  tandem task new 'speed up the parser' --trials 3 --check 'cargo bench'",
    ),
    ("task show", "tandem task show arm-tests\n  tandem task show arm-tests --json"),
    ("task diff", "tandem task diff arm-tests 1 2\n  tandem task diff arm-tests t1 t2 --stat"),
    ("task promote", "tandem task promote arm-tests 2"),
    ("task list", "tandem task list\n  tandem task list --json"),
    ("task set", "tandem task set arm-tests --status done"),
    ("history", "tandem history fix-login\n  tandem history fix-login --follow\n  tandem history fix-login --json"),
    (
        "search",
        "tandem search 'login redirect'
  tandem search timeout --session fix-login
  tandem search migration --all --json",
    ),
    ("archive", "tandem archive fix-login"),
    ("restore", "tandem restore fix-login"),
    (
        "checkpoints",
        "tandem checkpoints fix-login
  tandem checkpoints fix-login --json",
    ),
    (
        "rewind",
        "tandem rewind fix-login 3                   the worktree as after checkpoint 3
  tandem rewind fix-login 3 --files src/auth  only that folder
  tandem rewind fix-login --undo              back to before the last rewind
  tandem rewind fix-login 3 --hard --stop     HEAD too, stopping the agent first
  tandem rewind fix-login 3 --conversation    claude-structured: its conversation too",
    ),
    ("gc", "tandem gc\n  tandem gc --older-than 7"),
    ("doctor", "tandem doctor\n  tandem doctor --fix"),
    ("hooks", "tandem hooks\n  tandem hooks approve"),
    ("hooks show", "tandem hooks show"),
    ("hooks approve", "tandem hooks approve\n  tandem hooks approve --yes"),
    (
        "completions",
        "source <(tandem completions bash)
  tandem completions zsh > ~/.zfunc/_tandem
  tandem completions fish > ~/.config/fish/completions/tandem.fish",
    ),
    (
        "serve",
        "tandem serve                        prints the dashboard's URL with its token
  tandem serve --open
  tandem serve --here --listen 127.0.0.1:8080
  tandem serve --print-url            the login URL of the dashboard the supervisor runs ([serve] enabled)
  tandem serve --listen 0.0.0.0:7878 --tls-cert cert.pem --tls-key key.pem",
    ),
    (
        "mcp",
        "claude mcp add tandem -- tandem mcp   Claude Code gets tandem's tools (docs/mcp.md)
  tandem mcp                           serves MCP on stdin/stdout",
    ),
    (
        "remote",
        "tandem remote add gpu me@gpu.example.com    a host reached through your ssh (docs/remote.md)
  tandem remote install gpu                  this tandem copied to its ~/.local/bin
  tandem remote list
  tandem new --on gpu fix-build              a session on gpu",
    ),
    (
        "remote add",
        "tandem remote add gpu me@gpu.example.com
  tandem remote add box ssh://me@10.0.0.5:2222
  tandem remote add lab lab --tandem /opt/tandem/bin/tandem   an alias of ~/.ssh/config, tandem elsewhere",
    ),
    ("remote list", "tandem remote list\n  tandem remote list --json"),
    ("remote rm", "tandem remote rm gpu      its sessions keep running there"),
    ("remote doctor", "tandem remote doctor gpu"),
    ("remote install", "tandem remote install gpu"),
    (
        "fetch",
        "tandem fetch fix-build        refs/remotes/tandem/gpu/fix-build here
  tandem fetch gpu:fix-build --json",
    ),
    ("daemon", "tandem daemon status\n  tandem daemon stop"),
    ("daemon start", "tandem daemon start"),
    ("daemon stop", "tandem daemon stop      sessions' agents keep running"),
    ("daemon status", "tandem daemon status\n  tandem daemon status --json"),
];

/// The `--agent` help of `new` and `review`: every row of
/// [`AGENTS`] by the word that selects it, then `default`.
#[must_use]
pub fn agent_help(default: &str) -> String {
    let names: Vec<&str> = AGENTS
        .iter()
        .map(|p| match p.names {
            Names::Exact(word) | Names::Program(word) => word,
            Names::Any => "any command line (`aider --model x`)",
        })
        .collect();
    format!("The agent: {} [default: {default}]", names.join(", "))
}

/// The command tree as `--help`, man pages and completions show it: the
/// derived tree plus [`EXAMPLES`] and the `--agent` help.
#[must_use]
pub fn command() -> Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    for (path, text) in EXAMPLES {
        cmd = with_examples(cmd, &path.split(' ').collect::<Vec<_>>(), text);
    }
    for (sub, default) in
        [("new", "claude when installed, else shell"), ("review", "NAME's agent when it takes prompts, else claude")]
    {
        let help = agent_help(default);
        cmd = cmd.mut_subcommand(sub, |c| c.mut_arg("agent", |a| a.help(help)));
    }
    cmd
}

/// `cmd` with `text` as the `Examples:` block of its subcommand at
/// `path`, after any help the subcommand already ends with.
fn with_examples(cmd: Command, path: &[&str], text: &str) -> Command {
    match path {
        [] => {
            let before = cmd.get_after_help().map(|h| format!("{h}\n\n")).unwrap_or_default();
            cmd.after_help(format!("{before}Examples:\n  {text}"))
        }
        [first, rest @ ..] => {
            let rest = rest.to_vec();
            let text = text.to_owned();
            cmd.mut_subcommand(*first, move |c| with_examples(c, &rest, &text))
        }
    }
}
