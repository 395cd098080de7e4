//! Drawing the agent view with ratatui: a header, the sessions grouped by
//! what they need (two lines each), the selected session's live screen
//! and recent history, and a footer with the keys. Wide terminals (≥ 120
//! columns) get the list and the preview side by side, unless the
//! selected agent's screen is wider than that preview; narrower ones
//! stack them. The preview is the agent's screen at the agent's width:
//! a row wider than the preview wraps, nothing is cut off. The selected
//! row is marked with `>` and reverse video, readable with or without
//! colour. Colour is left out entirely when `NO_COLOR` is set.
//! Every text from a session (title, question, message, history, branch,
//! pull request) is drawn through [`visible`], control characters shown.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::view::model::{App, Group, Mode, NewForm, SessionRow, Turns, relative};
use tandem_core::short_age as age;
use tandem_core::text::visible;

/// What the view shows beside the app state.
pub struct Scene<'a> {
    /// The header's title: the repository (or `all repositories`).
    pub title: &'a str,
    /// The selected session's screen, if it has one.
    pub preview: Option<&'a vt100::Screen>,
    /// Its recent history: (kind, text), oldest first.
    pub history: &'a [(String, String)],
    /// Unix seconds, for "how long in this state".
    pub now: i64,
    /// Whether to use colour (`NO_COLOR` unset).
    pub color: bool,
}

/// Styles that vanish without colour.
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color { Style::default().fg(color) } else { Style::default() }
    }

    fn dim(&self) -> Style {
        if self.color { Style::default().fg(Color::DarkGray) } else { Style::default() }
    }

    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// The selected row: reverse video over the terminal's own colours,
    /// so it reads on any background, with or without colour.
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    fn group(&self, group: Group) -> Style {
        match group {
            Group::NeedsInput => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Group::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Group::Running => self.fg(Color::Green).add_modifier(Modifier::BOLD),
            Group::Idle => self.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Group::Done | Group::Archived => self.dim().add_modifier(Modifier::BOLD),
        }
    }
}

/// Draws the whole view.
pub fn draw(frame: &mut Frame<'_>, app: &App, data: &Scene<'_>) {
    let theme = Theme { color: data.color };
    let area = frame.area();
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(2)]).areas(area);
    draw_header(frame, header, app, data, &theme);
    // The side-by-side preview gets 45% of the width; an agent screen
    // wider than that stacks the two, so the preview has the full width.
    let agent_cols = data.preview.map_or(0, |s| s.size().1);
    let (list, preview) = if body.width >= 120 && agent_cols <= body.width * 45 / 100 {
        let [list, preview] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        (list, preview)
    } else {
        let [list, preview] = Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        (list, preview)
    };
    draw_list(frame, list, app, data, &theme);
    draw_preview(frame, preview, app, data, &theme);
    draw_footer(frame, footer, app, &theme);
    match &app.mode {
        Mode::Help => draw_help(frame, area),
        Mode::New(form) => draw_form(frame, area, form, &theme),
        Mode::Confirm { question, .. } => draw_popup(frame, area, "confirm", question),
        Mode::Turns(turns) => {
            draw_turns(frame, body, turns, data.now, &theme);
            if let Some((question, _)) = &turns.confirm {
                draw_popup(frame, area, "confirm", question);
            }
        }
        Mode::Normal | Mode::Filter | Mode::Send { .. } | Mode::Rename { .. } => {}
    }
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, app: &App, data: &Scene<'_>, theme: &Theme) {
    let waiting = app.rows().iter().filter(|r| r.group() == Group::NeedsInput).count();
    let live = app.rows().iter().filter(|r| r.group() != Group::Archived).count();
    let mut spans = vec![
        Span::styled("tandem", theme.bold()),
        Span::raw(format!(" · {} · {}", visible(data.title), count(live, "session"))),
    ];
    if waiting > 0 {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(
            format!("{waiting} need{} input", if waiting == 1 { "s" } else { "" }),
            theme.group(Group::NeedsInput),
        ));
    }
    if !app.filter.is_empty() {
        spans.push(Span::styled(format!(" · filter: {}", app.filter), theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

fn draw_list(frame: &mut Frame<'_>, area: Rect, app: &App, data: &Scene<'_>, theme: &Theme) {
    let visible = app.visible();
    let selected = app.selected_row().map(|r| r.id.clone());
    let width = usize::from(area.width);
    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut selected_line = 0;
    let selected_group = app.selected_row().map(SessionRow::group);
    // `--all`: each row's repository, as a column of its own.
    let repo_width = app.repos.values().map(|r| tandem_core::text::visible(r).chars().count()).max().unwrap_or(0);
    // With a remote host's sessions among the rows: each row's host
    // (`local` for this machine's), as `tandem list` shows it.
    let host_of = |row: &SessionRow| -> String {
        row.host.as_deref().map_or_else(|| "local".to_owned(), |h| tandem_core::text::visible(h).into_owned())
    };
    let host_width = if app.rows().iter().any(|r| r.host.is_some()) {
        app.rows().iter().map(|r| host_of(r).chars().count()).max().unwrap_or(0)
    } else {
        0
    };
    if repo_width > 0 || host_width > 0 {
        let mut header = String::from("  ");
        if host_width > 0 {
            header.push_str(&format!("{:<host_width$}  ", "HOST"));
        }
        if repo_width > 0 {
            header.push_str(&format!("{:<repo_width$}  ", "REPO"));
        }
        header.push_str("SESSION");
        lines.push(Line::styled(header, theme.dim()));
    }
    for group in Group::ALL {
        let rows: Vec<&&SessionRow> = visible.iter().filter(|r| r.group() == group).collect();
        if rows.is_empty() {
            continue;
        }
        let mut header = vec![Span::styled(format!("{} ({})", group.title(), rows.len()), theme.group(group))];
        if selected_group == Some(group) {
            let offer = if group == Group::Archived { "  D: remove all" } else { "  X: stop all · D: remove all" };
            header.push(Span::styled(offer, theme.dim()));
        }
        lines.push(Line::from(header));
        for row in rows {
            let is_selected = selected.as_deref() == Some(row.id.as_str());
            if is_selected {
                selected_line = lines.len();
            }
            let (mut first, second) = row_lines(row, data.now, width, theme);
            if repo_width > 0 {
                let repo =
                    app.repos.get(&row.id).map_or_else(String::new, |r| tandem_core::text::visible(r).into_owned());
                first.spans.insert(0, Span::styled(format!("{repo:<repo_width$}  "), theme.dim()));
            }
            if host_width > 0 {
                first.spans.insert(0, Span::styled(format!("{:<host_width$}  ", host_of(row)), theme.dim()));
            }
            if is_selected {
                // One style for the whole row: no grey on grey.
                for span in &mut first.spans {
                    span.style = theme.selected();
                }
                first.spans.insert(0, Span::styled("> ", theme.selected()));
            } else {
                first.spans.insert(0, Span::raw("  "));
            }
            lines.push(first);
            lines.extend(second);
        }
    }
    if !app.show_archived && app.archived() > 0 {
        lines.push(Line::styled(format!("{} archived (A to show)", app.archived()), theme.dim()));
    }
    if lines.is_empty() {
        let text = if app.filter.is_empty() {
            "No sessions yet. Press c to start one."
        } else {
            "No session matches the filter (Esc clears it)."
        };
        lines.push(Line::styled(text, theme.dim()));
    }
    // Keep the selection in sight.
    let height = usize::from(area.height);
    let scroll = (selected_line + 2).saturating_sub(height);
    frame.render_widget(Paragraph::new(lines).scroll((u16::try_from(scroll).unwrap_or(0), 0)), area);
}

/// A session's lines: what it is and where it stands; then, if it has
/// any, its title and what it asks or last said.
fn row_lines<'a>(row: &'a SessionRow, now: i64, width: usize, theme: &Theme) -> (Line<'a>, Option<Line<'a>>) {
    let marker = match row.group() {
        Group::NeedsInput => Span::styled("! ", theme.group(Group::NeedsInput)),
        Group::Error => Span::styled("✗ ", theme.group(Group::Error)),
        Group::Running => Span::styled("● ", theme.group(Group::Running)),
        Group::Idle => Span::styled("○ ", theme.group(Group::Idle)),
        Group::Done | Group::Archived => Span::styled("· ", theme.dim()),
    };
    // The words `tandem list` uses; the question is on the second line.
    let mut state = row.state_word();
    state.push(' ');
    state.push_str(&age(now - row.since));
    let mut facts = vec![row.agent.clone(), row.branch.clone()];
    if row.group() == Group::Archived {
        // First, where it cannot be cut off.
        facts.insert(0, "a: restore".to_owned());
    }
    if let Some(mode) = row.sandbox {
        facts.push(format!("sandbox: {mode}"));
    }
    if let (Some(ahead), Some(behind)) = (row.ahead(), row.behind()) {
        facts.push(format!("↑{ahead} ↓{behind}"));
    }
    match row.changes() {
        Some((0, 0)) => {}
        Some((changed, untracked)) => facts.push(format!("✎{}", changed + untracked)),
        None => facts.push("?".to_owned()),
    }
    let diff = row.diffstat();
    if diff.insertions + diff.deletions > 0 {
        facts.push(format!("+{} -{}", diff.insertions, diff.deletions));
    }
    if row.meta.priority != tandem_core::store::Priority::None {
        facts.push(row.meta.priority.as_str().to_owned());
    }
    facts.push(row.meta.status.as_str().to_owned());
    if let Some(pr) = &row.pr_text() {
        // A merged pull request: the session's work has landed.
        let archive = if pr.contains(" merged") && row.group() != Group::Archived { " · a: archive" } else { "" };
        facts.push(format!("PR {pr}{archive}"));
    }
    let mut first = vec![
        marker,
        Span::styled(format!("{}{}", visible(&row.name), if row.meta.pinned { " *" } else { "" }), theme.bold()),
        Span::raw("  "),
        Span::styled(state, theme.group(row.group())),
        Span::raw("  "),
        Span::styled(visible(&facts.join("  ")).into_owned(), theme.dim()),
    ];
    if let Some(problem) = &row.problem {
        first.push(Span::styled(format!("  {}", visible(problem)), theme.fg(Color::Red)));
    }
    if let Some(conflicts) = &row.conflict_text() {
        first.push(Span::styled(format!("  ⚠ {}", visible(conflicts)), theme.fg(Color::Yellow)));
    }
    let said = match (&row.asking, &row.last_message) {
        (Some(asking), _) => format!("asks: {}", relative(asking, &row.path)),
        (_, Some(message)) => message.lines().next().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let second = match &row.meta.title {
        Some(title) if !said.is_empty() => format!("{title} — {said}"),
        Some(title) => title.clone(),
        None => said,
    };
    let second = (!second.is_empty()).then(|| {
        Line::from(vec![
            Span::raw("      "),
            Span::styled(clip(&visible(&second), width.saturating_sub(6)), theme.dim()),
        ])
    });
    (Line::from(first), second)
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max.saturating_sub(1)).chain(['…']).collect()
    } else {
        text.to_owned()
    }
}

fn draw_preview(frame: &mut Frame<'_>, area: Rect, app: &App, data: &Scene<'_>, theme: &Theme) {
    let Some(row) = app.selected_row() else {
        frame.render_widget(Block::default().borders(Borders::TOP).title(" preview "), area);
        return;
    };
    let history_height = if data.history.is_empty() { 0 } else { (area.height / 3).clamp(3, 10) };
    let [screen, history] = Layout::vertical([Constraint::Min(3), Constraint::Length(history_height)]).areas(area);
    let block =
        Block::default().borders(Borders::TOP).title(format!(" {} ", visible(&row.name))).border_style(theme.dim());
    let inner = block.inner(screen);
    frame.render_widget(block, screen);
    // What the session asks, above its screen, where it cannot scroll away.
    let inner = match &row.asking {
        Some(asking) if inner.height > 1 => {
            let [question, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            let text = format!("asks: {}  (y approve · n deny)", relative(asking, &row.path));
            frame.render_widget(
                Paragraph::new(Line::styled(
                    clip(&visible(&text), usize::from(question.width)),
                    theme.group(Group::NeedsInput),
                )),
                question,
            );
            rest
        }
        _ => inner,
    };
    match (&row.host, data.preview) {
        // A remote host's session: its screen is there, not here.
        (Some(host), _) => {
            let text = visible(&format!(
                "on {host}: enter attaches there (`tandem attach {host}:{}`); other keys act on local sessions only",
                row.name
            ))
            .into_owned();
            frame.render_widget(Paragraph::new(Line::styled(text, theme.dim())).wrap(Wrap { trim: false }), inner);
        }
        (None, Some(parsed)) => {
            frame.render_widget(Paragraph::new(screen_lines(parsed, inner.width, inner.height, theme)), inner);
        }
        (None, None) => frame.render_widget(Paragraph::new(Line::styled("(no screen)", theme.dim())), inner),
    }
    if history_height > 0 {
        let lines: Vec<Line<'_>> = data
            .history
            .iter()
            .rev()
            .take(usize::from(history_height.saturating_sub(1)))
            .rev()
            .map(|(kind, text)| {
                let text = relative(text.lines().next().unwrap_or_default(), &row.path);
                Line::from(vec![
                    Span::styled(format!("{kind:<12}"), theme.dim()),
                    Span::raw(visible(&text).into_owned()),
                ])
            })
            .collect();
        let block = Block::default().borders(Borders::TOP).title(" history ").border_style(theme.dim());
        frame.render_widget(Paragraph::new(lines).block(block), history);
    }
}

/// The keys, most used first; the footer shows as many as fit, `?`
/// every one.
const KEYS: &[(&str, &str)] = &[
    ("?", "help"),
    ("q", "quit"),
    ("c", "new"),
    ("⏎", "attach"),
    ("s", "send"),
    ("y/n", "approve/deny"),
    ("v", "diff"),
    ("R", "review"),
    ("m", "merge"),
    ("e", "rename"),
    ("x", "stop"),
    ("r", "respawn"),
    ("f", "fork"),
    ("p", "pin"),
    ("a", "archive/restore"),
    ("d", "remove"),
    ("X", "stop group"),
    ("D", "remove group"),
    ("/", "filter"),
    ("1-5", "priority"),
    ("t", "status"),
    ("T", "turns, rewind"),
];

/// The keys of the turns list (`T`), in the footer while it is open.
const TURN_KEYS: &[(&str, &str)] =
    &[("⏎/v", "diff"), ("r", "rewind to it"), ("u", "undo last rewind"), ("j/k", "move"), ("Esc", "back")];

/// A session's turns over the list and preview: number, age, what the
/// turn changed and its prompt (through [`visible`]: the agent's or
/// user's text), newest first, the selected one marked.
fn draw_turns(frame: &mut Frame<'_>, area: Rect, turns: &Turns, now: i64, theme: &Theme) {
    let width = area.width.saturating_sub(2).min(110);
    let popup = centered(area, width, area.height);
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(format!(" turns of {} ", visible(&turns.name)));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let mut lines = vec![Line::styled(format!("  {:>4}  {:<8}  {:<18}  TURN", "N", "WHEN", "CHANGED"), theme.dim())];
    if turns.list.is_empty() {
        lines.push(Line::styled(
            "  No checkpoints yet: one is made each time a turn of its agent changes something.",
            theme.dim(),
        ));
    }
    let cols = usize::from(inner.width);
    for (i, c) in turns.list.iter().enumerate() {
        let when = format!("{} ago", age(now - c.at_ms / 1000));
        let text = format!(
            "{:>4}  {when:<8}  {:<18}  {}",
            c.n,
            tandem_core::checkpoints::stat_text(c),
            visible(&tandem_core::checkpoints::describe(c))
        );
        let text = clip(&text, cols.saturating_sub(2));
        lines.push(if i == turns.selected {
            Line::styled(format!("> {text}"), theme.selected())
        } else {
            Line::raw(format!("  {text}"))
        });
    }
    // Keep the selection in sight (the header line is 0).
    let scroll = (turns.selected + 2).saturating_sub(usize::from(inner.height));
    frame.render_widget(Paragraph::new(lines).scroll((u16::try_from(scroll).unwrap_or(0), 0)), inner);
}

/// The agent's screen as lines `width` wide: each screen row at the
/// agent's own width, wrapped when wider (never cut off), trailing blanks
/// dropped; the last `height` lines up to the last one with text (or the
/// cursor), so the newest output shows.
fn screen_lines(screen: &vt100::Screen, width: u16, height: u16, theme: &Theme) -> Vec<Line<'static>> {
    let (rows, cols) = screen.size();
    let width = usize::from(width.max(1));
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut last_used = usize::from(screen.cursor_position().0);
    for r in 0..rows {
        // (text, style) per cell, blank cells at the end dropped.
        let mut cells: Vec<(String, Style)> = Vec::new();
        for c in 0..cols {
            let Some(cell) = screen.cell(r, c) else { continue };
            if cell.is_wide_continuation() {
                continue;
            }
            let text = if cell.has_contents() { visible(cell.contents()).into_owned() } else { " ".to_owned() };
            let mut style = cell_style(cell, theme);
            if !screen.hide_cursor() && screen.cursor_position() == (r, c) {
                // The agent's cursor, where its input goes.
                style = style.add_modifier(Modifier::REVERSED);
            }
            cells.push((text, style));
        }
        while cells.last().is_some_and(|(t, s)| t == " " && *s == Style::default()) {
            cells.pop();
        }
        if !cells.is_empty() {
            last_used = last_used.max(lines.len() + cells.len().div_ceil(width) - 1);
        }
        if cells.is_empty() {
            lines.push(Line::default());
        }
        for chunk in cells.chunks(width) {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (text, style) in chunk {
                match spans.last_mut() {
                    Some(last) if last.style == *style => last.content.to_mut().push_str(text),
                    _ => spans.push(Span::styled(text.clone(), *style)),
                }
            }
            lines.push(Line::from(spans));
        }
        if usize::from(r) == usize::from(screen.cursor_position().0) {
            last_used = last_used.max(lines.len() - 1);
        }
    }
    lines.truncate(last_used + 1);
    let skip = lines.len().saturating_sub(usize::from(height));
    lines.split_off(skip)
}

/// A screen cell's style; colours only when allowed.
fn cell_style(cell: &vt100::Cell, theme: &Theme) -> Style {
    let color = |c: vt100::Color| match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    };
    let mut style = Style::default();
    if theme.color {
        if cell.fgcolor() != vt100::Color::Default {
            style = style.fg(color(cell.fgcolor()));
        }
        if cell.bgcolor() != vt100::Color::Default {
            style = style.bg(color(cell.bgcolor()));
        }
    }
    if cell.bold() {
        style = style.add_modifier(Modifier::BOLD);
    }
    if cell.inverse() {
        style = style.add_modifier(Modifier::REVERSED);
    }
    if cell.underline() {
        style = style.add_modifier(Modifier::UNDERLINED);
    }
    style
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let status = match &app.mode {
        Mode::Filter => format!("filter: {}▏  (Enter keeps it, Esc clears)", app.filter),
        Mode::Send { text } => {
            format!("prompt for {}: {text}▏  (Enter sends, Esc cancels)", app.selected_row().map_or("", |r| &r.name))
        }
        Mode::Rename { text } => {
            format!("rename {} to: {text}▏  (Enter renames, Esc cancels)", app.selected_row().map_or("", |r| &r.name))
        }
        // What a command said, which may quote a session's text.
        _ => visible(app.message.as_deref().unwrap_or_default()).into_owned(),
    };
    let mut keys = Vec::new();
    let mut used = 0;
    let legend = if matches!(app.mode, Mode::Turns(_)) { TURN_KEYS } else { KEYS };
    for (key, what) in legend {
        let width = key.chars().count() + what.chars().count() + 3;
        if used + width > usize::from(area.width) {
            break;
        }
        used += width;
        keys.push(Span::styled(*key, theme.bold()));
        keys.push(Span::styled(format!(" {what}  "), theme.dim()));
    }
    frame.render_widget(Paragraph::new(vec![Line::raw(status), Line::from(keys)]), area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

fn draw_popup(frame: &mut Frame<'_>, area: Rect, title: &str, text: &str) {
    // Tall enough for the whole question at 62 columns a line.
    let height = u16::try_from(text.chars().count() / 50 + 4).unwrap_or(u16::MAX);
    let popup = centered(area, 64, height.max(7));
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(format!(" {title} "));
    frame.render_widget(Paragraph::new(visible(text).into_owned()).wrap(Wrap { trim: true }).block(block), popup);
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let mut text: Vec<String> = KEYS.iter().map(|(k, what)| format!("{k:>5}  {what}")).collect();
    text.extend(["  j/k  move", "    A  show archived", "  Esc  clear the filter"].map(str::to_owned));
    // Two columns, so every key fits a 24-line terminal.
    let half = text.len().div_ceil(2);
    let text: Vec<String> =
        (0..half).map(|i| format!("{:<26}{}", text[i], text.get(i + half).map_or("", String::as_str))).collect();
    let popup = centered(area, 56, u16::try_from(text.len() + 2).unwrap_or(u16::MAX));
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(" keys (any key closes) ");
    frame.render_widget(Paragraph::new(text.join("\n")).block(block), popup);
}

fn draw_form(frame: &mut Frame<'_>, area: Rect, form: &NewForm, theme: &Theme) {
    let popup = centered(area, 64, 8);
    frame.render_widget(Clear, popup);
    let hints = ["(empty: a generated name)", "(empty: claude, else shell)", "(empty: base.default)", "(optional)"];
    let lines: Vec<Line<'_>> = NewForm::LABELS
        .iter()
        .zip(form.values())
        .zip(hints)
        .enumerate()
        .map(|(i, ((label, value), hint))| {
            let active = i == form.field;
            let value = if active { format!("{value}▏") } else { value.to_owned() };
            let shown = if value.is_empty() { Span::styled(hint, theme.dim()) } else { Span::raw(value) };
            Line::from(vec![
                Span::styled(format!("{label:>7}: "), if active { theme.bold() } else { theme.dim() }),
                shown,
            ])
        })
        .collect();
    let block = Block::default().borders(Borders::ALL).title(" new session (Tab: next field, Enter on prompt: start) ");
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use tandem_core::conflicts::SessionConflicts;
    use tandem_core::session::facts::{DiffStat, GitFacts};
    use tandem_core::ship::github::{Checks, PrState, PrStatus, Review};
    use tandem_core::store::{Priority, TaskStatus};

    use super::*;
    use crate::view::model::{Action, App, SessionRow};

    const NOW: i64 = 1_800_000_000;

    fn row(name: &str, state: &str, since: i64) -> SessionRow {
        let mut facts = GitFacts::default();
        facts.worktree.exists = true;
        facts.refs.ahead = Some(0);
        facts.refs.behind = Some(0);
        SessionRow {
            id: format!("id-{name}"),
            name: name.to_owned(),
            agent: "claude".to_owned(),
            state: state.to_owned(),
            since: NOW - since,
            branch: name.to_owned(),
            base: "main".to_owned(),
            facts,
            ..SessionRow::default()
        }
    }

    fn pr(number: u64, state: PrState) -> Option<PrStatus> {
        let url = format!("https://github.com/o/r/pull/{number}");
        Some(PrStatus { number, url, state, checks: Checks::None, review: Review::None, checked_at: NOW })
    }

    /// One session in every group, with the facts a row can show.
    fn sessions() -> Vec<SessionRow> {
        let mut asking = row("fix-login", "needs-input", 125);
        asking.asking = Some("Bash: cargo test --workspace".into());
        asking.meta.title = Some("Fix the login redirect".into());
        asking.meta.priority = Priority::Urgent;
        let mut running = row("api-docs", "running", 40);
        running.facts.refs.ahead = Some(2);
        running.facts.worktree.changed = 3;
        running.facts.worktree.untracked = 1;
        running.facts.worktree.uncommitted = DiffStat { files: 4, insertions: 120, deletions: 7 };
        running.pr = pr(42, PrState::Open);
        running.marks = Some(SessionConflicts {
            name: "api-docs".into(),
            conflicts_with: vec!["fix-login".into()],
            ..SessionConflicts::default()
        });
        running.last_message = Some("Writing the endpoint table now.".into());
        running.agent = "codex".into();
        let mut idle = row("flaky-test", "idle", 3_700);
        idle.meta.pinned = true;
        idle.last_message = Some("The test was racing the watcher; fixed and committed.".into());
        let mut shell = row("scratch", "idle", 90);
        shell.inferred = true;
        shell.agent = "shell".into();
        let mut exited = row("old-spike", "exited", 90_000);
        exited.exit_code = Some(1);
        exited.meta.status = TaskStatus::Done;
        exited.pr = pr(7, PrState::Merged);
        vec![asking, running, idle, shell, exited, row("archived-one", "archived", 900_000)]
    }

    fn render(app: &App, width: u16, height: u16) -> String {
        let mut preview = vt100::Parser::new(6, 40, 0);
        preview.process(b"$ cargo test\r\nrunning 12 tests\r\n\x1b[32mtest result: ok\x1b[0m");
        let history = vec![
            ("prompt".to_owned(), "Fix the login redirect".to_owned()),
            ("tool-call".to_owned(), "Bash: cargo test".to_owned()),
            ("permission".to_owned(), "asks permission for Bash: cargo test --workspace".to_owned()),
        ];
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal
            .draw(|frame| {
                let scene =
                    Scene { title: "shop", preview: Some(preview.screen()), history: &history, now: NOW, color: false };
                draw(frame, app, &scene);
            })
            .expect("draw");
        terminal.backend().to_string()
    }

    fn app() -> App {
        let mut app = App::new();
        app.set_rows(sessions());
        app
    }

    #[test]
    fn every_group_wide() {
        insta::assert_snapshot!(render(&app(), 140, 30));
    }

    #[test]
    fn every_group_in_80_by_24() {
        insta::assert_snapshot!(render(&app(), 80, 24));
    }

    #[test]
    fn archived_unfolded_and_filtered() {
        let mut app = app();
        app.show_archived = true;
        app.filter = "o".into();
        insta::assert_snapshot!(render(&app, 100, 24));
    }

    #[test]
    fn no_color_means_no_colour_at_all() {
        let draw_with = |color: bool| {
            let mut terminal = Terminal::new(TestBackend::new(100, 24)).expect("terminal");
            terminal
                .draw(|frame| {
                    let scene = Scene { title: "shop", preview: None, history: &[], now: NOW, color };
                    draw(frame, &app(), &scene);
                })
                .expect("draw");
            terminal.backend().buffer().clone()
        };
        let coloured = |buffer: &ratatui::buffer::Buffer| {
            buffer.content().iter().filter(|c| c.fg != Color::Reset || c.bg != Color::Reset).count()
        };
        assert!(coloured(&draw_with(true)) > 0, "colour is used when allowed");
        assert_eq!(coloured(&draw_with(false)), 0, "NO_COLOR: not one coloured cell");
    }

    /// Issue 19: a turn that ended with a question waits under NEEDS
    /// INPUT with the question, and takes no approve/deny keys; a failed
    /// agent is under ERROR; each state is said in `tandem list`'s words.
    #[test]
    fn questions_and_failures_have_their_groups_and_lists_words() {
        let mut question = row("db-choice", "asking", 30);
        question.asking = Some("Which database should I use?".into());
        let mut failed = row("bad-fork", "failed", 20);
        failed.exit_code = Some(1);
        let mut shell = row("scratch", "idle", 90);
        shell.inferred = true;
        let mut app = App::new();
        app.set_rows(vec![shell.clone(), failed.clone(), question.clone()]);
        let screen = render(&app, 100, 24);
        // Rows start with the selection mark (`> ` or two spaces).
        let lines: Vec<&str> =
            screen.lines().map(|l| l.trim_matches(['"', ' ']).trim_start_matches("> ").trim_start()).collect();
        let at = |prefix: &str| {
            lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}`:\n{screen}"))
        };
        assert_eq!(at("NEEDS INPUT (1)") + 1, at("! db-choice  asking 30s"), "{screen}");
        assert!(lines[at("! db-choice") + 1].starts_with("asks: Which database should I use?"), "{screen}");
        assert_eq!(at("ERROR (1)") + 1, at("✗ bad-fork  failed (exit 1) 20s"), "{screen}");
        assert!(at("○ scratch  idle (inferred) 1m") > at("IDLE (1)"), "{screen}");
        for r in [&question, &failed, &shell] {
            assert!(screen.contains(&format!("  {} ", r.state_word())), "list's words, {}:\n{screen}", r.state_word());
        }
        // The selected row asks a question: `y` is no approval.
        assert_eq!(app.selected_row().map(|r| r.name.as_str()), Some("db-choice"));
        assert_eq!(app.key(crate::view::model::Key::new(crate::view::model::KeyCode::Char('y'))), None);
    }

    /// Issue 16: a title, a question, a last message and history from the
    /// agent are drawn with their control characters visible, never
    /// written to the terminal as they are.
    #[test]
    fn an_agents_text_is_drawn_with_escapes_visible() {
        let mut asking = row("evil", "needs-input", 5);
        asking.meta.title = Some("\x1b]0;pwned\x07Fix\u{202e}gol".into());
        asking.asking = Some("Bash: \x1b[2K\rls".into());
        let mut talking = row("chatty", "idle", 5);
        talking.last_message = Some("done\x1b]52;c;Y3VybCBldmlsfHNo\x07".into());
        let mut app = App::new();
        app.set_rows(vec![asking, talking]);
        let history = vec![("message".to_owned(), "said \u{9b}31mred".to_owned())];
        let mut terminal = Terminal::new(TestBackend::new(140, 20)).expect("terminal");
        let shown = |terminal: &mut Terminal<TestBackend>, app: &App| {
            terminal
                .draw(|frame| {
                    let scene = Scene { title: "shop", preview: None, history: &history, now: NOW, color: false };
                    draw(frame, app, &scene);
                })
                .expect("draw");
            terminal.backend().to_string()
        };
        let screen = shown(&mut terminal, &app);
        assert!(!screen.lines().any(|l| l.contains(tandem_core::text::needs_escape)), "{screen}");
        for shown in [r"\e]0;pwned\x07Fix\u{202e}gol", r"asks: Bash: \e[2K\rls", r"done\e]52;c;Y3VybCBldmlsfHNo\x07"] {
            assert!(screen.contains(shown), "{shown} is not on screen:\n{screen}");
        }
        app.key(crate::view::model::Key::new(crate::view::model::KeyCode::Down));
        let screen = shown(&mut terminal, &app);
        assert!(screen.contains(r"said \u{9b}31mred"), "{screen}");
    }

    #[test]
    fn no_sessions_yet() {
        insta::assert_snapshot!(render(&App::new(), 80, 12));
    }

    #[test]
    fn remove_confirmation_help_and_new_form() {
        use crate::view::model::{Key, KeyCode};
        let key = |c| Key::new(KeyCode::Char(c));
        let mut app = app();
        app.key(Key::new(KeyCode::Down));
        assert_eq!(app.key(key('d')), None);
        insta::assert_snapshot!("remove_confirmation", render(&app, 100, 24));
        assert!(matches!(app.key(key('y')), Some(Action::Remove { force: true, .. })));
        app.key(key('?'));
        insta::assert_snapshot!("help", render(&app, 100, 30));
        app.key(key('x'));
        app.key(key('c'));
        for c in "docs".chars() {
            app.key(key(c));
        }
        insta::assert_snapshot!("new_form", render(&app, 100, 24));
    }

    /// Issue 22: `T` lists the selected session's turns over the view:
    /// number, age, diffstat and prompt (its control characters shown),
    /// the turns' keys in the footer; `r` asks before rewinding.
    #[test]
    fn turns_list_and_rewind_question() {
        use crate::view::model::{Key, KeyCode};
        let mut app = app();
        let mut evil = crate::view::model::tests::checkpoint(3, Some("fix it\x1b]0;pwned\x07 now"));
        evil.at_ms = NOW * 1000 - 30_000;
        let mut before = crate::view::model::tests::checkpoint(2, None);
        before.cause = tandem_core::model::Cause::Rewind;
        before.rewound_to = Some(1);
        before.at_ms = NOW * 1000 - 120_000;
        let mut first = crate::view::model::tests::checkpoint(1, Some("write the endpoint table"));
        first.at_ms = NOW * 1000 - 7_200_000;
        app.open_turns("fix-login".into(), vec![evil, before, first]);
        app.key(Key::new(KeyCode::Down));
        app.key(Key::new(KeyCode::Down));
        let screen = render(&app, 100, 24);
        assert!(!screen.lines().any(|l| l.contains(tandem_core::text::needs_escape)), "{screen}");
        insta::assert_snapshot!("turns", screen);
        app.key(Key::new(KeyCode::Char('r')));
        insta::assert_snapshot!("turns_rewind_question", render(&app, 100, 24));
    }

    /// Issue 19: an agent screen wider than the whole view wraps in the
    /// preview; its right edge is never cut off.
    #[test]
    fn a_screen_wider_than_the_view_wraps_and_keeps_its_right_edge() {
        let mut wide = vt100::Parser::new(4, 200, 0);
        wide.process(format!("{}RIGHT-EDGE\r\n$ ", "x".repeat(180)).as_bytes());
        let mut app = App::new();
        app.set_rows(vec![row("wide", "running", 5), row("other", "idle", 5)]);
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal
            .draw(|frame| {
                let scene = Scene { title: "shop", preview: Some(wide.screen()), history: &[], now: NOW, color: false };
                draw(frame, &app, &scene);
            })
            .expect("draw");
        let screen = terminal.backend().to_string();
        assert!(screen.contains("RIGHT-EDGE"), "{screen}");
        let marked: Vec<&str> = screen.lines().filter(|l| l.starts_with("\"> ")).collect();
        assert_eq!(marked.len(), 1, "one row is marked as selected:\n{screen}");
        assert!(marked[0].contains("wide"), "{screen}");
    }

    #[test]
    fn remote_sessions_have_a_host_column_and_say_unreachable() {
        let mut app = App::new();
        let far = SessionRow {
            host: Some("gpu".into()),
            state: "unreachable".into(),
            known_state: Some("running".into()),
            last_seen: Some(NOW - 120),
            ..row("far\x1b[2Jaway", "unreachable", 60)
        };
        app.set_rows(vec![far, row("near", "idle", 30)]);
        let screen = render(&app, 140, 30);
        assert!(screen.contains("HOST   SESSION"), "{screen}");
        assert!(screen.contains("gpu    ·"), "{screen}");
        assert!(screen.contains("local  ○ near"), "{screen}");
        assert!(screen.contains("unreachable (was running, seen"), "{screen}");
        assert!(screen.contains(r"far\e[2Jaway"), "{screen}");
        app.key(crate::view::model::Key::new(crate::view::model::KeyCode::Down));
        let screen = render(&app, 140, 30);
        assert!(screen.contains("on gpu: enter attaches there"), "{screen}");
        // No remote session: no HOST column.
        let screen = render(&self::app(), 140, 30);
        assert!(!screen.contains("HOST"), "{screen}");
        assert!(!screen.contains("local"), "{screen}");
    }
}
