//! The plain data tandem's parts hand each other: a session's row, its
//! git facts, its pull request's status, a task, and what `rm`, `gc`,
//! `doctor` and conflict control report, and an error's kind and hints
//! as they cross the socket ([`error`]) (issue 18).
//!
//! These types are what the store reads and writes and what the
//! supervisor sends (`protocol`), so they live here, apart from
//! both: this module imports nothing from the rest of tandem-core (only
//! std and serde), and every other module may import it without making a
//! circle. Their serde shape is the wire's and the database's: change it
//! only with `protocol::PROTOCOL_VERSION` and a migration. The
//! modules that make them keep their old names as re-exports
//! (`store::Session`, `session::facts::GitFacts`, `sandbox::Mode`, …).

mod checkpoint;
pub mod error;
mod facts;
mod list;
mod pr;
mod reports;
mod row;
mod session;

pub use checkpoint::{Cause, Checkpoint};
pub use facts::{DiffStat, FactsSource, GitFacts, RefFacts, WatchReport, WorktreeFacts};
pub use list::{Frame, Group, ListView, Sort, Tally};
pub use pr::{Checks, PrState, PrStatus, Review};
pub use reports::{ConflictReport, Finding, GcReport, PairConflicts, RemoveReport, SessionConflicts};
pub use row::SessionRow;
pub(crate) use session::named_enum;
pub use session::{Activity, CheckResult, Meta, Priority, SandboxMode, Session, SessionState, Task, TaskStatus};
