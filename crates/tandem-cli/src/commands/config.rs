use std::io::Write;

use tandem_core::config::Config;

use crate::context::Context;
use crate::error::CliError;

/// Show tandem's configuration
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    action: ConfigAction,
}

#[derive(clap::Subcommand, Debug)]
enum ConfigAction {
    /// Print every effective value and where it came from: default, your
    /// config.toml, the repository's .tandem.toml, or a TANDEM_* variable
    Show,
}

pub fn run(cx: &Context, args: &ConfigArgs) -> Result<(), CliError> {
    let ConfigAction::Show = args.action;
    // Outside a repository, the user's layers alone.
    let config = match cx.repo() {
        Ok((_, config)) => config,
        Err(_) => Config::load(&cx.paths.config_dir.join("config.toml"), None)?,
    };
    let entries = config.entries();
    let width = entries.iter().map(|(k, v, _)| k.len() + v.len() + 3).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (key, value, source) in entries {
        let line = format!("{key} = {value}");
        writeln!(out, "{line:<width$}  # {source}")?;
    }
    Ok(())
}
