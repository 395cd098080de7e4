//! `tandem mcp`: tandem's tools for an agent CLI, as an MCP server on
//! stdin/stdout (crates/tandem-mcp, docs/mcp.md).

use crate::context::Context;
use crate::error::CliError;

/// Serve tandem's tools over MCP on stdin/stdout, for Claude Code, Codex
/// or Gemini CLI: make sessions, prompt them, read their state, history
/// and diff, answer their permission requests, start tasks
///
/// Sessions it makes from inside a session's agent are recorded as that
/// session's sub-sessions (`creator` in `tandem list --json`).
#[derive(clap::Args, Debug)]
pub struct McpArgs {}

pub fn run(cx: &Context, _args: &McpArgs) -> Result<(), CliError> {
    tandem_mcp::run(cx.tandem()?, cx.cwd.clone()).map_err(|e| CliError::user(e.to_string()))
}
