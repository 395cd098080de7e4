//! `tandem man [COMMAND]`: man pages generated from the command tree
//! with `clap_mangen` (issue 19), so they never drift from `--help`.
//! `tandem man --dir DIR` writes every page (`tandem.1`,
//! `tandem-new.1`, `tandem-config-show.1`, …) for installing.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::error::CliError;

/// Print tandem's man page, or a command's; or write them all to a folder
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tandem man | man -l -                 read the main page
  tandem man new | man -l -             the page of `tandem new`
  tandem man config show | man -l -     a nested command's page
  tandem man --dir ~/.local/share/man/man1   install every page")]
pub struct ManArgs {
    /// The command whose page to print (`new`, `config show`); none for
    /// the main page
    command: Vec<String>,
    /// Write every page into DIR (created if missing) instead of printing
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    dir: Option<PathBuf>,
}

pub fn run(_cx: &Context, args: &ManArgs) -> Result<(), CliError> {
    let mut root = crate::commands::examples::command();
    root.build();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(|e| CliError::user(format!("cannot create {}: {e}", dir.display())))?;
        let count = write_all(&root, dir)?;
        writeln!(std::io::stdout().lock(), "wrote {count} man pages to {}", dir.display())?;
        return Ok(());
    }
    // After `build`, each subcommand's display name is its page's name
    // (`tandem-config-show`), which clap_mangen uses.
    let mut cmd = root;
    for word in &args.command {
        let Some(sub) = cmd.find_subcommand(word).filter(|c| !c.is_hide_set()).cloned() else {
            return Err(CliError::Failed(
                tandem_core::error::Failure::new(
                    tandem_core::error::ErrorKind::NotFound,
                    format!("no command `{} {}`", page_name(&cmd).replace('-', " "), tandem_core::text::visible(word)),
                )
                .hinted("`tandem --help` lists the commands"),
            ));
        };
        cmd = sub;
    }
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(())
}

/// The page's name: `tandem`, `tandem-new`, `tandem-config-show`.
fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned()
}

/// Writes `cmd`'s page as `NAME.1` and each visible subcommand's below
/// it; returns how many pages.
fn write_all(cmd: &clap::Command, dir: &Path) -> Result<usize, CliError> {
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut bytes)?;
    let file = dir.join(format!("{}.1", page_name(cmd)));
    std::fs::write(&file, bytes).map_err(|e| CliError::user(format!("cannot write {}: {e}", file.display())))?;
    let mut count = 1;
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help") {
        count += write_all(sub, dir)?;
    }
    Ok(count)
}
