use clap_complete::Shell;

use crate::context::Context;
use crate::error::CliError;

/// Print a shell completion script; it completes commands, flags and
/// session names
///
/// bash: `source <(tandem completions bash)`;
/// zsh: `tandem completions zsh > ~/.zfunc/_tandem`;
/// fish: `tandem completions fish > ~/.config/fish/completions/tandem.fish`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh or fish
    shell: Shell,
}

/// Subcommands whose first argument is a session name.
const TAKES_SESSION: &[&str] = &["attach", "logs", "stop", "rm", "set", "path", "archive", "restore"];

pub fn run(_cx: &Context, args: &CompletionsArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let mut cmd = crate::commands::examples::command();
    clap_complete::generate(args.shell, &mut cmd, "tandem", &mut out);
    let names = TAKES_SESSION.join(" ");
    let extra = match args.shell {
        Shell::Bash => format!(
            r#"
_tandem_with_sessions() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}"
    if [[ $COMP_CWORD -eq 2 && " {names} " == *" ${{COMP_WORDS[1]}} "* && "$cur" != -* ]]; then
        COMPREPLY=( $(compgen -W "$(tandem list --names 2>/dev/null)" -- "$cur") )
        return 0
    fi
    _tandem "$@"
}}
complete -F _tandem_with_sessions -o bashdefault -o default tandem
"#
        ),
        Shell::Zsh => format!(
            r#"
_tandem_with_sessions() {{
    if (( CURRENT == 3 )) && [[ " {names} " == *" ${{words[2]}} "* ]]; then
        local -a sessions
        sessions=(${{(f)"$(tandem list --names 2>/dev/null)"}})
        compadd -a sessions
        return
    fi
    _tandem "$@"
}}
compdef _tandem_with_sessions tandem
"#
        ),
        Shell::Fish => format!(
            "complete -c tandem -n '__fish_seen_subcommand_from {names}' -f -a '(tandem list --names 2>/dev/null)'\n"
        ),
        _ => String::new(),
    };
    std::io::Write::write_all(&mut out, extra.as_bytes())?;
    Ok(())
}
