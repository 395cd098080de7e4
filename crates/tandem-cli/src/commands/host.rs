use crate::context::Context;
use crate::error::CliError;

/// Run a session's host (started by the supervisor; reads its spec on stdin)
#[derive(clap::Args, Debug)]
pub struct HostArgs {}

pub fn run(cx: &Context, _args: &HostArgs) -> Result<(), CliError> {
    Ok(tandem_core::host::main(&cx.paths)?)
}
