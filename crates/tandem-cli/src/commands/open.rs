//! `tandem open NAME`: a session's worktree in the user's editor
//! (issue 19): `open.command` from the user's config (`code`), else
//! `$VISUAL`, else `$EDITOR`. Also the editor `tandem config edit` runs.

use std::path::Path;
use std::process::{Command, ExitStatus};

use tandem_core::error::{ErrorKind, Failure};

use crate::context::Context;
use crate::error::CliError;

/// Open a session's worktree in your editor: `open.command` (e.g. `code`),
/// else $VISUAL, else $EDITOR
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tandem open fix-login
  EDITOR=vim tandem open fix-login
  TANDEM_OPEN_COMMAND=code tandem open fix-login")]
pub struct OpenArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &OpenArgs) -> Result<(), CliError> {
    let (_, config, session) = cx.named(args.name.as_deref())?;
    let editor = editor(Some(&config.open.command)).ok_or_else(|| {
        CliError::Failed(
            Failure::new(ErrorKind::NotFound, "no editor: `open.command`, $VISUAL and $EDITOR are all unset").hinted(
                "set one, e.g. `export EDITOR=vim`, or `command = \"code\"` under `[open]` in `tandem config edit`",
            ),
        )
    })?;
    let status = run_editor(&editor, &session.path)?;
    if !status.success() {
        return Err(CliError::user(format!("the editor `{editor}` failed ({status})")));
    }
    Ok(())
}

/// The editor to run: `configured` when not empty, else `$VISUAL`, else
/// `$EDITOR`; `None` when all are empty.
#[must_use]
pub fn editor(configured: Option<&str>) -> Option<String> {
    let from_env = |var| std::env::var(var).ok();
    configured
        .map(str::to_owned)
        .into_iter()
        .chain(from_env("VISUAL"))
        .chain(from_env("EDITOR"))
        .find(|e| !e.trim().is_empty())
}

/// Runs `editor` on `path` and waits for it. The editor is a command
/// line the user wrote (`code --wait`), run with `sh -c` as git runs
/// `core.editor`; the path travels as an argument, never inside the
/// command text.
///
/// # Errors
/// `sh` cannot be started.
pub fn run_editor(editor: &str, path: &Path) -> Result<ExitStatus, CliError> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(editor)
        .arg(path)
        .status()
        .map_err(|e| CliError::user(format!("cannot run the editor `{editor}`: {e}")))
}
