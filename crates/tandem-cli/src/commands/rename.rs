use std::io::Write;

use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Rename a session: its name, its folder and its branch; the old name
/// keeps finding it
///
/// The folder keeps its name while the agent runs in it; a pushed branch
/// (one with an upstream, or on a remote) keeps its name unless --branch.
#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    /// The session's name (or an old name, its branch, its title)
    old: String,
    /// The new name
    new: String,
    /// Rename the branch even when it is pushed (the remote's copy keeps
    /// the old name)
    #[arg(long)]
    branch: bool,
}

pub fn run(cx: &Context, args: &RenameArgs) -> Result<(), CliError> {
    tandem_core::session::slugs::validate(&args.new)?;
    let tandem = cx.tandem()?;
    let session = tandem.resolve(&cx.cwd, Some(&args.old))?;
    let old = session.slug.clone();
    let renamed = tandem.rename(&session, &args.new, args.branch)?;
    for note in &renamed.notes {
        eprintln!("note: {}", visible(note));
    }
    let s = &renamed.session;
    writeln!(
        std::io::stdout().lock(),
        "renamed session {old} to {} (branch {}, folder {}); `{old}` still finds it",
        s.slug,
        visible(&s.branch),
        visible(&s.path.display().to_string())
    )?;
    Ok(())
}
