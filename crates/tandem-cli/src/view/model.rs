// Whole on purpose (issue 18): one state machine (the view's modes and keys), 437 lines of code and their tests; splitting it would scatter its invariants.
//! The agent view's state, with no terminal: the sessions as rows grouped
//! by what they need from the user, the selection, the mode (filtering,
//! typing a prompt, the new-session form, a confirmation, help), and what
//! each key does. [`App::key`] turns a key into an [`Action`] for the
//! runtime to carry out, so every key is testable without a terminal.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tandem_core::model::Checkpoint;
pub use tandem_core::rows::{Group, SessionRow};
use tandem_core::session::SessionError;
use tandem_core::store::{Priority, TaskStatus};
use tandem_core::text::visible;

/// How long a footer message stays (then the footer is clear again).
pub const MESSAGE_FOR: Duration = Duration::from_secs(5);

/// `text` with the worktree's path left out: `/…/wt/src/a.rs` is
/// `src/a.rs`, the worktree itself `.`; what an agent asks and what its
/// history says then fits the view, and reads as the agent's own
/// relative paths.
#[must_use]
pub fn relative(text: &str, worktree: &Path) -> String {
    let Some(root) = worktree.to_str().map(|r| r.trim_end_matches('/')).filter(|r| r.len() > 1) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(root) {
        let after = &rest[at + root.len()..];
        let boundary = after.chars().next().is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')));
        out.push_str(&rest[..at]);
        if !boundary {
            out.push_str(root);
            rest = after;
        } else if let Some(tail) = after.strip_prefix('/') {
            rest = tail;
        } else {
            out.push('.');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A key as the view takes it: its own type, so the model depends on no
/// terminal library (the runtime turns crossterm's events into these;
/// the web dashboard or a test can make them directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    /// Whether Ctrl was held.
    pub ctrl: bool,
}

impl Key {
    /// `code` with no modifier.
    #[must_use]
    pub fn new(code: KeyCode) -> Key {
        Key { code, ctrl: false }
    }

    /// `code` with Ctrl held.
    #[must_use]
    pub fn ctrl(code: KeyCode) -> Key {
        Key { code, ctrl: true }
    }
}

/// The keys the view acts on; any other is [`KeyCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCode {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Tab,
    /// Shift-Tab.
    BackTab,
    Up,
    Down,
    Home,
    End,
    Other,
}

/// The text of the desktop notification for `rows`, the sessions that now
/// need input: `fix-login needs input: Bash: cargo test` for one (the
/// question cut to 100 characters), `a, b need input` for several.
///
/// It travels inside OSC 9 and OSC 777 sequences, so it holds no control
/// character (the agent's text goes through [`visible`]: a BEL, ESC or C1
/// string terminator in it cannot end the sequence early) and no `;`
/// (OSC 777 separates its fields with it).
#[must_use]
pub fn notification(rows: &[&SessionRow]) -> String {
    let text = match rows {
        [one] => match &one.asking {
            Some(asking) => format!("{} needs input: {}", one.name, cut(asking, 100)),
            None => format!("{} needs input", one.name),
        },
        _ => format!("{} need input", rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")),
    };
    visible(&text).replace(';', " ")
}

/// Whether `row`'s agent waits on the user: in the needs-input group, or
/// saying what it asks (a hook event) while its state is a guess from
/// its output (the question wins over the guess, as in `tandem list`).
#[must_use]
pub fn asks(row: &SessionRow) -> bool {
    row.group() == Group::NeedsInput || row.asking.is_some()
}

/// `n thing` or `n things`.
fn plural(n: u32, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

/// `text` cut to `max` characters, `…` marking a cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max.saturating_sub(1)).chain(['…']).collect()
    } else {
        text.to_owned()
    }
}

/// What the user is doing in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter (`/`): rows whose name, title, branch or agent
    /// contain it stay.
    Filter,
    /// Typing a prompt for the selected session (`s`).
    Send {
        text: String,
    },
    /// The new-session form (`c`).
    New(NewForm),
    /// Typing a new name for the selected session (`e`).
    Rename {
        text: String,
    },
    /// Waiting for `y` to carry out `action`; `question` says exactly what
    /// happens.
    Confirm {
        question: String,
        action: Box<Action>,
    },
    /// Every key (`?`).
    Help,
    /// The selected session's turns (`T`): its checkpoints, to diff,
    /// rewind to, or undo the last rewind (issue 22).
    Turns(Turns),
}

/// A session's turns as the view lists them (`T`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turns {
    /// The session's name, as its actions name it.
    pub name: String,
    /// Its checkpoints, newest first (`tandem checkpoints`).
    pub list: Vec<Checkpoint>,
    /// The index in `list` of the selected one.
    pub selected: usize,
    /// A question waiting for `y` (a rewind, an undo), and the action
    /// `y` carries out; any other key drops it, back to the list.
    pub confirm: Option<(String, Box<Action>)>,
}

impl Turns {
    /// The selected checkpoint, if there is any.
    #[must_use]
    pub fn current(&self) -> Option<&Checkpoint> {
        self.list.get(self.selected)
    }
}

/// The fields of the new-session form, edited one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewForm {
    pub name: String,
    pub agent: String,
    pub base: String,
    pub prompt: String,
    /// The field being edited: 0 name, 1 agent, 2 base, 3 prompt.
    pub field: usize,
}

impl NewForm {
    /// The form's labels, in field order.
    pub const LABELS: [&'static str; 4] = ["name", "agent", "base", "prompt"];

    fn current(&mut self) -> &mut String {
        match self.field {
            0 => &mut self.name,
            1 => &mut self.agent,
            2 => &mut self.base,
            _ => &mut self.prompt,
        }
    }

    /// The field values, in order.
    #[must_use]
    pub fn values(&self) -> [&str; 4] {
        [&self.name, &self.agent, &self.base, &self.prompt]
    }
}

/// What the runtime does for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Attach full screen; the detach key comes back to the view.
    Attach(String),
    Send {
        name: String,
        text: String,
    },
    Approve(String),
    Deny(String),
    Stop(String),
    Respawn(String),
    Fork(String),
    Pin {
        name: String,
        pinned: bool,
    },
    Archive(String),
    Remove {
        name: String,
        force: bool,
    },
    Priority {
        name: String,
        priority: Priority,
    },
    Status {
        name: String,
        status: TaskStatus,
    },
    New {
        name: Option<String>,
        agent: Option<String>,
        base: Option<String>,
        prompt: Option<String>,
    },
    /// Bring an archived session back (`tandem restore`).
    Restore(String),
    /// A new name for it (`tandem rename`).
    Rename {
        name: String,
        to: String,
    },
    /// Its changes full screen, in git's pager (`tandem diff`).
    Diff(String),
    /// A second agent reviews it (`tandem review`).
    Review(String),
    /// Its branch into its base (`tandem merge`), after a confirmation.
    Merge(String),
    /// Open the session's turns list (the runtime loads its checkpoints
    /// and calls [`App::open_turns`]).
    Turns(String),
    /// What checkpoint `n`'s turn changed, full screen (`tandem diff
    /// NAME --checkpoint N`).
    TurnDiff {
        name: String,
        n: u32,
    },
    /// Put the worktree back as at checkpoint `n`, after a confirmation
    /// (`tandem rewind NAME N`).
    Rewind {
        name: String,
        n: u32,
    },
    /// Undo the session's last rewind, after a confirmation (`tandem
    /// rewind NAME --undo`).
    UndoRewind(String),
    /// Stop every session of a group, after one confirmation.
    StopAll(Vec<String>),
    /// Remove every session of a group, after one confirmation; `true`
    /// for those with unsaved work (kept in a snapshot ref, as `tandem rm
    /// --force` does).
    RemoveAll(Vec<(String, bool)>),
}

/// The view's state.
#[derive(Debug, Clone)]
pub struct App {
    rows: Vec<SessionRow>,
    /// The selected session's id (kept across refreshes).
    selected: Option<String>,
    /// Which way the selection last moved: down (`1`) or up (`-1`).
    last_step: isize,
    pub filter: String,
    pub mode: Mode,
    /// Whether the archived group is unfolded.
    pub show_archived: bool,
    /// A line for the footer: what the last action did, or its error
    /// ([`App::say`]; gone after [`MESSAGE_FOR`]).
    pub message: Option<String>,
    /// When `message` was said.
    message_at: Option<Instant>,
    /// Each session's repository, by session id, when the view shows
    /// several (`--all`): drawn as a REPO column. Empty otherwise.
    pub repos: BTreeMap<String, String>,
}

impl Default for App {
    fn default() -> App {
        App::new()
    }
}

impl App {
    #[must_use]
    pub fn new() -> App {
        App {
            rows: Vec::new(),
            selected: None,
            last_step: 1,
            filter: String::new(),
            mode: Mode::Normal,
            show_archived: false,
            message: None,
            message_at: None,
            repos: BTreeMap::new(),
        }
    }

    /// Puts `text` in the footer, for [`MESSAGE_FOR`].
    pub fn say(&mut self, text: impl Into<String>) {
        self.message = Some(text.into());
        self.message_at = Some(Instant::now());
    }

    /// Clears the footer message once it has stood for `after`; returns
    /// whether it did.
    pub fn expire_message(&mut self, after: Duration) -> bool {
        if self.message.is_some() && self.message_at.is_none_or(|at| at.elapsed() >= after) {
            self.message = None;
            self.message_at = None;
            return true;
        }
        false
    }

    /// The name an action on `row` goes by: `REPO/NAME` in a view of
    /// every repository (a name may repeat across repositories, and the
    /// group's actions run from the selected row's one), else NAME.
    fn qualified(&self, row: &SessionRow) -> String {
        match self.repos.get(&row.id) {
            Some(repo) => format!("{repo}/{}", row.name),
            None => row.name.clone(),
        }
    }

    /// The group the selected session is in, with the names of every
    /// session shown in it.
    #[must_use]
    pub fn selected_group(&self) -> Option<(Group, Vec<&SessionRow>)> {
        let group = self.selected_row()?.group();
        Some((group, self.visible().into_iter().filter(|r| r.group() == group).collect()))
    }

    /// Takes fresh rows; keeps the selection on the same session when it
    /// is still there. Returns the names of sessions that started needing
    /// input since the last rows (for the bell and the notification).
    pub fn set_rows(&mut self, rows: Vec<SessionRow>) -> Vec<String> {
        let newly: Vec<String> = rows
            .iter()
            .filter(|r| {
                r.group() == Group::NeedsInput
                    && !self.rows.iter().any(|old| old.id == r.id && old.group() == Group::NeedsInput)
            })
            .map(|r| r.name.clone())
            .collect();
        self.rows = rows;
        if self.selected_row().is_none() {
            self.selected = self.visible().first().map(|r| r.id.clone());
        }
        newly
    }

    /// Every row.
    #[must_use]
    pub fn rows(&self) -> &[SessionRow] {
        &self.rows
    }

    /// The rows shown, in display order: by group, pinned first within a
    /// group, then by priority, then by name (a sub-session after its
    /// creator); archived only when unfolded; filtered.
    #[must_use]
    pub fn visible(&self) -> Vec<&SessionRow> {
        let filter = self.filter.to_lowercase();
        let rows: Vec<&SessionRow> = self
            .rows
            .iter()
            .filter(|r| self.show_archived || r.group() != Group::Archived)
            .filter(|r| {
                filter.is_empty()
                    || [Some(&r.name), r.meta.title.as_ref(), Some(&r.branch), Some(&r.agent)]
                        .into_iter()
                        .flatten()
                        .any(|t| t.to_lowercase().contains(&filter))
            })
            .collect();
        // A sub-session (made by another's agent through `tandem mcp`)
        // sorts right after its creator when they share a group.
        let family = |r: &SessionRow| -> (String, bool) {
            match r.creator.as_ref().filter(|_| tandem_core::rows::is_sub_session(r, &self.rows)) {
                Some(creator) => (creator.clone(), true),
                None => (r.name.clone(), false),
            }
        };
        let mut keyed: Vec<(&SessionRow, (String, bool))> = rows.into_iter().map(|r| (r, family(r))).collect();
        keyed.sort_by(|(a, fa), (b, fb)| {
            a.group()
                .cmp(&b.group())
                .then(b.meta.pinned.cmp(&a.meta.pinned))
                .then(a.meta.priority.cmp(&b.meta.priority))
                .then(fa.cmp(fb))
                .then(a.name.cmp(&b.name))
        });
        keyed.into_iter().map(|(r, _)| r).collect()
    }

    /// How many archived sessions are folded away.
    #[must_use]
    pub fn archived(&self) -> usize {
        self.rows.iter().filter(|r| r.group() == Group::Archived).count()
    }

    /// The selected row, if it is shown.
    #[must_use]
    pub fn selected_row(&self) -> Option<&SessionRow> {
        let id = self.selected.as_deref()?;
        self.visible().into_iter().find(|r| r.id == id)
    }

    /// The sessions whose screens the view builds ahead
    /// ([`crate::view::selected::Selected::prefetch`]): the next two
    /// rows the way the selection last moved (away from the first or
    /// last row), then the one behind it; a remote host's rows are left
    /// out.
    #[must_use]
    pub fn ahead(&self) -> Vec<String> {
        let visible = self.visible();
        let Some(at) = self.selected.as_deref().and_then(|id| visible.iter().position(|r| r.id == id)) else {
            return Vec::new();
        };
        // At an edge the only way is away from it.
        let step = if at == 0 {
            1
        } else if at + 1 == visible.len() {
            -1
        } else {
            self.last_step
        };
        [step, 2 * step, -step]
            .into_iter()
            .filter_map(|step| at.checked_add_signed(step).and_then(|i| visible.get(i)))
            .filter(|r| r.host.is_none())
            .map(|r| r.id.clone())
            .collect()
    }

    fn select_by(&mut self, step: isize) {
        // From the first row the next moves go down; from the last, up.
        self.last_step = match step {
            isize::MIN => 1,
            isize::MAX => -1,
            _ => step.signum(),
        };
        let visible = self.visible();
        if visible.is_empty() {
            self.selected = None;
            return;
        }
        let at = self.selected.as_deref().and_then(|id| visible.iter().position(|r| r.id == id));
        let next = match at {
            None => 0,
            Some(i) => i.saturating_add_signed(step).min(visible.len() - 1),
        };
        self.selected = Some(visible[next].id.clone());
    }

    /// Handles one key; returns what the runtime must do, if anything.
    pub fn key(&mut self, key: Key) -> Option<Action> {
        if key.ctrl && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key),
            Mode::Help => None,
            Mode::Turns(turns) => self.turns_key(turns, key),
            Mode::Filter => {
                match key.code {
                    KeyCode::Esc => self.filter.clear(),
                    KeyCode::Enter => {}
                    KeyCode::Backspace => {
                        self.filter.pop();
                        self.mode = Mode::Filter;
                    }
                    KeyCode::Char(c) => {
                        self.filter.push(c);
                        self.mode = Mode::Filter;
                    }
                    _ => self.mode = Mode::Filter,
                }
                if self.selected_row().is_none() {
                    self.selected = self.visible().first().map(|r| r.id.clone());
                }
                None
            }
            Mode::Send { mut text } => match key.code {
                KeyCode::Esc => None,
                KeyCode::Enter if !text.trim().is_empty() => {
                    let name = self.selected_row()?.name.clone();
                    Some(Action::Send { name, text })
                }
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Send { text };
                    None
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    self.mode = Mode::Send { text };
                    None
                }
                _ => {
                    self.mode = Mode::Send { text };
                    None
                }
            },
            Mode::Rename { mut text } => match key.code {
                KeyCode::Esc => None,
                KeyCode::Enter if !text.trim().is_empty() => {
                    let name = self.selected_row()?.name.clone();
                    Some(Action::Rename { name, to: text.trim().to_owned() })
                }
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Rename { text };
                    None
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    self.mode = Mode::Rename { text };
                    None
                }
                _ => {
                    self.mode = Mode::Rename { text };
                    None
                }
            },
            Mode::New(mut form) => match key.code {
                KeyCode::Esc => None,
                KeyCode::Enter if form.field == NewForm::LABELS.len() - 1 => {
                    let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
                    let [name, agent, base, prompt] = form.values().map(some);
                    Some(Action::New { name, agent, base, prompt })
                }
                KeyCode::Enter | KeyCode::Tab | KeyCode::Down => {
                    form.field = (form.field + 1) % NewForm::LABELS.len();
                    self.mode = Mode::New(form);
                    None
                }
                KeyCode::BackTab | KeyCode::Up => {
                    form.field = (form.field + NewForm::LABELS.len() - 1) % NewForm::LABELS.len();
                    self.mode = Mode::New(form);
                    None
                }
                KeyCode::Backspace => {
                    form.current().pop();
                    self.mode = Mode::New(form);
                    None
                }
                KeyCode::Char(c) => {
                    form.current().push(c);
                    self.mode = Mode::New(form);
                    None
                }
                _ => {
                    self.mode = Mode::New(form);
                    None
                }
            },
            Mode::Confirm { action, .. } => matches!(key.code, KeyCode::Char('y' | 'Y')).then_some(*action),
        }
    }

    /// Shows `name`'s turns, `list` newest first, the newest selected.
    pub fn open_turns(&mut self, name: String, list: Vec<Checkpoint>) {
        self.mode = Mode::Turns(Turns { name, list, selected: 0, confirm: None });
    }

    /// The session whose turns are shown, if they are.
    #[must_use]
    pub fn turns_of(&self) -> Option<&str> {
        match &self.mode {
            Mode::Turns(turns) => Some(&turns.name),
            _ => None,
        }
    }

    /// Fresh checkpoints for the turns shown (after a rewind, or a turn
    /// that ended meanwhile); the same checkpoint stays selected when it
    /// is still there.
    pub fn set_turns(&mut self, list: Vec<Checkpoint>) {
        let Mode::Turns(turns) = &mut self.mode else { return };
        let was = turns.current().map(|c| c.n);
        turns.selected = was.and_then(|n| list.iter().position(|c| c.n == n)).unwrap_or(0);
        turns.list = list;
    }

    /// A key in the turns list: move, `⏎`/`v` diff, `r` rewind, `u` undo
    /// (each of those two after `y`), `Esc`/`q`/`T` back.
    fn turns_key(&mut self, mut turns: Turns, key: Key) -> Option<Action> {
        if let Some((_, action)) = turns.confirm.take() {
            self.mode = Mode::Turns(turns);
            return matches!(key.code, KeyCode::Char('y' | 'Y')).then_some(*action);
        }
        let name = turns.name.clone();
        let last = turns.list.len().saturating_sub(1);
        let current = turns.current().cloned();
        let mut action = None;
        match key.code {
            KeyCode::Esc | KeyCode::Char('q' | 'T') => return None,
            KeyCode::Down | KeyCode::Char('j') => turns.selected = (turns.selected + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => turns.selected = turns.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => turns.selected = 0,
            KeyCode::End | KeyCode::Char('G') => turns.selected = last,
            KeyCode::Enter | KeyCode::Char('v') => action = current.map(|c| Action::TurnDiff { name, n: c.n }),
            KeyCode::Char('r') => match current {
                Some(c) => {
                    let question = format!(
                        "Rewind {name} to checkpoint {n} ({what})? Its files go back as they were then; what \
                         is there now is checkpointed first, so u undoes it. HEAD and the branch stay. y/n",
                        n = c.n,
                        what = cut(&tandem_core::checkpoints::describe(&c), 60),
                    );
                    turns.confirm = Some((question, Box::new(Action::Rewind { name, n: c.n })));
                }
                None => self.say(format!("{name} has no checkpoint to rewind to yet")),
            },
            KeyCode::Char('u') => {
                let question = format!(
                    "Undo {name}'s last rewind? Its files go back as they were before it (what is there now \
                     is checkpointed first, so this too can be undone). y/n"
                );
                turns.confirm = Some((question, Box::new(Action::UndoRewind(name))));
            }
            _ => {}
        }
        self.mode = Mode::Turns(turns);
        action
    }

    fn normal_key(&mut self, key: Key) -> Option<Action> {
        let name = self.selected_row().map(|r| r.name.clone());
        let code = key.code;
        match code {
            KeyCode::Char('q') => return Some(Action::Quit),
            KeyCode::Down | KeyCode::Char('j') => self.select_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.select_by(-1),
            KeyCode::Home | KeyCode::Char('g') => self.select_by(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => self.select_by(isize::MAX),
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('A') => {
                self.show_archived = !self.show_archived;
                if self.selected_row().is_none() {
                    self.selected = self.visible().first().map(|r| r.id.clone());
                }
            }
            KeyCode::Char('c') => self.mode = Mode::New(NewForm::default()),
            _ => {}
        }
        let row = self.selected_row()?.clone();
        let name = name?;
        if let Some(host) = &row.host {
            return self.remote_key(code, host, &name);
        }
        match code {
            KeyCode::Enter => Some(Action::Attach(name)),
            KeyCode::Char('s') => {
                self.mode = Mode::Send { text: String::new() };
                None
            }
            KeyCode::Char('y') if row.awaits_permission() => Some(Action::Approve(name)),
            KeyCode::Char('n' | 'N') if row.awaits_permission() => Some(Action::Deny(name)),
            KeyCode::Char('y' | 'n' | 'N') if asks(&row) => {
                self.say(format!("{name} asks a question, not a permission: s sends the answer"));
                None
            }
            KeyCode::Char('y') => {
                self.say(format!("{name} asks nothing: there is nothing to approve"));
                None
            }
            KeyCode::Char('n' | 'N') => {
                self.say(format!("{name} asks nothing: there is nothing to deny (c starts a new session)"));
                None
            }
            KeyCode::Char('a') if row.group() == Group::Archived => Some(Action::Restore(name)),
            KeyCode::Char('v') => Some(Action::Diff(name)),
            KeyCode::Char('e') => {
                self.mode = Mode::Rename { text: String::new() };
                None
            }
            KeyCode::Char('R') => Some(Action::Review(name)),
            KeyCode::Char('m') => {
                let question = format!(
                    "Merge {name} into {base}? Its branch {branch} ({ahead}) goes into {base} in the main \
                     worktree, which is refused, changing nothing, if it would conflict; tandem then offers \
                     to archive it. y/n",
                    base = row.base,
                    branch = row.branch,
                    ahead = row.ahead().map_or_else(|| "commits unknown".to_owned(), |n| plural(n, "commit")),
                );
                self.mode = Mode::Confirm { question, action: Box::new(Action::Merge(name)) };
                None
            }
            KeyCode::Char('X') => {
                let (group, rows) = self.selected_group()?;
                let live: Vec<String> = rows
                    .iter()
                    .filter(|r| r.group() != Group::Archived && r.host.is_none())
                    .map(|r| self.qualified(r))
                    .collect();
                if live.is_empty() {
                    self.say("archived sessions have no agent to stop");
                    return None;
                }
                let question = format!(
                    "Stop {} in {} ({})? Each agent stops; nothing is lost: worktrees, branches and \
                     history stay (r respawns one). y/n",
                    plural(u32::try_from(live.len()).unwrap_or(u32::MAX), "session"),
                    group.title(),
                    live.join(", "),
                );
                self.mode = Mode::Confirm { question, action: Box::new(Action::StopAll(live)) };
                None
            }
            KeyCode::Char('D') => {
                let (group, mut rows) = self.selected_group()?;
                // Remote hosts' sessions are removed on their host.
                rows.retain(|r| r.host.is_none());
                let names: Vec<String> = rows.iter().map(|r| self.qualified(r)).collect();
                let lost: Vec<String> = rows
                    .iter()
                    .filter_map(|r| {
                        r.unsaved().map(|what| SessionError::WouldLoseWork { slug: r.name.clone(), what }.to_string())
                    })
                    .collect();
                let lost = if lost.is_empty() {
                    "Nothing unsaved: worktrees and branches go.".to_owned()
                } else {
                    format!(
                        "{}: kept only in a snapshot ref (refs/tandem/archive); worktrees and branches go.",
                        lost.join("; ")
                    )
                };
                let question = format!(
                    "Remove {} in {} ({})? {lost} y/n",
                    plural(u32::try_from(rows.len()).unwrap_or(u32::MAX), "session"),
                    group.title(),
                    names.join(", "),
                );
                let all = rows.iter().map(|r| (self.qualified(r), r.unsaved().is_some())).collect();
                self.mode = Mode::Confirm { question, action: Box::new(Action::RemoveAll(all)) };
                None
            }
            KeyCode::Char('T') => Some(Action::Turns(name)),
            KeyCode::Char('x') => Some(Action::Stop(name)),
            KeyCode::Char('r') => Some(Action::Respawn(name)),
            KeyCode::Char('f') => Some(Action::Fork(name)),
            KeyCode::Char('p') => Some(Action::Pin { name, pinned: !row.meta.pinned }),
            KeyCode::Char('a') => {
                let question = format!(
                    "Archive {name}? The agent stops; the worktree goes, {} and the branch are kept \
                     (`tandem restore` brings it back). y/n",
                    row.unsaved().map_or_else(|| "nothing is unsaved".to_owned(), |u| format!("its {u} (snapshot)")),
                );
                self.mode = Mode::Confirm { question, action: Box::new(Action::Archive(name)) };
                None
            }
            KeyCode::Char('d') => {
                let (question, force) = match row.unsaved() {
                    None => (format!("Remove {name}? Nothing unsaved: worktree and branch go. y/n"), false),
                    Some(unsaved) => (
                        format!(
                            "Remove {name}? It has {unsaved}: they are kept only in a snapshot ref \
                             (refs/tandem/archive); worktree and branch go. y/n"
                        ),
                        true,
                    ),
                };
                self.mode = Mode::Confirm { question, action: Box::new(Action::Remove { name, force }) };
                None
            }
            KeyCode::Char(c @ '1'..='5') => {
                let priority = Priority::ALL[usize::from(c as u8 - b'1')];
                Some(Action::Priority { name, priority })
            }
            KeyCode::Char('t') => {
                let at = TaskStatus::ALL.iter().position(|s| *s == row.meta.status).map_or(0, |i| i + 1);
                Some(Action::Status { name, status: TaskStatus::ALL[at % TaskStatus::ALL.len()] })
            }
            _ => None,
        }
    }

    /// A key on a remote host's session (`host`): enter attaches to it
    /// there (`tandem attach HOST:NAME`); every other key that acts on a
    /// session says it acts on local sessions only.
    fn remote_key(&mut self, code: KeyCode, host: &str, name: &str) -> Option<Action> {
        let acts = matches!(
            code,
            KeyCode::Char(
                's' | 'y'
                    | 'n'
                    | 'N'
                    | 'a'
                    | 'v'
                    | 'e'
                    | 'R'
                    | 'm'
                    | 'X'
                    | 'D'
                    | 'x'
                    | 'r'
                    | 'f'
                    | 'p'
                    | 'd'
                    | 't'
                    | 'T'
                    | '1'..='5'
            )
        );
        match code {
            KeyCode::Enter => Some(Action::Attach(format!("{host}:{name}"))),
            _ if acts => {
                self.say(format!(
                    "{host}:{name} is on {host}: this key acts on local sessions only (enter attaches; \
                     `tandem COMMAND {host}:{name}` in a shell)"
                ));
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tandem_core::session::facts::GitFacts;

    /// Facts of a clean worktree level with its base.
    pub(crate) fn exists() -> GitFacts {
        let mut facts = GitFacts::default();
        facts.worktree.exists = true;
        facts.refs.ahead = Some(0);
        facts.refs.behind = Some(0);
        facts
    }

    pub(crate) fn row(name: &str, state: &str) -> SessionRow {
        SessionRow {
            id: format!("id-{name}"),
            name: name.to_owned(),
            agent: "claude".to_owned(),
            state: state.to_owned(),
            branch: name.to_owned(),
            base: "main".to_owned(),
            facts: exists(),
            ..SessionRow::default()
        }
    }

    fn press(app: &mut App, code: KeyCode) -> Option<Action> {
        app.key(Key::new(code))
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            assert_eq!(press(app, KeyCode::Char(c)), None);
        }
    }

    /// A sub-session sorts right after its creator in their group, not by
    /// its own name.
    #[test]
    fn sub_sessions_follow_their_creator() {
        let mut app = App::new();
        let mut sub = row("aaa-sub", "running");
        sub.creator = Some("boss".to_owned());
        let mut orphan = row("orphan", "running");
        orphan.creator = Some("gone-elsewhere".to_owned());
        app.set_rows(vec![row("boss", "running"), row("zed", "running"), sub, row("carol", "running"), orphan]);
        let names: Vec<&str> = app.visible().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["boss", "aaa-sub", "carol", "orphan", "zed"]);
    }

    #[test]
    fn rows_are_grouped_by_what_they_need() {
        let mut app = App::new();
        let mut pinned = row("zeta", "idle");
        pinned.meta.pinned = true;
        app.set_rows(vec![
            row("alpha", "idle"),
            row("beta", "exited"),
            row("gamma", "needs-input"),
            row("delta", "running"),
            pinned,
            row("old", "archived"),
        ]);
        let names: Vec<&str> = app.visible().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["gamma", "delta", "zeta", "alpha", "beta"], "archived is folded away");
        assert_eq!(app.archived(), 1);
        assert_eq!(app.selected_row().map(|r| r.name.as_str()), Some("gamma"));
        press(&mut app, KeyCode::Char('A'));
        assert_eq!(app.visible().last().map(|r| r.name.as_str()), Some("old"));
    }

    #[test]
    fn the_screens_built_ahead_are_the_way_the_selection_moves() {
        let mut app = App::new();
        let names = ["a", "b", "c", "d", "e"];
        app.set_rows(names.iter().map(|n| row(n, "running")).collect());
        let ahead = |app: &App| -> Vec<String> {
            app.ahead().iter().map(|id| app.rows().iter().find(|r| &r.id == id).expect("a row").name.clone()).collect()
        };
        // At the top: the next two down (nothing behind).
        assert_eq!(ahead(&app), ["b", "c"]);
        press(&mut app, KeyCode::Down);
        assert_eq!(ahead(&app), ["c", "d", "a"]);
        press(&mut app, KeyCode::Up);
        assert_eq!(ahead(&app), ["b", "c"], "at the top nothing is above; it looks down again");
        // From the last row the only way is up.
        press(&mut app, KeyCode::End);
        assert_eq!(ahead(&app), ["d", "c"]);
        press(&mut app, KeyCode::Home);
        assert_eq!(ahead(&app), ["b", "c"]);
    }

    #[test]
    fn the_selection_follows_its_session_and_needs_input_is_announced_once() {
        let mut app = App::new();
        assert!(app.set_rows(vec![row("a", "running"), row("b", "running")]).is_empty());
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected_row().map(|r| r.name.as_str()), Some("b"));
        let newly = app.set_rows(vec![row("a", "running"), row("b", "needs-input")]);
        assert_eq!(newly, ["b"]);
        assert_eq!(app.selected_row().map(|r| r.name.as_str()), Some("b"), "b moved to the top, still selected");
        assert!(app.set_rows(vec![row("a", "running"), row("b", "needs-input")]).is_empty(), "only once");
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected_row().map(|r| r.name.as_str()), Some("a"), "stops at the end");
    }

    #[test]
    fn keys_act_on_the_selected_session() {
        let mut app = App::new();
        app.set_rows(vec![row("ask", "needs-input"), row("work", "running")]);
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::Approve("ask".into())));
        assert_eq!(press(&mut app, KeyCode::Char('N')), Some(Action::Deny("ask".into())));
        assert_eq!(press(&mut app, KeyCode::Enter), Some(Action::Attach("ask".into())));
        press(&mut app, KeyCode::Down);
        assert_eq!(press(&mut app, KeyCode::Char('y')), None, "nothing to approve");
        assert_eq!(press(&mut app, KeyCode::Char('x')), Some(Action::Stop("work".into())));
        assert_eq!(press(&mut app, KeyCode::Char('r')), Some(Action::Respawn("work".into())));
        assert_eq!(press(&mut app, KeyCode::Char('f')), Some(Action::Fork("work".into())));
        assert_eq!(press(&mut app, KeyCode::Char('p')), Some(Action::Pin { name: "work".into(), pinned: true }));
        assert_eq!(
            press(&mut app, KeyCode::Char('2')),
            Some(Action::Priority { name: "work".into(), priority: Priority::High })
        );
        // `t` moves the status on: in-progress (every new session's) to in-review.
        assert_eq!(
            press(&mut app, KeyCode::Char('t')),
            Some(Action::Status { name: "work".into(), status: TaskStatus::InReview })
        );
        assert_eq!(press(&mut app, KeyCode::Char('s')), None);
        typed(&mut app, "run the tests");
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Action::Send { name: "work".into(), text: "run the tests".into() })
        );
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(press(&mut app, KeyCode::Char('q')), Some(Action::Quit));
    }

    #[test]
    fn remove_says_what_would_be_lost_and_waits_for_yes() {
        let mut app = App::new();
        let mut dirty = row("a-dirty", "idle");
        dirty.facts.worktree.changed = 2;
        dirty.facts.worktree.untracked = 1;
        dirty.facts.refs.ahead = Some(3);
        app.set_rows(vec![dirty, row("b-clean", "idle")]);
        assert_eq!(press(&mut app, KeyCode::Char('d')), None);
        let Mode::Confirm { question, .. } = &app.mode else { panic!("a confirmation, not {:?}", app.mode) };
        assert!(question.contains("2 changed files, 1 untracked file, 3 commits not on main"), "{question}");
        assert_eq!(press(&mut app, KeyCode::Char('n')), None, "anything but y cancels");
        assert_eq!(app.mode, Mode::Normal);
        press(&mut app, KeyCode::Char('d'));
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::Remove { name: "a-dirty".into(), force: true }));
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Char('d'));
        let Mode::Confirm { question, .. } = &app.mode else { panic!("a confirmation") };
        assert!(question.contains("Nothing unsaved"), "{question}");
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::Remove { name: "b-clean".into(), force: false }));
    }

    /// Issue 16: the agent's question travels inside OSC 9 and OSC 777;
    /// nothing in it (BEL, ESC, the C1 string terminator, a newline) may
    /// end or extend the sequence.
    #[test]
    fn a_notification_cannot_end_or_extend_its_osc_sequence() {
        let mut asking = row("fix-login", "needs-input");
        asking.asking = Some("Bash: x\x07\x1b]52;c;Y3VybCBldmlsfHNo\x07\u{9c}\r\nrm".into());
        let text = notification(&[&asking]);
        assert!(!text.contains(tandem_core::text::needs_escape), "{text:?}");
        assert_eq!(text, r"fix-login needs input: Bash: x\x07\e]52 c Y3VybCBldmlsfHNo\x07\u{9c}\r\nrm");
        let two = [&row("a", "needs-input"), &row("b", "needs-input")];
        assert_eq!(notification(&two), "a, b need input");
    }

    #[test]
    fn filter_and_new_session_form() {
        let mut app = App::new();
        let mut titled = row("b", "idle");
        titled.meta.title = Some("Fix the Login page".into());
        app.set_rows(vec![row("a", "idle"), titled]);
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "login");
        assert_eq!(app.visible().len(), 1);
        assert_eq!(app.selected_row().map(|r| r.name.as_str()), Some("b"));
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.filter, "login", "Enter keeps the filter");
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.visible().len(), 2);

        press(&mut app, KeyCode::Char('c'));
        typed(&mut app, "job");
        press(&mut app, KeyCode::Tab);
        typed(&mut app, "shell");
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Tab);
        typed(&mut app, "ls");
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Action::New {
                name: Some("job".into()),
                agent: Some("shell".into()),
                base: None,
                prompt: Some("ls".into())
            })
        );
    }

    #[test]
    fn paths_in_the_worktree_are_relative() {
        let wt = Path::new("/home/u/.tandem/worktrees/shop/fix");
        assert_eq!(relative("Edit /home/u/.tandem/worktrees/shop/fix/src/a.rs?", wt), "Edit src/a.rs?");
        assert_eq!(relative("cd /home/u/.tandem/worktrees/shop/fix && ls", wt), "cd . && ls");
        assert_eq!(relative("/home/u/.tandem/worktrees/shop/fixed/a", wt), "/home/u/.tandem/worktrees/shop/fixed/a");
        assert_eq!(relative("nothing here", wt), "nothing here");
    }

    #[test]
    fn y_and_n_on_a_session_that_asks_nothing_say_so_and_c_is_new() {
        let mut app = App::new();
        app.set_rows(vec![row("work", "running")]);
        assert_eq!(press(&mut app, KeyCode::Char('y')), None);
        assert_eq!(app.message.as_deref(), Some("work asks nothing: there is nothing to approve"));
        assert_eq!(press(&mut app, KeyCode::Char('n')), None);
        assert!(app.message.as_deref().is_some_and(|m| m.contains("nothing to deny")), "{:?}", app.message);
        assert_eq!(app.mode, Mode::Normal, "n is not the new-session form");
        press(&mut app, KeyCode::Char('c'));
        assert!(matches!(app.mode, Mode::New(_)));
        assert!(!app.expire_message(MESSAGE_FOR), "said just now");
        assert!(app.expire_message(Duration::ZERO));
        assert_eq!(app.message, None);
    }

    #[test]
    fn a_group_is_stopped_or_removed_after_one_question() {
        let mut app = App::new();
        let mut dirty = row("b", "idle");
        dirty.facts.worktree.changed = 2;
        app.set_rows(vec![row("a", "idle"), dirty, row("c", "running")]);
        press(&mut app, KeyCode::Down);
        assert_eq!(press(&mut app, KeyCode::Char('X')), None);
        let Mode::Confirm { question, .. } = &app.mode else { panic!("a confirmation") };
        assert!(question.starts_with("Stop 2 sessions in IDLE (a, b)?"), "{question}");
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::StopAll(vec!["a".into(), "b".into()])));
        press(&mut app, KeyCode::Char('D'));
        let Mode::Confirm { question, .. } = &app.mode else { panic!("a confirmation") };
        assert!(question.contains("session `b` has 2 changed files: kept only in a snapshot ref"), "{question}");
        assert_eq!(
            press(&mut app, KeyCode::Char('y')),
            Some(Action::RemoveAll(vec![("a".into(), false), ("b".into(), true)]))
        );
    }

    #[test]
    fn archived_rows_restore_and_keys_for_diff_review_merge() {
        let mut app = App::new();
        app.set_rows(vec![row("old", "archived"), row("work", "idle")]);
        assert_eq!(press(&mut app, KeyCode::Char('v')), Some(Action::Diff("work".into())));
        assert_eq!(press(&mut app, KeyCode::Char('e')), None);
        typed(&mut app, "job");
        assert_eq!(press(&mut app, KeyCode::Enter), Some(Action::Rename { name: "work".into(), to: "job".into() }));
        assert_eq!(press(&mut app, KeyCode::Char('R')), Some(Action::Review("work".into())));
        assert_eq!(press(&mut app, KeyCode::Char('m')), None);
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::Merge("work".into())));
        press(&mut app, KeyCode::Char('A'));
        press(&mut app, KeyCode::Down);
        assert_eq!(press(&mut app, KeyCode::Char('a')), Some(Action::Restore("old".into())));
    }

    pub(crate) fn checkpoint(n: u32, prompt: Option<&str>) -> Checkpoint {
        Checkpoint {
            n,
            commit: format!("{n:040}"),
            tree: format!("{n:040}"),
            head: None,
            index_tree: None,
            at_ms: 1_800_000_000_000 - i64::from(n) * 60_000,
            cause: tandem_core::model::Cause::Turn,
            rewound_to: None,
            prompt: prompt.map(str::to_owned),
            agent: "claude".to_owned(),
            files: n,
            added: 10 * n,
            removed: n,
            message_id: None,
        }
    }

    /// Issue 22: `T` opens a session's turns; in them `⏎`/`v` diff one,
    /// `r` and `u` rewind and undo only after `y` (anything else goes
    /// back to the list), and the selection stays on its checkpoint when
    /// the list is reloaded.
    #[test]
    fn turns_diff_rewind_and_undo_after_yes() {
        let mut app = App::new();
        app.set_rows(vec![row("work", "idle")]);
        assert_eq!(press(&mut app, KeyCode::Char('T')), Some(Action::Turns("work".into())));
        app.open_turns("work".into(), vec![checkpoint(2, Some("edit")), checkpoint(1, Some("write"))]);
        assert_eq!(press(&mut app, KeyCode::Enter), Some(Action::TurnDiff { name: "work".into(), n: 2 }));
        assert_eq!(app.turns_of(), Some("work"), "still in the list after a diff");
        press(&mut app, KeyCode::Down);
        assert_eq!(press(&mut app, KeyCode::Char('v')), Some(Action::TurnDiff { name: "work".into(), n: 1 }));
        assert_eq!(press(&mut app, KeyCode::Char('r')), None);
        let Mode::Turns(Turns { confirm: Some((question, _)), .. }) = &app.mode else { panic!("a question") };
        assert!(
            question.starts_with("Rewind work to checkpoint 1 (write)?") && question.contains("u undoes"),
            "{question}"
        );
        assert_eq!(press(&mut app, KeyCode::Char('n')), None, "anything but y cancels");
        assert!(matches!(&app.mode, Mode::Turns(Turns { confirm: None, .. })), "{:?}", app.mode);
        press(&mut app, KeyCode::Char('r'));
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::Rewind { name: "work".into(), n: 1 }));
        assert_eq!(press(&mut app, KeyCode::Char('u')), None);
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::UndoRewind("work".into())));
        app.set_turns(vec![checkpoint(3, None), checkpoint(2, Some("edit")), checkpoint(1, Some("write"))]);
        let Mode::Turns(turns) = &app.mode else { panic!("the list") };
        assert_eq!(turns.current().map(|c| c.n), Some(1), "the same checkpoint stays selected");
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        assert_eq!(app.mode, Mode::Normal);
        // No checkpoint yet: r says so, nothing to confirm.
        app.open_turns("work".into(), Vec::new());
        assert_eq!(press(&mut app, KeyCode::Char('r')), None);
        assert_eq!(app.message.as_deref(), Some("work has no checkpoint to rewind to yet"));
    }

    #[test]
    fn keys_on_a_remote_hosts_session_attach_there_or_say_local_only() {
        let mut app = App::new();
        let remote = SessionRow { host: Some("gpu".into()), ..row("far", "idle") };
        app.set_rows(vec![remote, row("near", "idle")]);
        assert_eq!(app.selected_row().map(|r| r.name.as_str()), Some("far"));
        assert_eq!(press(&mut app, KeyCode::Enter), Some(Action::Attach("gpu:far".into())));
        for key in ['x', 'd', 's', 'p', '2', 'X', 'D'] {
            app.message = None;
            assert_eq!(press(&mut app, KeyCode::Char(key)), None, "{key}");
            assert_eq!(app.mode, Mode::Normal, "{key}");
            let said = app.message.clone().unwrap_or_default();
            assert!(said.contains("gpu:far is on gpu: this key acts on local sessions only"), "{key}: {said}");
        }
        // A group's stop and remove leave the remote session out.
        press(&mut app, KeyCode::Down);
        assert_eq!(press(&mut app, KeyCode::Char('X')), None);
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::StopAll(vec!["near".into()])));
        press(&mut app, KeyCode::Char('D'));
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::RemoveAll(vec![("near".into(), false)])));
    }
}
