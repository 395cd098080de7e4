use std::io::Write;

use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Which sessions touch the same files, and whose work would conflict if
/// merged, with each other or into their base, before anyone merges
///
/// Committed and uncommitted work count (uncommitted work through a
/// snapshot; no worktree is changed). Computed with one `git merge-tree`
/// for all pairs; answers are cached by the commits they came from.
#[derive(clap::Args, Debug)]
pub struct ConflictsArgs {
    /// Everything as JSON: per session what it touched, its conflicts with
    /// its base and paths outside its owned ones; every pair that
    /// overlaps or conflicts
    #[arg(long)]
    json: bool,
    /// Compute everything again instead of reusing cached answers
    #[arg(long)]
    fresh: bool,
}

pub fn run(cx: &Context, args: &ConflictsArgs) -> Result<(), CliError> {
    let foreign = foreign_sides(cx)?;
    let report = cx.tandem()?.conflicts_with(&cx.cwd, args.fresh, foreign)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if report.sessions.is_empty() {
        writeln!(out, "no live sessions in this repository")?;
        return Ok(());
    }
    let width = report.pairs.iter().map(|p| p.a.chars().count() + p.b.chars().count() + 3).max().unwrap_or(0);
    let width = report
        .sessions
        .iter()
        .map(|s| s.name.chars().count() + s.base.chars().count() + 3)
        .max()
        .unwrap_or(0)
        .max(width);
    let mut conflicting = 0;
    for p in &report.pairs {
        let who = format!("{} ↔ {}", p.a, p.b);
        let line = match &p.conflicts {
            Some(files) => {
                conflicting += 1;
                let overlap =
                    if p.overlap.is_empty() { String::new() } else { format!("; both touch {}", list(&p.overlap)) };
                format!("would conflict in {}{overlap}", list(files))
            }
            None => format!("both touch {}; merges cleanly", list(&p.overlap)),
        };
        writeln!(out, "{:<width$}  {line}", visible(&who))?;
    }
    for s in &report.sessions {
        if let Some(files) = &s.base_conflicts {
            let who = visible(&format!("{} → {}", s.name, s.base)).into_owned();
            writeln!(
                out,
                "{who:<width$}  would conflict in {}; `tandem sync {}` resolves it early",
                list(files),
                s.name
            )?;
        }
        if !s.outside_owned.is_empty() {
            writeln!(out, "{:<width$}  changed files outside its owned paths: {}", s.name, list(&s.outside_owned))?;
        }
    }
    let against_base = report.sessions.iter().filter(|s| s.base_conflicts.is_some()).count();
    writeln!(
        out,
        "{} session(s), {} pair(s) checked: {conflicting} would conflict, {} overlap cleanly; {against_base} would conflict with their base",
        report.sessions.len(),
        report.pairs_checked,
        report.pairs.len() - conflicting,
    )?;
    Ok(())
}

/// Up to five paths, control characters in them made visible (a path is
/// whatever the agent named its file).
fn list(paths: &[String]) -> String {
    const MAX: usize = 5;
    let mut text = paths.iter().take(MAX).map(|p| visible(p)).collect::<Vec<_>>().join(", ");
    if paths.len() > MAX {
        text.push_str(&format!(" and {} more", paths.len() - MAX));
    }
    text
}

/// Other hosts' live sessions of this repository (those whose base commit
/// this repository has), each fetched here: their branch, or a snapshot
/// of their uncommitted work on top. A host that does not answer is left
/// out, with a note.
fn foreign_sides(cx: &Context) -> Result<Vec<tandem_core::protocol::ForeignSide>, CliError> {
    if !tandem_core::remote::Registry::new(&cx.paths).any() {
        return Ok(Vec::new());
    }
    let (repo, _) = cx.repo()?;
    let (rows, notes) = crate::commands::remote::remote_rows(&cx.paths, crate::commands::remote::timeout(cx), false);
    for note in notes {
        crate::context::note!("{note}; its sessions are left out");
    }
    let mut sides = Vec::new();
    for row in rows {
        let live = !matches!(row.state.as_str(), "unreachable" | "archived" | "creating");
        let ours = tandem_core::git::resolve_commit(&repo.root, &format!("{}^{{commit}}", row.base_commit))
            .ok()
            .flatten()
            .is_some();
        let Some(host) = row.host.clone() else { continue };
        if !live || !ours {
            continue;
        }
        match crate::commands::fetch::fetch(cx, &host, &row.name) {
            Ok(fetched) => sides.push(tandem_core::protocol::ForeignSide {
                name: format!("{host}:{}", row.name),
                state: fetched.wip.map_or(fetched.head, |(_, commit)| commit),
                base: row.base.clone(),
                base_commit: row.base_commit.clone(),
            }),
            Err(e) => crate::context::note!("{host}:{} is left out: {e}", visible(&row.name)),
        }
    }
    Ok(sides)
}
