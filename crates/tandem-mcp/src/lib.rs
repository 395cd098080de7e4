//! `tandem mcp`: tandem as an MCP server over stdio (docs/mcp.md), so an
//! agent CLI (Claude Code, Codex, Gemini CLI) can make sessions, prompt
//! them, read their history and diff, answer their permission requests
//! and start tasks.
//!
//! Every tool is a thin call into [`tandem_core::client::Tandem`], and
//! answers JSON text in the shapes the CLI prints: `tandem list --json`
//! rows ([`tandem_core::rows::columns::json`]), `tandem history --json`
//! events, `tandem diff --json` ([`tandem_core::ship::diff::report`]),
//! `tandem conflicts --json`, `tandem task show --json`
//! ([`tandem_core::tasks::report`]). A refused call is a tool error whose
//! text is the CLI's error message.
//!
//! Sessions made through the server are tagged with their creator: the
//! session whose agent started the server (`TANDEM_SESSION_ID`, else
//! `TANDEM_SESSION`, which tandem sets in every agent's environment).

mod tools;

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use tandem_core::client::Tandem;

pub use tools::Server;

/// Why the server stopped other than at the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The async runtime could not be made.
    #[error("cannot start the MCP server's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The client's first messages were not an MCP handshake.
    #[error("the MCP handshake on stdin/stdout failed: {0}")]
    Handshake(String),
    /// The connection broke while serving.
    #[error("the MCP connection failed: {0}")]
    Serve(String),
}

/// Serves MCP on stdin/stdout until the client closes stdin. `cwd`: where
/// names are looked up and sessions made when a tool is given no `repo`.
///
/// # Errors
/// [`McpError`]; a tool's own failure is answered to the client, never
/// returned here.
pub fn run(tandem: Tandem, cwd: PathBuf) -> Result<(), McpError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(McpError::Runtime)?;
    let server = Handler(Arc::new(Server::new(tandem, cwd, creator_from_env())));
    runtime.block_on(async move {
        let service = server.serve(rmcp::transport::stdio()).await.map_err(|e| McpError::Handshake(e.to_string()))?;
        service.waiting().await.map_err(|e| McpError::Serve(e.to_string()))?;
        Ok(())
    })
}

/// The session that runs this server, from the environment tandem gives
/// every agent: its id (`TANDEM_SESSION_ID`), else its name
/// (`TANDEM_SESSION`, looked up when a session is made).
fn creator_from_env() -> Option<tools::Creator> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    var("TANDEM_SESSION_ID").map(tools::Creator::Id).or_else(|| var("TANDEM_SESSION").map(tools::Creator::Name))
}

/// The rmcp handler: each request runs [`Server`]'s blocking call on
/// tokio's blocking pool.
#[derive(Clone)]
struct Handler(Arc<Server>);

impl Handler {
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Server) -> T + Send + 'static) -> Result<T, ErrorData> {
        let server = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f(&server))
            .await
            .map_err(|e| ErrorData::internal_error(format!("the tool's call failed: {e}"), None))
    }
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("tandem", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "tandem runs AI coding agents side by side, each in its own git worktree and branch. \
                 Make a session with new_session, follow it with session_state and get_history, \
                 read its work with get_diff, answer its permission requests with approve/deny.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let args = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let answer = self.blocking(move |server| server.call(&name, args)).await?;
        Ok(match answer {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(text) => CallToolResult::error(vec![ContentBlock::text(text)]),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let listed = self.blocking(Server::history_resources).await?;
        let resources = listed
            .map_err(|e| ErrorData::internal_error(e, None))?
            .into_iter()
            .map(|r| {
                Resource::new(r.uri, r.name).with_description(r.description).with_mime_type("application/x-ndjson")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.clone();
        let text = self.blocking(move |server| server.read_history_resource(&uri)).await?;
        let text = text.map_err(|e| ErrorData::resource_not_found(e, None))?;
        let contents = ResourceContents::TextResourceContents {
            uri: request.uri,
            mime_type: Some("application/x-ndjson".into()),
            text,
            meta: None,
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}
