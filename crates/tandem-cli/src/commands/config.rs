use std::io::Write;

use tandem_core::config::Config;
use tandem_core::text::visible;

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
    // Keys and values may come from the repository's .tandem.toml.
    let lines: Vec<(String, String)> = config
        .entries()
        .into_iter()
        .map(|(key, value, source)| {
            (format!("{} = {}", visible(&key), visible(&value)), visible(&source.to_string()).into_owned())
        })
        .collect();
    let width = lines.iter().map(|(line, _)| line.chars().count()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (line, source) in lines {
        writeln!(out, "{line:<width$}  # {source}")?;
    }
    Ok(())
}
