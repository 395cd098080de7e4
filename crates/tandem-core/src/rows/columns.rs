//! The column registry: every field of a [`SessionRow`] a front end
//! shows, once. Each [`Column`] has its JSON key (in `tandem list
//! --json`, and in the web API after it) and, when it is a column of
//! `tandem list`'s table, its header and cell; the order of [`COLUMNS`]
//! is the JSON's, each table column's [`TableColumn::at`] its place in
//! the table. Adding a column is one entry here (plus, when the row lacks
//! the fact it shows, one field of [`SessionRow`]).
//!
//! The shape follows worktrunk's `columns.rs`: the table, the JSON and
//! the view cannot disagree on what a field means, because each is
//! written once.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{SessionRow, truncate};
use crate::session::facts::DiffStat;
use crate::short_age as age;
use crate::store::{Priority, SessionState};

/// A field's JSON value, given the row and now (Unix seconds).
pub type JsonFn = for<'a> fn(&'a SessionRow, i64) -> Box<dyn erased_serde::Serialize + 'a>;

/// One field of the row.
pub struct Column {
    /// Its key in the JSON.
    pub key: &'static str,
    /// Its value in the JSON.
    pub json: JsonFn,
    /// Its column in `tandem list`'s table, when it has one.
    pub table: Option<TableColumn>,
}

/// A column of `tandem list`'s table.
pub struct TableColumn {
    /// Its one-word name, lowercase, for `tandem list --columns` (also the
    /// header, in capitals, when a row set would leave it out).
    pub name: &'static str,
    /// Its place, left to right (unique among the table's columns).
    pub at: u8,
    /// Its header given all rows shown; `None` leaves it out (TITLE when
    /// no session has a title, …).
    pub header: fn(&[SessionRow]) -> Option<String>,
    /// Its cell, given the row and now (Unix seconds). Cells are printed
    /// with control characters made visible by the front end.
    pub cell: fn(&SessionRow, i64) -> String,
    /// How long it stays when the table is too wide for the terminal:
    /// columns are left out lowest first (NAME and STATE never).
    pub keep: u8,
    /// Whether its cells may be cut (with `…`) to fit: free text (a
    /// title, a question, a pull request's line), never a name or a count.
    pub cut: bool,
}

/// Never left out to fit the width.
pub const ALWAYS: u8 = u8::MAX;

fn marks_of<'a>(r: &'a SessionRow, pick: fn(&'a crate::conflicts::SessionConflicts) -> &'a [String]) -> &'a [String] {
    r.marks.as_ref().map_or(&[], pick)
}

/// Every field, in the JSON's order.
pub const COLUMNS: &[Column] = &[
    Column {
        key: "name",
        json: |r, _| Box::new(&r.name),
        table: Some(TableColumn {
            name: "name",
            at: 2,
            header: |_| Some("NAME".into()),
            cell: |r, _| if r.meta.pinned { format!("{} (pinned)", r.name) } else { r.name.clone() },
            keep: ALWAYS,
            cut: false,
        }),
    },
    Column {
        key: "repo",
        json: |r, _| Box::new(&r.repo),
        table: Some(TableColumn {
            name: "repo",
            at: 1,
            // Only when the rows say which repository they are of (`tandem
            // list --all`).
            header: |rows| rows.iter().any(|r| r.repo.is_some()).then(|| "REPO".into()),
            cell: |r, _| repo_name(r),
            keep: 95,
            cut: false,
        }),
    },
    Column {
        key: "host",
        json: |r, _| Box::new(&r.host),
        table: Some(TableColumn {
            name: "host",
            at: 0,
            // Only when a remote host is registered (`tandem remote
            // add`): its rows then say where each session runs, `local`
            // for this machine.
            header: |rows| rows.iter().any(|r| r.host.is_some()).then(|| "HOST".into()),
            cell: |r, _| r.host.clone().unwrap_or_else(|| "local".into()),
            keep: 96,
            cut: false,
        }),
    },
    Column { key: "last_seen", json: |r, _| Box::new(r.last_seen), table: None },
    Column { key: "id", json: |r, _| Box::new(&r.id), table: None },
    Column {
        key: "branch",
        json: |r, _| Box::new(&r.branch),
        table: Some(TableColumn {
            name: "branch",
            at: 3,
            header: |_| Some("BRANCH".into()),
            cell: |r, _| r.branch.clone(),
            keep: 40,
            cut: false,
        }),
    },
    Column {
        key: "path",
        json: |r, _| Box::new(&r.path),
        table: Some(TableColumn {
            name: "path",
            at: 18,
            header: |_| Some("PATH".into()),
            cell: |r, _| r.path.display().to_string(),
            keep: 5,
            cut: false,
        }),
    },
    Column {
        key: "agent",
        json: |r, _| Box::new(&r.agent),
        table: Some(TableColumn {
            name: "agent",
            at: 5,
            header: |_| Some("AGENT".into()),
            cell: |r, _| truncate(&r.agent, 24),
            keep: 20,
            cut: true,
        }),
    },
    Column {
        key: "state",
        json: |r, _| Box::new(&r.state),
        table: Some(TableColumn {
            name: "state",
            at: 6,
            header: |_| Some("STATE".into()),
            cell: |r, _| match &r.problem {
                Some(problem) => format!("{}: {problem}", r.state_text()),
                None => r.state_text(),
            },
            keep: ALWAYS,
            cut: true,
        }),
    },
    Column { key: "state_inferred", json: |r, _| Box::new(r.inferred), table: None },
    Column { key: "asking", json: |r, _| Box::new(&r.asking), table: None },
    Column { key: "agent_session", json: |r, _| Box::new(&r.agent_session), table: None },
    Column { key: "exit_code", json: |r, _| Box::new(r.exit_code), table: None },
    Column { key: "problem", json: |r, _| Box::new(&r.problem), table: None },
    Column { key: "dirty", json: |r, _| Box::new(r.facts.dirty()), table: None },
    Column {
        key: "changed",
        json: |r, _| Box::new(r.facts.worktree.changed),
        table: Some(TableColumn {
            name: "uncommitted",
            at: 9,
            header: |_| Some("UNCOMMITTED".into()),
            cell: |r, _| changes_text(r),
            keep: 80,
            cut: false,
        }),
    },
    Column { key: "untracked", json: |r, _| Box::new(r.facts.worktree.untracked), table: None },
    Column { key: "facts", json: |r, _| Box::new(r.facts.source.as_str()), table: None },
    Column { key: "ahead", json: |r, _| Box::new(r.ahead()), table: None },
    Column { key: "behind", json: |r, _| Box::new(r.behind()), table: None },
    Column {
        key: "base",
        json: |r, _| Box::new(&r.base),
        table: Some(TableColumn {
            name: "commits",
            at: 11,
            header: |_| Some("COMMITS VS BASE".into()),
            cell: |r, _| match (r.ahead(), r.behind()) {
                (Some(a), Some(b)) => ahead_behind(a, b),
                _ => "?".to_owned(),
            },
            keep: 70,
            cut: false,
        }),
    },
    Column { key: "base_commit", json: |r, _| Box::new(&r.base_commit), table: None },
    Column { key: "remote_base", json: |r, _| Box::new(&r.facts.refs.remote_base), table: None },
    Column {
        key: "behind_remote",
        json: |r, _| Box::new(r.facts.refs.behind_remote),
        table: Some(TableColumn {
            name: "remote",
            at: 12,
            // Headed by the remote's default branch, when a session has one.
            header: |rows| {
                rows.iter()
                    .find_map(|r| r.facts.refs.remote_base.as_deref())
                    .map(|b| format!("VS {}", b.to_uppercase()))
            },
            cell: |r, _| r.facts.refs.behind_remote.map_or_else(|| "?".to_owned(), |b| ahead_behind(0, b)),
            keep: 35,
            cut: false,
        }),
    },
    Column {
        key: "diffstat",
        json: |r, _| Box::new(r.diffstat()),
        table: Some(TableColumn {
            name: "lines",
            at: 10,
            header: |_| Some("LINES".into()),
            cell: |r, _| match r.diffstat() {
                d if d == DiffStat::default() => "-".to_owned(),
                d => format!("+{} -{}", d.insertions, d.deletions),
            },
            keep: 45,
            cut: false,
        }),
    },
    Column {
        key: "last_activity",
        json: |r, _| Box::new(r.last_activity),
        table: Some(TableColumn {
            name: "active",
            at: 16,
            header: |_| Some("ACTIVE".into()),
            cell: |r, now| format!("{} ago", age(now - r.last_activity)),
            keep: 50,
            cut: false,
        }),
    },
    Column { key: "pr_number", json: |r, _| Box::new(r.pr_number), table: None },
    Column {
        key: "pr",
        json: |r, _| Box::new(&r.pr),
        table: Some(TableColumn {
            name: "pr",
            at: 13,
            header: |rows| rows.iter().any(|r| r.pr_number.is_some()).then(|| "PR".into()),
            cell: |r, _| r.pr_text().unwrap_or_else(|| "-".to_owned()),
            keep: 55,
            cut: true,
        }),
    },
    Column { key: "review_of", json: |r, _| Box::new(&r.review_of), table: None },
    Column { key: "creator", json: |r, _| Box::new(&r.creator), table: None },
    Column { key: "overlaps_with", json: |r, _| Box::new(marks_of(r, |m| &m.overlaps_with)), table: None },
    Column {
        key: "conflicts_with",
        json: |r, _| Box::new(marks_of(r, |m| &m.conflicts_with)),
        table: Some(TableColumn {
            name: "conflicts",
            at: 14,
            header: |rows| rows.iter().any(|r| r.conflict_text().is_some()).then(|| "CONFLICTS".into()),
            cell: |r, _| r.conflict_text().unwrap_or_else(|| "-".to_owned()),
            keep: 65,
            cut: true,
        }),
    },
    Column {
        key: "base_conflicts",
        json: |r, _| Box::new(r.marks.as_ref().and_then(|m| m.base_conflicts.as_deref())),
        table: None,
    },
    Column { key: "outside_owned", json: |r, _| Box::new(marks_of(r, |m| &m.outside_owned)), table: None },
    Column { key: "included", json: |r, _| Box::new(&r.included), table: None },
    Column { key: "archive_ref", json: |r, _| Box::new(&r.archive_ref), table: None },
    Column { key: "summary", json: |r, _| Box::new(&r.summary), table: None },
    Column { key: "archived_at", json: |r, _| Box::new(r.archived_at), table: None },
    Column {
        key: "title",
        json: |r, _| Box::new(&r.meta.title),
        table: Some(TableColumn {
            name: "title",
            at: 4,
            header: |rows| rows.iter().any(|r| r.meta.title.is_some()).then(|| "TITLE".into()),
            cell: |r, _| truncate(r.meta.title.as_deref().unwrap_or(""), 32),
            keep: 60,
            cut: true,
        }),
    },
    Column {
        key: "priority",
        json: |r, _| Box::new(r.meta.priority),
        table: Some(TableColumn {
            name: "priority",
            at: 8,
            header: |rows| rows.iter().any(|r| r.meta.priority != Priority::None).then(|| "PRIORITY".into()),
            cell: |r, _| r.meta.priority.as_str().to_owned(),
            keep: 28,
            cut: false,
        }),
    },
    Column {
        key: "status",
        json: |r, _| Box::new(r.meta.status),
        table: Some(TableColumn {
            name: "status",
            at: 7,
            header: |_| Some("STATUS".into()),
            cell: |r, _| r.meta.status.as_str().to_owned(),
            keep: 30,
            cut: false,
        }),
    },
    Column { key: "pinned", json: |r, _| Box::new(r.meta.pinned), table: None },
    Column { key: "created_at", json: |r, _| Box::new(r.created_at), table: None },
    Column {
        key: "age_seconds",
        json: |r, now| Box::new(now - r.created_at),
        table: Some(TableColumn {
            name: "age",
            at: 17,
            header: |_| Some("AGE".into()),
            cell: |r, now| age(now - r.created_at),
            keep: 10,
            cut: false,
        }),
    },
    Column {
        key: "sandbox",
        json: |r, _| Box::new(r.sandbox),
        table: Some(TableColumn {
            name: "sandbox",
            at: 15,
            header: |rows| rows.iter().any(|r| r.sandbox.is_some()).then(|| "SANDBOX".into()),
            cell: |r, _| r.sandbox.map_or("-", crate::sandbox::Mode::as_str).to_owned(),
            keep: 15,
            cut: false,
        }),
    },
    // What front ends group and say by (the agent view, the dashboard),
    // so none works it out again.
    Column { key: "group", json: |r, _| Box::new(r.group().key()), table: None },
    Column { key: "state_text", json: |r, _| Box::new(r.state_text()), table: None },
    Column { key: "awaits_permission", json: |r, _| Box::new(r.awaits_permission()), table: None },
    Column { key: "unsaved", json: |r, _| Box::new(r.unsaved()), table: None },
    Column { key: "last_message", json: |r, _| Box::new(&r.last_message), table: None },
    // Unix seconds since when it is in `state`; the state without the
    // question (for front ends that show it apart); the pull request and
    // the uncommitted files in the table's words.
    Column { key: "since", json: |r, _| Box::new(r.since), table: None },
    Column { key: "state_word", json: |r, _| Box::new(r.state_word()), table: None },
    Column { key: "pr_text", json: |r, _| Box::new(r.pr_text()), table: None },
    Column { key: "changes_text", json: |r, _| Box::new(changes_text(r)), table: None },
];

/// Uncommitted files in words: `clean`, `3 changed`, `1 new`, `3
/// changed, 1 new`; `?` when the worktree is gone.
#[must_use]
pub fn changes_text(r: &SessionRow) -> String {
    match r.changes() {
        None => "?".to_owned(),
        Some((0, 0)) => "clean".to_owned(),
        Some((c, 0)) => format!("{c} changed"),
        Some((0, u)) => format!("{u} new"),
        Some((c, u)) => format!("{c} changed, {u} new"),
    }
}

/// Commits ahead of and behind a base in words: `2 ahead, 1 behind`,
/// `2 ahead`, `1 behind`, `up to date`.
#[must_use]
pub fn ahead_behind(ahead: u32, behind: u32) -> String {
    match (ahead, behind) {
        (0, 0) => "up to date".to_owned(),
        (a, 0) => format!("{a} ahead"),
        (0, b) => format!("{b} behind"),
        (a, b) => format!("{a} ahead, {b} behind"),
    }
}

/// The last part of the row's repository folder (`-` when unknown).
fn repo_name(r: &SessionRow) -> String {
    r.repo.as_deref().map_or_else(
        || "-".to_owned(),
        |p| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned()),
    )
}

/// A row as its JSON object: every [`COLUMNS`] key, in order.
pub struct Json<'a> {
    pub row: &'a SessionRow,
    /// Unix seconds.
    pub now: i64,
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COLUMNS.len()))?;
        for column in COLUMNS {
            map.serialize_entry(column.key, &*(column.json)(self.row, self.now))?;
        }
        map.end()
    }
}

/// Rows as the JSON array `tandem list --json` prints.
#[must_use]
pub fn json(rows: &[SessionRow], now: i64) -> Vec<Json<'_>> {
    rows.iter().map(|row| Json { row, now }).collect()
}

/// A column of `tandem list`'s table as shown for some rows: its JSON
/// key (what `--columns` names), its entry and its header.
#[derive(Clone)]
pub struct Shown {
    pub key: &'static str,
    pub column: &'static TableColumn,
    pub header: String,
}

/// The table's columns for `rows`, left to right: those whose header is
/// `None` for these rows are left out.
#[must_use]
pub fn shown(rows: &[SessionRow]) -> Vec<Shown> {
    let mut columns: Vec<Shown> = COLUMNS
        .iter()
        .filter_map(|c| c.table.as_ref().map(|t| (c.key, t)))
        .filter_map(|(key, column)| (column.header)(rows).map(|header| Shown { key, column, header }))
        .collect();
    columns.sort_by_key(|c| c.column.at);
    columns
}

/// Every column of the table, left to right, also those [`shown`] would
/// leave out for these rows (headed by their name then).
#[must_use]
pub fn shown_all(rows: &[SessionRow]) -> Vec<Shown> {
    let mut columns: Vec<Shown> = COLUMNS
        .iter()
        .filter_map(|c| c.table.as_ref().map(|t| (c.key, t)))
        .map(|(key, column)| Shown {
            key,
            column,
            header: (column.header)(rows).unwrap_or_else(|| column.name.to_uppercase()),
        })
        .collect();
    columns.sort_by_key(|c| c.column.at);
    columns
}

/// `tandem list`'s table of live sessions: the header, then one line of
/// cells per row, in [`shown`]'s columns.
#[must_use]
pub fn table(rows: &[SessionRow], now: i64) -> Vec<Vec<String>> {
    let columns = shown(rows);
    let mut lines = vec![columns.iter().map(|c| c.header.clone()).collect()];
    lines.extend(rows.iter().map(|row| columns.iter().map(|c| (c.column.cell)(row, now)).collect()));
    lines
}

/// `tandem list --archived`'s table: name, branch, when archived, commits
/// against the base, whether a snapshot was kept, the summary's first 80
/// characters.
#[must_use]
pub fn archived_table(rows: &[SessionRow], now: i64) -> Vec<Vec<String>> {
    let mut table =
        vec![["NAME", "BRANCH", "ARCHIVED", "COMMITS VS BASE", "SNAPSHOT", "SUMMARY"].map(str::to_owned).to_vec()];
    for r in rows {
        let counts = match (r.ahead(), r.behind()) {
            (Some(a), Some(b)) => ahead_behind(a, b),
            _ => "branch gone".to_owned(),
        };
        table.push(vec![
            r.name.clone(),
            r.branch.clone(),
            r.archived_at.map_or_else(|| "?".to_owned(), |t| format!("{} ago", age(now - t))),
            counts,
            if r.archive_ref.is_some() { "yes" } else { "-" }.to_owned(),
            truncate(&r.summary.as_deref().unwrap_or("").replace('\n', " "), 80),
        ]);
    }
    table
}

/// Whether the row is of an archived session.
#[must_use]
pub fn archived(row: &SessionRow) -> bool {
    row.state == SessionState::Archived.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_table_places_are_unique() {
        let mut keys: Vec<&str> = COLUMNS.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), COLUMNS.len(), "a JSON key is used twice");
        let mut places: Vec<u8> = COLUMNS.iter().filter_map(|c| c.table.as_ref().map(|t| t.at)).collect();
        places.sort_unstable();
        assert_eq!(places, (0..u8::try_from(places.len()).unwrap_or(0)).collect::<Vec<_>>(), "places run 0, 1, …");
    }

    #[test]
    fn optional_columns_show_only_when_a_row_has_them() {
        let plain = SessionRow { name: "a".into(), state: "running".into(), ..SessionRow::default() };
        let header = |rows: &[SessionRow]| table(rows, 0)[0].join(" ");
        assert_eq!(
            header(std::slice::from_ref(&plain)),
            "NAME BRANCH AGENT STATE STATUS UNCOMMITTED LINES COMMITS VS BASE ACTIVE AGE PATH"
        );
        let mut titled = plain.clone();
        titled.meta.title = Some("Fix it".into());
        titled.pr_number = Some(3);
        assert_eq!(
            header(&[plain, titled]),
            "NAME BRANCH TITLE AGENT STATE STATUS UNCOMMITTED LINES COMMITS VS BASE PR ACTIVE AGE PATH"
        );
    }
}
