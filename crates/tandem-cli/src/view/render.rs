//! Drawing the agent view with ratatui: a header, the sessions grouped by
//! what they need (two lines each), the selected session's live screen
//! and recent history, and a footer with the keys. Wide terminals (≥ 120
//! columns) get the list and the preview side by side; narrower ones
//! stack them. Colour is left out entirely when `NO_COLOR` is set.
//! Every text from a session (title, question, message, history, branch,
//! pull request) is drawn through [`visible`], control characters shown.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use tui_term::widget::PseudoTerminal;

use crate::view::model::{App, Group, Mode, NewForm, SessionRow};
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

    fn selected(&self) -> Style {
        if self.color { Style::default().bg(Color::DarkGray).add_modifier(Modifier::BOLD) } else { self.bold() }
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
    let (list, preview) = if body.width >= 120 {
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
        Mode::Normal | Mode::Filter | Mode::Send { .. } => {}
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
    for group in Group::ALL {
        let rows: Vec<&&SessionRow> = visible.iter().filter(|r| r.group() == group).collect();
        if rows.is_empty() {
            continue;
        }
        lines.push(Line::styled(format!("{} ({})", group.title(), rows.len()), theme.group(group)));
        for row in rows {
            let is_selected = selected.as_deref() == Some(row.id.as_str());
            if is_selected {
                selected_line = lines.len();
            }
            let (first, second) = row_lines(row, data.now, width, theme);
            let style = if is_selected { theme.selected() } else { Style::default() };
            lines.push(first.style(style));
            lines.extend(second);
        }
    }
    if !app.show_archived && app.archived() > 0 {
        lines.push(Line::styled(format!("{} archived (A to show)", app.archived()), theme.dim()));
    }
    if lines.is_empty() {
        let text = if app.filter.is_empty() {
            "No sessions yet. Press n to start one."
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
        (Some(asking), _) if row.group() == Group::NeedsInput => format!("asks: {asking}"),
        (_, Some(message)) => message.lines().next().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let second = match &row.meta.title {
        Some(title) if !said.is_empty() => format!("{title} — {said}"),
        Some(title) => title.clone(),
        None => said,
    };
    let second = (!second.is_empty()).then(|| {
        Line::from(vec![Span::raw("    "), Span::styled(clip(&visible(&second), width.saturating_sub(4)), theme.dim())])
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
    match data.preview {
        Some(parsed) => frame.render_widget(PseudoTerminal::new(parsed).block(block), screen),
        None => frame.render_widget(Paragraph::new(Line::styled("(no screen)", theme.dim())).block(block), screen),
    }
    if history_height > 0 {
        let lines: Vec<Line<'_>> = data
            .history
            .iter()
            .rev()
            .take(usize::from(history_height.saturating_sub(1)))
            .rev()
            .map(|(kind, text)| {
                Line::from(vec![
                    Span::styled(format!("{kind:<12}"), theme.dim()),
                    Span::raw(visible(text.lines().next().unwrap_or_default()).into_owned()),
                ])
            })
            .collect();
        let block = Block::default().borders(Borders::TOP).title(" history ").border_style(theme.dim());
        frame.render_widget(Paragraph::new(lines).block(block), history);
    }
}

/// The keys, shortest first, as many as fit.
const KEYS: &[(&str, &str)] = &[
    ("?", "help"),
    ("q", "quit"),
    ("n", "new"),
    ("⏎", "attach"),
    ("s", "send"),
    ("y/N", "approve/deny"),
    ("x", "stop"),
    ("r", "respawn"),
    ("f", "fork"),
    ("p", "pin"),
    ("a", "archive"),
    ("d", "remove"),
    ("/", "filter"),
    ("1-5", "priority"),
    ("t", "status"),
];

fn draw_footer(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let status = match &app.mode {
        Mode::Filter => format!("filter: {}▏  (Enter keeps it, Esc clears)", app.filter),
        Mode::Send { text } => {
            format!("prompt for {}: {text}▏  (Enter sends, Esc cancels)", app.selected_row().map_or("", |r| &r.name))
        }
        // What a command said, which may quote a session's text.
        _ => visible(app.message.as_deref().unwrap_or_default()).into_owned(),
    };
    let mut keys = Vec::new();
    let mut used = 0;
    for (key, what) in KEYS {
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
    let popup = centered(area, 64, 7);
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(format!(" {title} "));
    frame.render_widget(Paragraph::new(visible(text).into_owned()).wrap(Wrap { trim: true }).block(block), popup);
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let mut text: Vec<String> = KEYS.iter().map(|(k, what)| format!("{k:>5}  {what}")).collect();
    text.extend(["  j/k  move", "    A  show archived", "  Esc  clear the filter"].map(str::to_owned));
    let popup = centered(area, 40, u16::try_from(text.len() + 2).unwrap_or(u16::MAX));
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
        let lines: Vec<&str> = screen.lines().map(|l| l.trim_matches(['"', ' '])).collect();
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
        app.key(key('n'));
        for c in "docs".chars() {
            app.key(key(c));
        }
        insta::assert_snapshot!("new_form", render(&app, 100, 24));
    }
}
