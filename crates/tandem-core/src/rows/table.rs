//! `tandem list`'s text, table or JSON, from rows: [`frame`].
//!
//! Both ends of the CLI's `list` use it. A running supervisor renders a
//! plain `tandem list` (or `list --json`) of one repository itself
//! ([`crate::protocol::Request::ListText`]): it holds the sessions, their
//! git facts and conflict marks already, so the client's process does no
//! more than send the view it wants (its terminal's width, whether in
//! colour, its home folder) and print the text. At 200 sessions that
//! takes the decoding of a ~260 KB answer, 200 `stat`s of PTY logs and
//! 200 liveness checks out of every `tandem list` process (issue 23:
//! ~8 ms of the client's CPU to ~2). When rows come from elsewhere too
//! (remote hosts, every repository, `--watch`), the CLI makes them and
//! renders them with the same [`frame`].

use std::borrow::Cow;
use std::io::Write;
use std::str::FromStr;

use super::columns;
use super::{Group, SessionRow};
pub use crate::model::{Frame, ListView, Sort};
use crate::text::visible;

impl FromStr for Sort {
    type Err = String;

    /// `created`, `age`, `name` or `priority`; else an error naming them.
    fn from_str(s: &str) -> Result<Sort, String> {
        match s {
            "created" => Ok(Sort::Created),
            "age" => Ok(Sort::Age),
            "name" => Ok(Sort::Name),
            "priority" => Ok(Sort::Priority),
            other => Err(format!("unknown sort `{}`; use one of age, name, priority, created", visible(other))),
        }
    }
}

/// The key of the table column `name` names: its JSON key or its header
/// (any case, spaces trimmed); `Err` with the names to use.
///
/// # Errors
/// An unknown name, with the known ones.
pub fn column_key(name: &str) -> Result<&'static str, String> {
    let wanted = name.trim().to_lowercase();
    let known = || columns::COLUMNS.iter().filter_map(|c| c.table.as_ref().map(|t| (c.key, t)));
    known().find(|(key, t)| *key == wanted || t.name == wanted).map(|(key, _)| key).ok_or_else(|| {
        let names: Vec<&str> = known().map(|(_, t)| t.name).collect();
        format!("unknown column `{}`; use some of {}", visible(name), names.join(", "))
    })
}

/// `rows` (oldest first) at `now` (Unix seconds) as `view` shows them:
/// filtered, ordered, then a table fitted to the width, the archived
/// table, or JSON. `stale`: conflict marks are being recomputed (said in
/// the CONFLICTS header). `notes` come first among the frame's notes
/// (made printable here); notes on merged pull requests follow.
#[must_use]
pub fn frame(rows: Vec<SessionRow>, now: i64, view: &ListView, stale: bool, notes: Vec<String>) -> Frame {
    let mut notes: Vec<String> = notes.iter().map(|n| visible(n).into_owned()).collect();
    let mut rows: Vec<SessionRow> = rows
        .into_iter()
        .filter(|r| {
            (view.statuses.is_empty() || view.statuses.contains(&r.meta.status))
                && (view.priorities.is_empty() || view.priorities.contains(&r.meta.priority))
                && (!view.pinned || r.meta.pinned)
        })
        .collect();
    order(&mut rows, view.sort);
    let mut text = String::new();
    if view.json {
        // Serialising these plain values cannot fail.
        text = serde_json::to_string_pretty(&columns::json(&rows, now)).unwrap_or_default();
        text.push('\n');
        return Frame { text, notes };
    }
    if rows.is_empty() {
        let filtered = !view.statuses.is_empty() || !view.priorities.is_empty() || view.pinned;
        let line = match (filtered, view.archived, view.all) {
            (true, _, _) => "no sessions match",
            (false, true, false) => "no archived sessions in this repository",
            (false, true, true) => "no archived sessions",
            (false, false, false) => "no sessions in this repository; start one with `tandem new`",
            (false, false, true) => "no sessions in any repository; start one with `tandem new`",
        };
        text.push_str(line);
        text.push('\n');
        return Frame { text, notes };
    }
    if view.archived {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = write_columns(&mut out, &columns::archived_table(&rows, now));
        text = String::from_utf8_lossy(&out).into_owned();
        return Frame { text, notes };
    }
    let rows = super::under_creators(rows);
    text = render(&rows, now, view, stale);
    for r in &rows {
        if r.pr.as_ref().is_some_and(|p| p.state == crate::ship::github::PrState::Merged) {
            notes.push(format!(
                "{}'s pull request #{} was merged; `tandem archive {}` puts it away",
                visible(&r.name),
                r.pr_number.unwrap_or_default(),
                visible(&r.name)
            ));
        }
    }
    Frame { text, notes }
}

/// The table of `rows`, fitted to `view.width`: the columns that matter
/// least are left out first, free text is cut with `…`, and no line is
/// longer than the width.
fn render(rows: &[SessionRow], now: i64, view: &ListView, stale: bool) -> String {
    let chosen: Vec<&'static str> = view.columns.iter().filter_map(|c| column_key(c).ok()).collect();
    let mut shown = columns::shown(rows);
    if !chosen.is_empty() {
        let all = columns::shown_all(rows);
        shown =
            chosen.iter().filter_map(|key| all.iter().position(|c| c.key == *key).map(|i| all[i].clone())).collect();
    }
    let home = view.home.as_deref().map(|h| h.trim_end_matches('/')).filter(|h| !h.is_empty());
    let mut cols: Vec<Col> = shown
        .into_iter()
        .map(|c| {
            let mut header = c.header.clone();
            if stale && c.key == "conflicts_with" {
                header.push_str(" (updating)");
            }
            let cells: Vec<String> = rows
                .iter()
                .map(|r| {
                    let cell = (c.column.cell)(r, now);
                    let cell = match c.key {
                        "path" => home_relative(&cell, home),
                        // A sub-session, right under its creator.
                        "name" if super::is_sub_session(r, rows) => format!("↳ {cell}"),
                        _ => cell,
                    };
                    visible(&cell).into_owned()
                })
                .collect();
            Col { key: c.key, keep: c.column.keep, cut: c.column.cut, header, cells, width: 0 }
        })
        .collect();
    for c in &mut cols {
        c.width = c.natural();
    }
    if let Some(max) = view.width {
        fit(&mut cols, max, chosen.is_empty());
    }
    let mut text = String::new();
    let paint = |code: Option<&str>, cell: &str, width: usize, last: bool| -> String {
        let cell = cut_to(cell, width);
        let pad = if last { 0 } else { width.saturating_sub(cell.chars().count()) };
        match code.filter(|_| view.colour) {
            Some(code) => format!("\x1b[{code}m{cell}\x1b[0m{}", " ".repeat(pad)),
            None => format!("{cell}{}", " ".repeat(pad)),
        }
    };
    let header: Vec<String> =
        cols.iter().enumerate().map(|(i, c)| paint(Some("1"), &c.header, c.width, i + 1 == cols.len())).collect();
    text.push_str(header.join("  ").trim_end());
    text.push('\n');
    for (n, row) in rows.iter().enumerate() {
        let line: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| paint(colour(c.key, row, &c.cells[n]), &c.cells[n], c.width, i + 1 == cols.len()))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// A column being fitted: its cells (escaped) and the width it gets.
struct Col {
    key: &'static str,
    keep: u8,
    cut: bool,
    header: String,
    cells: Vec<String>,
    width: usize,
}

impl Col {
    /// The width of its widest cell or header.
    fn natural(&self) -> usize {
        self.cells.iter().chain([&self.header]).map(|c| c.chars().count()).max().unwrap_or(0)
    }
}

/// Narrows `cols` to `max` characters a line: free-text columns are cut
/// to a readable width, then (when `drop`) the columns that matter least
/// are left out, then free text is cut further.
fn fit(cols: &mut Vec<Col>, max: usize, drop: bool) {
    let total = |cols: &[Col]| cols.iter().map(|c| c.width).sum::<usize>() + 2 * cols.len().saturating_sub(1);
    if total(cols) <= max {
        return;
    }
    for c in cols.iter_mut().filter(|c| c.cut) {
        c.width = c.width.min(if c.key == "state" { 36 } else { 24 });
    }
    while drop && total(cols) > max {
        let Some((i, _)) =
            cols.iter().enumerate().filter(|(_, c)| c.keep != columns::ALWAYS).min_by_key(|(_, c)| c.keep)
        else {
            break;
        };
        cols.remove(i);
    }
    // Then the free text, widest first, down to its header.
    while total(cols) > max {
        let Some(c) =
            cols.iter_mut().filter(|c| c.cut && c.width > c.header.chars().count().max(8)).max_by_key(|c| c.width)
        else {
            break;
        };
        c.width -= 1;
    }
}

/// `text` cut to `width` characters, the last one `…` when cut.
fn cut_to(text: &str, width: usize) -> Cow<'_, str> {
    if text.chars().count() <= width {
        Cow::Borrowed(text)
    } else if width == 0 {
        Cow::Borrowed("")
    } else {
        Cow::Owned(text.chars().take(width - 1).chain(['…']).collect())
    }
}

/// `path` under `home` (no trailing `/`; `None` for none) as `~/…`.
fn home_relative(path: &str, home: Option<&str>) -> String {
    match home {
        Some(home) => match path.strip_prefix(home) {
            Some(rest) if rest.starts_with('/') || rest.is_empty() => format!("~{rest}"),
            _ => path.to_owned(),
        },
        _ => path.to_owned(),
    }
}

/// The SGR colour of a cell, by what it says: the state by its group,
/// uncommitted files, commits ahead and behind, conflicts.
fn colour(key: &str, row: &SessionRow, cell: &str) -> Option<&'static str> {
    match key {
        "name" => Some("1"),
        "state" => Some(match row.group() {
            Group::NeedsInput => "1;33",
            Group::Running => "32",
            Group::Idle => "36",
            Group::Error => "31",
            Group::Done if row.state == "lost" => "31",
            Group::Done | Group::Archived => "2",
        }),
        "changed" => match row.changes() {
            Some((0, 0)) => Some("2"),
            Some(_) => Some("33"),
            None => Some("31"),
        },
        "base" => match (row.ahead(), row.behind()) {
            (Some(0), Some(0)) => Some("2"),
            (Some(_), Some(0)) => Some("32"),
            (Some(_), Some(_)) => Some("33"),
            _ => None,
        },
        "behind_remote" => row.facts.refs.behind_remote.filter(|b| *b > 0).map(|_| "33"),
        "conflicts_with" if cell != "-" => Some("31"),
        _ => None,
    }
}

/// Pinned first, then by `sort`, ties broken by creation order.
/// `rows` come oldest first; the sort is stable.
fn order(rows: &mut [SessionRow], sort: Sort) {
    if matches!(sort, Sort::Age) {
        // Newest first, also among sessions made in the same second.
        rows.reverse();
    }
    rows.sort_by(|a, b| {
        b.meta.pinned.cmp(&a.meta.pinned).then_with(|| match sort {
            Sort::Created => a.created_at.cmp(&b.created_at),
            Sort::Age => b.created_at.cmp(&a.created_at),
            Sort::Name => a.name.cmp(&b.name),
            Sort::Priority => a.meta.priority.cmp(&b.meta.priority),
        })
    });
}

/// Rows as left-aligned columns two spaces apart, the first row the
/// header. Cells hold titles, branches, agents' questions and messages,
/// pull request text: each is printed with control characters made
/// visible ([`visible`]).
///
/// # Errors
/// Writing to `out` failed.
pub fn write_columns(out: &mut impl Write, table: &[Vec<String>]) -> std::io::Result<()> {
    let table: Vec<Vec<Cow<'_, str>>> = table.iter().map(|row| row.iter().map(|c| visible(c)).collect()).collect();
    let Some(first) = table.first() else {
        return Ok(());
    };
    let widths: Vec<usize> =
        (0..first.len()).map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &table {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_clients_home_show_as_tilde_and_others_in_full() {
        assert_eq!(home_relative("/home/ann/w/a", Some("/home/ann")), "~/w/a");
        assert_eq!(home_relative("/home/ann", Some("/home/ann")), "~");
        assert_eq!(home_relative("/home/annie/w", Some("/home/ann")), "/home/annie/w");
        assert_eq!(home_relative("/srv/w", None), "/srv/w");
    }

    #[test]
    fn a_column_is_named_by_its_key_or_header_and_an_unknown_one_says_the_names() {
        assert_eq!(column_key(" NAME "), Ok("name"));
        let err = column_key("nope\x1b[2J").unwrap_err();
        assert!(err.starts_with("unknown column `nope\\e[2J`"), "{err}");
        assert!(err.contains("name"), "{err}");
        assert_eq!("age".parse::<Sort>(), Ok(Sort::Age));
        assert!("oldest".parse::<Sort>().unwrap_err().contains("use one of age, name"));
    }
}
