//! Integration tests: the real `tandem` binary against real temporary
//! repositories, real PTYs, a real supervisor and hosts, each test under
//! its own `TANDEM_HOME`.

mod common;

mod test_attach;
mod test_bad_input;
mod test_checkpoints;
mod test_checkpoints_agents;
mod test_checkpoints_attacks;
mod test_claude;
mod test_codex;
mod test_completions;
mod test_conflicts;
mod test_crash;
mod test_creating;
mod test_ending;
mod test_env;
mod test_error_kinds;
mod test_errors;
mod test_escaping;
mod test_fault_matrix;
mod test_first_day;
mod test_flood;
mod test_gemini;
mod test_github;
mod test_history;
mod test_host_binary;
mod test_host_versions;
mod test_lifecycle;
mod test_limits;
mod test_list_status;
mod test_listing;
mod test_mcp;
mod test_metadata;
mod test_names;
mod test_never_lose;
mod test_pool;
mod test_remote;
mod test_rows;
mod test_sandbox;
mod test_ship;
mod test_ship_races;
mod test_states;
mod test_supervisor;
mod test_tasks;
mod test_trust;
mod test_view;
mod test_watch_budget;
mod test_web_api;
mod test_web_attacks;
mod test_web_browser;
mod test_web_ops;
mod test_web_pages;
mod test_web_session;
mod test_web_turns;
