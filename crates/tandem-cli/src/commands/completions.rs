use crate::context::Context;
use crate::error::CliError;

/// Print a shell completion script; it completes commands, flags, session
/// names (archived ones for `restore`), tasks and agents
///
/// The script calls `tandem` back for each completion, so names are
/// always current (see `complete.rs`).
/// bash: `source <(tandem completions bash)` in ~/.bashrc;
/// zsh: `source <(tandem completions zsh)` in ~/.zshrc, after `compinit`;
/// fish: `tandem completions fish | source` in ~/.config/fish/config.fish.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell whose script to print
    shell: clap_complete::Shell,
}

pub fn run(_cx: &Context, args: &CompletionsArgs) -> Result<(), CliError> {
    let shell = args.shell.to_string();
    // The script calls back the binary as it was invoked here: `tandem`
    // from PATH stays `tandem` (so an upgrade is picked up), a path is
    // made absolute (so the script works from any folder).
    let invoked = std::env::args_os().next().map(std::path::PathBuf::from).unwrap_or_else(|| "tandem".into());
    let completer = if invoked.components().count() > 1 { std::path::absolute(&invoked)? } else { invoked };
    let mut out = std::io::stdout().lock();
    crate::complete::write_registration(&shell, &completer.to_string_lossy(), &mut out)?;
    Ok(())
}
