//! The supervisor's cache of git facts, kept fresh by inotify.
//!
//! A `tandem list` that finds nothing changed must not run `git status`
//! fifty times, and must never show a stale fact. So:
//! - Worktree facts ([`WorktreeFacts`]) are cached per session and
//!   dropped on any inotify event in the worktree (every folder but
//!   `.git` is watched; folders made later are watched as they appear)
//!   or in its admin folder (`.git/worktrees/<name>`: `HEAD`, `index`),
//!   or in the repository's `info/` (excludes). Pending events are
//!   read without blocking at the start of every query: the kernel queues
//!   an event before the write that caused it returns, so any change made
//!   before the query is seen. A queue overflow drops everything.
//! - Ref facts ([`RefFacts`]) are cached per session keyed by the commits
//!   they were computed from: the branch tip, the base's and the remote
//!   default's commit, all read with one `git for-each-ref` per query.
//! - Watches are set up in the background after a session's first
//!   query. Until its watch set is complete, a session is recomputed on
//!   every query; when it is, the session is recomputed once more (a
//!   change made while watches were being added may have no event).
//! - Watches are a budget (issue 23): the supervisor holds at most
//!   [`watch_cap`] of them (`[watch] max_watches`, by default all but an
//!   eighth of `fs.inotify.max_user_watches`). A worktree whose folders do not
//!   all fit (or that meets the kernel's own limit) gives back the
//!   watches it got and is *polled*: its facts are computed with git on
//!   every query, never served from the cache, so they are never stale
//!   and never said to be watched ([`FactsSource`]). When another
//!   worktree's watches go away (a session removed), polled worktrees try
//!   again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::model::{FactsSource, WatchReport};
use crate::repo::Repository;
use crate::session::facts::{self, GitFacts, RefFacts, WorktreeFacts};
use crate::store::Session;

/// What a watch belongs to.
#[derive(Clone)]
enum Owner {
    /// A folder of a session's worktree (or its admin folder).
    Session { id: String, dir: PathBuf, recursive: bool },
    /// A repository's `info/` folder: every session of it.
    Repo { common_dir: PathBuf },
}

#[derive(Default)]
struct Entry {
    path: PathBuf,
    common_dir: PathBuf,
    /// Watch set complete (and no event since it was).
    watched: bool,
    /// Watch setup started.
    watching: bool,
    worktree: Option<WorktreeFacts>,
    refs: Option<(RefKey, RefFacts)>,
    /// Counts the events seen in the worktree (or its admin folder).
    generation: u64,
    /// Out of watches: [`Watches::freed`] when its watch set was given
    /// up; it tries again once more have been freed.
    polled_at: Option<u64>,
}

type RefKey = (Option<String>, Option<String>, Option<String>, String);

struct Watches {
    inotify: Inotify,
    owners: Mutex<HashMap<WatchDescriptor, Owner>>,
    /// The most watches held at once (`owners.len()`).
    cap: usize,
    /// Watches given back because their folder went away (a removed
    /// session's worktree): room a polled worktree may now fit in.
    freed: std::sync::atomic::AtomicU64,
}

/// Why a worktree could not be watched whole.
#[derive(Debug)]
struct OutOfWatches;

impl Watches {
    /// Watches `dir` for `owner`, within the cap.
    fn add(&self, dir: &Path, owner: Owner) -> Result<(), nix::errno::Errno> {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if owners.len() >= self.cap {
            return Err(nix::errno::Errno::ENOSPC);
        }
        let wd = self.inotify.add_watch(dir, FLAGS)?;
        owners.insert(wd, owner);
        Ok(())
    }

    /// Gives back every watch of session `id` (forgotten before they are
    /// removed, so their `IN_IGNORED` events count as nothing freed).
    fn give_back(&self, id: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let mine: Vec<WatchDescriptor> = owners
            .iter()
            .filter(|(_, o)| matches!(o, Owner::Session { id: of, .. } if of == id))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in mine {
            owners.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }
}

/// The cap for `[watch] max_watches = configured`: itself, or (0) the
/// system's `fs.inotify.max_user_watches` less what is left to editors
/// and the agents' own file watchers: an eighth of it, at least 8,192
/// (half of a limit below 16,384). 8,192, the kernel's old default, is
/// taken as the limit when it cannot be read.
#[must_use]
pub fn watch_cap(configured: u64) -> usize {
    if configured > 0 {
        return usize::try_from(configured).unwrap_or(usize::MAX);
    }
    default_cap(system_max_watches().unwrap_or(8_192))
}

/// [`watch_cap`]'s default for a system limit of `system` watches.
fn default_cap(system: usize) -> usize {
    system - (system / 8).max(8_192.min(system / 2))
}

/// `fs.inotify.max_user_watches`, if readable.
#[must_use]
pub fn system_max_watches() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").ok()?.trim().parse().ok()
}

/// The facts cache; one per supervisor, shared by its threads.
pub struct FactsCache {
    watches: Option<Arc<Watches>>,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    repos_watched: Mutex<HashSet<PathBuf>>,
    /// Per repository: the refs' fingerprint, every branch and
    /// remote-tracking tip, and the remote's default branch.
    refs: Mutex<HashMap<PathBuf, (Fingerprint, Tips)>>,
}

type Tips = (HashMap<String, String>, Option<String>);

/// What changes whenever a ref does: git updates a loose ref by renaming
/// a lock file over it, which changes its folder's mtime and ctime, and
/// rewrites `packed-refs` and `config` (remotes) the same way. So equal
/// fingerprints mean equal refs, without running git.
#[derive(PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, i64, i64, i64, i64, u64)>);

fn fingerprint(common_dir: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let mut stats = Vec::new();
    let mut stack = vec![common_dir.join("refs/heads"), common_dir.join("refs/remotes")];
    for file in ["packed-refs", "config", "HEAD"] {
        let path = common_dir.join(file);
        if let Ok(m) = std::fs::symlink_metadata(&path) {
            stats.push((path, m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), m.ino()));
        }
    }
    while let Some(dir) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&dir) else { continue };
        stats.push((dir.clone(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), m.ino()));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    Fingerprint(stats)
}

const FLAGS: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

impl Default for FactsCache {
    fn default() -> Self {
        FactsCache::new()
    }
}

impl FactsCache {
    /// A cache with its own inotify instance, holding at most
    /// [`watch_cap`]`(0)` watches; without one (the limit of instances
    /// reached) it caches nothing and computes every time.
    #[must_use]
    pub fn new() -> FactsCache {
        FactsCache::with_cap(watch_cap(0))
    }

    /// [`FactsCache::new`] holding at most `cap` watches.
    #[must_use]
    pub fn with_cap(cap: usize) -> FactsCache {
        let watches = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| tracing::warn!(error = %e, "no inotify; `tandem list` will not cache"))
            .ok()
            .map(|inotify| {
                let owners = Mutex::new(HashMap::new());
                Arc::new(Watches { inotify, owners, cap, freed: std::sync::atomic::AtomicU64::new(0) })
            });
        FactsCache { watches, entries: Arc::default(), repos_watched: Mutex::default(), refs: Mutex::default() }
    }

    /// Facts for each of `sessions` (all of `repo`), in order: cached
    /// where nothing changed, computed where something did.
    #[must_use]
    pub fn query(&self, repo: &Repository, sessions: &[&Session]) -> Vec<GitFacts> {
        self.query_and_tips(repo, sessions).0
    }

    /// [`FactsCache::query`], with the branch and remote-tracking tips it
    /// used ([`FactsCache::ref_tips`]): `list` needs them again for the
    /// conflict marks, and each look at them reads every folder under
    /// `refs/`.
    #[must_use]
    pub fn query_and_tips(
        &self,
        repo: &Repository,
        sessions: &[&Session],
    ) -> (Vec<GitFacts>, std::collections::HashMap<String, String>) {
        self.drain();
        self.watch_repo(repo);
        let (tips, remote) = self.tips(repo);
        let remote_oid = remote.as_ref().and_then(|r| tips.get(r)).cloned();
        let freed = self.watches.as_ref().map_or(0, |w| w.freed.load(std::sync::atomic::Ordering::Relaxed));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Worktrees to scan: new, moved, unwatched, or changed.
        let mut scan = Vec::new();
        for (i, s) in sessions.iter().enumerate() {
            let entry = current_entry(&mut entries, s, repo, freed);
            // A missing worktree has no watches: look again every time.
            if entry.worktree.as_ref().is_none_or(|w| !w.exists) || !entry.watched {
                scan.push(i);
                entry.worktree = None;
            }
        }
        // Ref facts whose commits moved.
        let keys: Vec<RefKey> = sessions
            .iter()
            .map(|s| {
                let tip = tips.get(&format!("refs/heads/{}", s.branch)).cloned();
                let base = tips.get(&facts::base_of(s, &tips)).cloned();
                (tip, base, remote_oid.clone(), s.base_commit.clone())
            })
            .collect();
        let stale_refs: Vec<usize> = (0..sessions.len())
            .filter(|&i| entries.get(&sessions[i].id).and_then(|e| e.refs.as_ref()).is_none_or(|(k, _)| k != &keys[i]))
            .collect();
        // What each scanned entry's change count is now: a change (or a
        // watch set completed) while the scan runs makes its answer stale.
        let before: Vec<u64> = scan.iter().map(|&i| entries.get(&sessions[i].id).map_or(0, |e| e.generation)).collect();
        drop(entries);
        let scanned = facts::worktree_facts_many(&scan.iter().map(|&i| sessions[i]).collect::<Vec<_>>());
        let stale: Vec<&Session> = stale_refs.iter().map(|&i| sessions[i]).collect();
        let refs = facts::ref_facts(&repo.root, &stale, &tips, remote.as_deref());
        let mut shown_once: Vec<(String, Option<WorktreeFacts>)> = Vec::new();
        // Events that arrived during the scan are counted now.
        self.drain();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for ((&i, facts), generation) in scan.iter().zip(scanned).zip(before) {
            if let Some(e) = entries.get_mut(&sessions[i].id) {
                if !facts.exists {
                    // Watch it afresh once it is back (doctor, restore).
                    (e.watched, e.watching) = (false, false);
                }
                // Shown this once either way; kept only if nothing changed
                // while it was taken.
                let stale = e.generation != generation;
                e.worktree = Some(facts);
                if stale {
                    shown_once.push((sessions[i].id.clone(), e.worktree.take()));
                }
            }
        }
        for (&i, facts) in stale_refs.iter().zip(refs) {
            if let Some(e) = entries.get_mut(&sessions[i].id) {
                e.refs = Some((keys[i].clone(), facts));
            }
        }
        let out = sessions
            .iter()
            .map(|s| {
                let e = entries.get(&s.id);
                let once = shown_once.iter().find(|(id, _)| id == &s.id).and_then(|(_, w)| w.clone());
                GitFacts {
                    worktree: once.or_else(|| e.and_then(|e| e.worktree.clone())).unwrap_or_default(),
                    refs: e.and_then(|e| e.refs.as_ref()).map(|(_, r)| r.clone()).unwrap_or_default(),
                    // Watched: served from the cache until an event says
                    // otherwise. Anything else was just computed with git.
                    source: if e.is_some_and(|e| e.watched) { FactsSource::Watched } else { FactsSource::Polled },
                }
            })
            .collect();
        // Start watching the worktrees not watched yet.
        let start: Vec<(String, PathBuf)> = sessions
            .iter()
            .filter_map(|s| {
                let e = entries.get_mut(&s.id)?;
                (!e.watching && e.worktree.as_ref().is_some_and(|w| w.exists)).then(|| {
                    e.watching = true;
                    (s.id.clone(), s.path.clone())
                })
            })
            .collect();
        drop(entries);
        self.start_watching(start);
        (out, tips)
    }

    /// Watches each `(session id, worktree)` on one background thread at
    /// the lowest priority; each entry is marked watched (and its facts
    /// dropped, to be computed once more) or polled when it is done.
    fn start_watching(&self, start: Vec<(String, PathBuf)>) {
        if let Some(watches) = &self.watches
            && !start.is_empty()
        {
            let watches = Arc::clone(watches);
            let entries = Arc::clone(&self.entries);
            std::thread::spawn(move || {
                crate::process::lower_thread_priority();
                for (id, path) in start {
                    // Read before the walk: a watch freed during it is a
                    // reason to try again.
                    let freed = watches.freed.load(std::sync::atomic::Ordering::Relaxed);
                    let mut complete = watch_worktree(&watches, &id, &path).is_ok();
                    let mut entries = entries.lock().unwrap_or_else(PoisonError::into_inner);
                    // A folder made during the walk that did not fit has
                    // given back this worktree's watches meanwhile (and
                    // marked it polled): the set is not whole.
                    if entries.get(&id).is_some_and(|e| e.polled_at.is_some()) {
                        complete = false;
                    }
                    if !complete {
                        watches.give_back(&id);
                        tracing::warn!(session = %id, cap = watches.cap, "out of inotify watches; this worktree is polled (its facts read with git on every list)");
                    }
                    if let Some(e) = entries.get_mut(&id) {
                        // Recompute once more: a change made while the
                        // watches went in may have left no event.
                        e.worktree = None;
                        e.generation += 1;
                        e.watched = complete;
                        e.polled_at = (!complete).then_some(freed);
                    }
                }
            });
        }
    }

    /// The commit `refs/heads/<branch>` points at (`None`: no such
    /// branch), from git only when the refs' fingerprint changed.
    pub fn branch_tip(&self, repo: &Repository, branch: &str) -> Option<String> {
        self.tips(repo).0.get(&format!("refs/heads/{branch}")).cloned()
    }

    /// Every tip and the remote's default branch, from git only when the
    /// refs' fingerprint changed.
    fn tips(&self, repo: &Repository) -> Tips {
        let print = fingerprint(&repo.common_dir);
        let mut cache = self.refs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, tips)) = cache.get(&repo.common_dir)
            && known == &print
        {
            return tips.clone();
        }
        let tips = (facts::ref_tips(&repo.root).unwrap_or_default(), facts::remote_base(&repo.root));
        cache.insert(repo.common_dir.clone(), (print, tips.clone()));
        tips
    }

    /// The worktree facts of a session if the cache holds them exactly
    /// (watched, and no event since they were computed), else `None`.
    #[must_use]
    pub fn fresh_worktree(&self, session: &Session) -> Option<WorktreeFacts> {
        self.drain();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get(&session.id)?;
        (e.watched && e.path == session.path).then(|| e.worktree.clone()).flatten().filter(|w| w.exists)
    }

    /// Whether a `git status` of the session's worktree through
    /// [`FactsCache::query`] now would be kept: the cache has no entry for
    /// it yet (its watches start with the query), or it is fully watched
    /// and its facts were dropped by a change. False while its watches are
    /// being set up or when it is polled (a query's answer would not be
    /// kept).
    #[must_use]
    pub fn lacks_facts(&self, session: &Session) -> bool {
        self.drain();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&session.id) {
            None => true,
            Some(e) => e.path != session.path || (e.watched && e.worktree.is_none()),
        }
    }

    /// [`FactsCache::fresh_worktree`] with the worktree's generation
    /// ([`FactsCache::worktree_generation`]) read under the same lock: the
    /// facts (their `paths` too) describe the worktree as of that
    /// generation.
    #[must_use]
    pub fn fresh_worktree_at(&self, session: &Session) -> Option<(WorktreeFacts, u64)> {
        self.drain();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get(&session.id)?;
        let facts = (e.watched && e.path == session.path).then(|| e.worktree.clone()).flatten()?;
        facts.exists.then_some((facts, e.generation))
    }

    /// How many changes were seen in a session's worktree (files, `HEAD`,
    /// index) so far, while it is fully watched; `None` when it is not
    /// (then nothing about it may be reused).
    #[must_use]
    pub fn worktree_generation(&self, session: &Session) -> Option<u64> {
        self.drain();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get(&session.id)?;
        (e.watched && e.path == session.path).then_some(e.generation)
    }

    /// Every branch and remote-tracking ref of `repo` and its commit, from
    /// git only when the refs' fingerprint changed.
    #[must_use]
    pub fn ref_tips(&self, repo: &Repository) -> std::collections::HashMap<String, String> {
        self.tips(repo).0
    }

    /// Computes a new session's facts, waits (at most 10 s) for its
    /// watches to be in place, and computes them once more: from then on
    /// they come from the cache.
    pub fn warm(&self, repo: &Repository, session: &Session) {
        let _ = self.query(repo, &[session]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let watched = self
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&session.id)
                .map(|e| (e.watched, e.watching));
            match watched {
                Some((true, _)) => {
                    let _ = self.query(repo, &[session]);
                    return;
                }
                Some((false, true)) => std::thread::sleep(std::time::Duration::from_millis(20)),
                _ => return,
            }
        }
    }

    /// Forgets a session (removed or archived).
    /// Its watches are given back at once (and counted as freed, so a
    /// polled worktree may take them).
    pub fn forget(&self, session_id: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(session_id);
        if let Some(watches) = &self.watches {
            let before = watches.owners.lock().unwrap_or_else(PoisonError::into_inner).len();
            watches.give_back(session_id);
            let after = watches.owners.lock().unwrap_or_else(PoisonError::into_inner).len();
            watches.freed.fetch_add((before - after) as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The watch budget as it stands: watches held, the cap, the system's
    /// limit, and the sessions polled for want of watches.
    #[must_use]
    pub fn report(&self) -> WatchReport {
        let (used, cap) = self
            .watches
            .as_ref()
            .map_or((0, 0), |w| (w.owners.lock().unwrap_or_else(PoisonError::into_inner).len(), w.cap));
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut polled: Vec<String> =
            entries.iter().filter(|(_, e)| e.polled_at.is_some()).map(|(id, _)| id.clone()).collect();
        polled.sort();
        WatchReport { used, cap, system_max: system_max_watches(), polled }
    }

    fn watch_repo(&self, repo: &Repository) {
        let Some(watches) = &self.watches else { return };
        let mut done = self.repos_watched.lock().unwrap_or_else(PoisonError::into_inner);
        if done.insert(repo.common_dir.clone()) {
            let info = repo.common_dir.join("info");
            let _ = std::fs::create_dir_all(&info);
            let _ = watches.add(&info, Owner::Repo { common_dir: repo.common_dir.clone() });
        }
    }

    /// Takes the pending file events (dropping the facts they touch);
    /// true if there were any.
    pub fn changed(&self) -> bool {
        self.drain()
    }

    /// Reads every pending event and drops what they touch; true if
    /// there were any.
    fn drain(&self) -> bool {
        let Some(watches) = &self.watches else { return false };
        let mut any = false;
        let mut stale: HashSet<String> = HashSet::new();
        let mut stale_repos: HashSet<PathBuf> = HashSet::new();
        let mut everything = false;
        let mut new_dirs: Vec<(String, PathBuf)> = Vec::new();
        // Folders whose watch went away (deleted or moved): if one was a
        // worktree's root, that worktree must be watched afresh.
        let mut gone: Vec<(String, PathBuf)> = Vec::new();
        while let Ok(events) = watches.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            any = true;
            let mut owners = watches.owners.lock().unwrap_or_else(PoisonError::into_inner);
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    everything = true;
                    continue;
                }
                let Some(owner) = owners.get(&event.wd).cloned() else { continue };
                match owner {
                    Owner::Session { id, dir, recursive } => {
                        if recursive
                            && event.mask.contains(AddWatchFlags::IN_ISDIR)
                            && event.mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                            && let Some(name) = &event.name
                            && name != ".git"
                        {
                            new_dirs.push((id.clone(), dir.join(name)));
                        }
                        if event.mask.intersects(
                            AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF,
                        ) {
                            gone.push((id.clone(), dir.clone()));
                        }
                        if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                            owners.remove(&event.wd);
                            watches.freed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        stale.insert(id);
                    }
                    Owner::Repo { common_dir } => {
                        stale_repos.insert(common_dir);
                    }
                }
            }
        }
        for (id, dir) in new_dirs {
            if walk_and_watch(watches, &id, &dir).is_err() {
                // Out of watches: the worktree is polled from now on.
                let freed = watches.freed.load(std::sync::atomic::Ordering::Relaxed);
                watches.give_back(&id);
                stale.insert(id.clone());
                if let Some(e) = self.entries.lock().unwrap_or_else(PoisonError::into_inner).get_mut(&id) {
                    (e.watched, e.polled_at) = (false, Some(freed));
                }
            }
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, dir) in gone {
            if let Some(e) = entries.get_mut(&id)
                && e.path == dir
            {
                (e.watched, e.watching) = (false, false);
            }
        }
        for (id, e) in entries.iter_mut() {
            if everything || stale.contains(id) || stale_repos.contains(&e.common_dir) {
                e.worktree = None;
                e.generation += 1;
            }
        }
        any
    }
}

/// Session `s`'s entry, made afresh when it is new or its worktree
/// moved; a polled one whose failure predates the last freed watch
/// (`freed`) is set to be watched again.
fn current_entry<'a>(
    entries: &'a mut HashMap<String, Entry>,
    s: &Session,
    repo: &Repository,
    freed: u64,
) -> &'a mut Entry {
    let entry = entries.entry(s.id.clone()).or_default();
    if entry.path != s.path {
        let generation = entry.generation + 1;
        *entry = Entry { path: s.path.clone(), common_dir: repo.common_dir.clone(), generation, ..Entry::default() };
    }
    if entry.polled_at.is_some_and(|at| at < freed) {
        (entry.watching, entry.polled_at) = (false, None);
    }
    entry
}

/// Watches every folder of a worktree but `.git`, and its admin folder.
/// An error when a watch could not be added (the ones added stay: the
/// caller gives them back).
fn watch_worktree(watches: &Watches, id: &str, path: &Path) -> Result<(), OutOfWatches> {
    walk_and_watch(watches, id, path)?;
    if let Some(admin) = crate::repo::admin_dir(path) {
        let owner = Owner::Session { id: id.to_owned(), dir: admin.clone(), recursive: false };
        watches.add(&admin, owner).map_err(|_| OutOfWatches)?;
    }
    Ok(())
}

/// Adds a watch on `dir`, then on each folder below (top-down, so a
/// folder made during the walk shows up either in the listing or as an
/// event). An error when one could not be added (the cap, or the kernel's
/// `fs.inotify.max_user_watches`).
fn walk_and_watch(watches: &Watches, id: &str, dir: &Path) -> Result<(), OutOfWatches> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let owner = Owner::Session { id: id.to_owned(), dir: dir.clone(), recursive: true };
        match watches.add(&dir, owner) {
            Ok(()) => {}
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => continue,
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot watch");
                return Err(OutOfWatches);
            }
        }
        let Ok(read) = std::fs::read_dir(&dir) else { continue };
        for entry in read.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.file_name() != ".git" {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::default_cap;

    #[test]
    fn the_default_cap_leaves_an_eighth_and_at_least_8192_to_others() {
        assert_eq!(default_cap(192_530), 168_464);
        assert_eq!(default_cap(1_048_576), 917_504);
        assert_eq!(default_cap(65_536), 57_344);
        assert_eq!(default_cap(16_384), 8_192);
        assert_eq!(default_cap(8_192), 4_096);
        assert_eq!(default_cap(0), 0);
    }
}
