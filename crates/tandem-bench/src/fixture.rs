//! `tandem-bench fixture`: a deterministic repository shaped like a large
//! real project, optionally with tandem sessions in several states.
//!
//! Layout of a fixture folder `DIR`:
//!
//! | path | what |
//! |---|---|
//! | `DIR/repo` | the main worktree, `main` checked out, `origin` = `DIR/remote.git` |
//! | `DIR/remote.git` | a bare repository `main` was pushed to |
//! | `DIR/home` | `TANDEM_HOME` for every tandem command |
//! | `DIR/wt` | where the plain-git baseline puts its worktrees |
//! | `DIR/fixture.json` | a [`Fixture`], written last: its presence means "complete" |

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::process::{StopAll, Tandem, fixture_git, run};
use crate::rng::Rng;
use crate::stats::ms;

/// The seed every fixture is built from.
pub const SEED: u64 = 0x7A4D_E3B0;

/// Build a large deterministic repository (and optionally sessions) in DIR
#[derive(clap::Args, Debug)]
pub struct FixtureArgs {
    /// Folder to build in; must not exist or be empty
    dir: PathBuf,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Sessions to create with `tandem new` (needs --tandem)
    #[arg(long, default_value_t = 0)]
    sessions: usize,
    /// The tandem binary used to create sessions
    #[arg(long)]
    tandem: Option<PathBuf>,
}

/// Size of the generated tree.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ShapeArgs {
    /// Tracked files (at least --dirs, as every folder holds one)
    #[arg(long, default_value_t = 28_000)]
    pub files: usize,
    /// Folders, nested 1 to 5 deep
    #[arg(long, default_value_t = 3_000)]
    pub dirs: usize,
}

pub fn run_cmd(args: &FixtureArgs) -> Result<()> {
    let shape = Shape { files: args.shape.files, dirs: args.shape.dirs, sessions: args.sessions };
    let tandem = match (&args.tandem, args.sessions) {
        (None, 0) => None,
        (None, _) => bail!("--sessions needs --tandem PATH (the tandem binary that creates them)"),
        (Some(bin), _) => Some(absolute(bin)?),
    };
    let layout = Layout::new(&args.dir)?;
    let tandem = tandem.map(|bin| layout.tandem(bin));
    let _stop = tandem.as_ref().map(StopAll);
    let fixture = build(&layout, shape, tandem.as_ref().map(|t| t.bin.as_path()))?;
    println!("{}", fixture.summary(&layout));
    Ok(())
}

/// How big a fixture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Tracked files in the initial commit.
    pub files: usize,
    /// Folders holding them (the repository root not counted).
    pub dirs: usize,
    /// tandem sessions created.
    pub sessions: usize,
}

/// Where the parts of a fixture live; see the module docs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The fixture folder, absolute.
    pub root: PathBuf,
}

impl Layout {
    /// The layout under `root` (made absolute; it need not exist yet).
    ///
    /// # Errors
    /// The current directory cannot be read.
    pub fn new(root: &Path) -> Result<Self> {
        Ok(Layout { root: absolute(root)? })
    }
    /// The main worktree.
    #[must_use]
    pub fn repo(&self) -> PathBuf {
        self.root.join("repo")
    }
    /// The bare `origin`.
    #[must_use]
    pub fn remote(&self) -> PathBuf {
        self.root.join("remote.git")
    }
    /// `TANDEM_HOME`.
    #[must_use]
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    /// Parent of the baseline's `git worktree add` folders.
    #[must_use]
    pub fn baseline_worktrees(&self) -> PathBuf {
        self.root.join("wt")
    }
    /// The completion marker, a [`Fixture`] as JSON.
    #[must_use]
    pub fn marker(&self) -> PathBuf {
        self.root.join("fixture.json")
    }
    /// The tandem binary `bin` pointed at this fixture's repository and home.
    #[must_use]
    pub fn tandem(&self, bin: PathBuf) -> Tandem {
        Tandem { bin, home: self.home(), repo: self.repo() }
    }
}

/// A built fixture, as stored in `fixture.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    pub shape: Shape,
    pub seed: u64,
    /// Size of `repo/.git/index` after the build, in bytes.
    pub index_bytes: u64,
    /// Total size of the tracked files, in bytes.
    pub tree_bytes: u64,
    /// Wall-clock time per phase, in milliseconds: writing files, `git add`
    /// and `commit`, packing and pushing, sessions.
    pub write_ms: f64,
    pub commit_ms: f64,
    pub pack_ms: f64,
    pub sessions_ms: f64,
    /// The sessions, in creation order.
    pub sessions: Vec<SessionFixture>,
}

/// One session made by the fixture: two commits ahead, one unstaged edit,
/// one untracked file, and a base that has moved on by one commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionFixture {
    pub name: String,
    /// Its worktree.
    pub path: PathBuf,
    /// The untracked file in it (append to it to make the session change).
    pub untracked: PathBuf,
}

impl Fixture {
    /// Reads the marker of a complete fixture.
    ///
    /// # Errors
    /// The marker is missing or not a [`Fixture`].
    pub fn load(layout: &Layout) -> Result<Self> {
        let path = layout.marker();
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Total build time in milliseconds.
    #[must_use]
    pub fn build_ms(&self) -> f64 {
        self.write_ms + self.commit_ms + self.pack_ms + self.sessions_ms
    }

    /// One paragraph for people.
    #[must_use]
    pub fn summary(&self, layout: &Layout) -> String {
        let mb = |b: u64| b as f64 / 1_048_576.0;
        format!(
            "fixture {}: {} files in {} folders ({:.1} MB), .git/index {:.1} MB, {} sessions\n\
             built in {:.1} s (write files {:.1} s, git add+commit {:.1} s, pack+push {:.1} s, sessions {:.1} s)",
            layout.root.display(),
            self.shape.files,
            self.shape.dirs,
            mb(self.tree_bytes),
            mb(self.index_bytes),
            self.shape.sessions,
            self.build_ms() / 1000.0,
            self.write_ms / 1000.0,
            self.commit_ms / 1000.0,
            self.pack_ms / 1000.0,
            self.sessions_ms / 1000.0,
        )
    }
}

/// Builds a fixture of `shape` under `layout` (whose root must not exist or
/// be empty) and writes its marker: one commit on `main`, pushed to
/// `origin`. Sessions, if any, are made with the tandem binary `tandem` and
/// left stopped (the supervisor keeps running), then `main` gets one more
/// commit so every session is one behind its base.
///
/// # Errors
/// The folder is not empty, the shape is impossible (fewer files than
/// folders, no folders), or a file, git or tandem operation failed.
pub fn build(layout: &Layout, shape: Shape, tandem: Option<&Path>) -> Result<Fixture> {
    if layout.root.exists() && fs::read_dir(&layout.root)?.next().is_some() {
        bail!("{} is not empty; give a new folder, or an existing fixture to `run --fixture`", layout.root.display());
    }
    ensure!(shape.sessions == 0 || tandem.is_some(), "sessions need a tandem binary");
    let plan = plan(shape.files, shape.dirs, SEED)?;
    let repo = layout.repo();

    let start = Instant::now();
    fs::create_dir_all(&repo)?;
    fs::create_dir_all(layout.baseline_worktrees())?;
    let tree_bytes = write_tree(&repo, &plan)?;
    let write_ms = ms(start.elapsed());

    let start = Instant::now();
    run(fixture_git(&repo).args(["init", "-q", "-b", "main"]))?;
    // Above core.bigFileThreshold, `git add` streams blobs into one pack
    // instead of 28k loose files, which are slow to write and to pack.
    run(fixture_git(&repo).args(["-c", "core.bigFileThreshold=1", "add", "-A"]))?;
    run(fixture_git(&repo).args(["commit", "-q", "-m", "Initial import"]))?;
    let commit_ms = ms(start.elapsed());

    let start = Instant::now();
    // A real project's history is packed; loose objects would also invite
    // an automatic gc in the middle of a measurement.
    run(fixture_git(&repo).args(["repack", "-adq"]))?;
    let remote = layout.remote();
    run(fixture_git(&layout.root).args(["init", "-q", "--bare", "-b", "main"]).arg(&remote))?;
    run(fixture_git(&repo).args(["remote", "add", "origin"]).arg(&remote))?;
    run(fixture_git(&repo).args(["push", "-q", "-u", "origin", "main"]))?;
    let pack_ms = ms(start.elapsed());

    let start = Instant::now();
    let mut sessions = Vec::new();
    if let Some(bin) = tandem {
        let tandem = layout.tandem(bin.to_path_buf());
        let mut rng = Rng::new(SEED ^ 0x5E55);
        for i in 1..=shape.sessions {
            sessions.push(make_session(&tandem, &format!("s{i:02}"), &plan, &mut rng)?);
        }
        // Agents are not needed to list; stopped, a reused fixture is in
        // the same state as a fresh one.
        for s in &sessions {
            run(&mut tandem.cmd(["stop", &s.name]))?;
        }
        // Move the base on, so every session is one commit behind.
        append(&repo.join(&plan.files[0].path), b"\nmain moved on\n")?;
        run(fixture_git(&repo).args(["commit", "-q", "-am", "Main moves on"]))?;
    }
    let sessions_ms = ms(start.elapsed());

    let index_bytes = fs::metadata(repo.join(".git/index"))?.len();
    let fixture =
        Fixture { shape, seed: SEED, index_bytes, tree_bytes, write_ms, commit_ms, pack_ms, sessions_ms, sessions };
    fs::write(layout.marker(), serde_json::to_string_pretty(&fixture)?)?;
    Ok(fixture)
}

/// `tandem new`, then two commits of three files each, an unstaged edit of
/// a fourth, and an untracked file.
fn make_session(tandem: &Tandem, name: &str, plan: &Plan, rng: &mut Rng) -> Result<SessionFixture> {
    let (path, _) = tandem.new_session(name)?;
    for commit in 1..=2 {
        for _ in 0..3 {
            let file = &plan.files[rng.below(plan.files.len())];
            append(&path.join(&file.path), format!("\n{name}: change {commit}\n").as_bytes())?;
        }
        run(fixture_git(&path).args(["commit", "-q", "-am"]).arg(format!("{name}: change {commit}")))?;
    }
    let file = &plan.files[rng.below(plan.files.len())];
    append(&path.join(&file.path), format!("\n{name}: work in progress\n").as_bytes())?;
    let untracked = path.join(format!("notes-{name}.txt"));
    fs::write(&untracked, format!("notes of {name}\n"))?;
    Ok(SessionFixture { name: name.to_owned(), path, untracked })
}

/// Appends `bytes` to the existing file `path`.
///
/// # Errors
/// The file cannot be opened or written.
pub fn append(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file =
        fs::OpenOptions::new().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// The folders and files of a fixture, paths relative to the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Parents before children.
    pub dirs: Vec<PathBuf>,
    pub files: Vec<PlannedFile>,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: PathBuf,
    /// Length in bytes.
    pub size: usize,
    /// Seed of its contents.
    pub seed: u64,
}

const TOP: &[&str] = &[
    "crates", "packages", "apps", "services", "libs", "tools", "docs", "web", "server", "client", "infra", "scripts",
    "plugins", "modules", "sdk", "internal", "cmd", "examples", "benches", "vendor",
];
const SUB: &[&str] = &[
    "src",
    "lib",
    "core",
    "utils",
    "components",
    "api",
    "handlers",
    "models",
    "views",
    "services",
    "tests",
    "fixtures",
    "config",
    "hooks",
    "store",
    "routes",
    "widgets",
    "parser",
    "codegen",
    "runtime",
    "storage",
    "net",
    "auth",
    "ui",
    "common",
    "types",
    "io",
    "cache",
    "metrics",
    "sync",
    "cli",
    "proto",
    "schema",
    "migrations",
    "assets",
    "i18n",
    "layout",
    "render",
    "events",
    "jobs",
];
const WORDS: &[&str] = &[
    "alpha", "buffer", "cache", "config", "context", "data", "error", "event", "field", "handle", "index", "item",
    "key", "layout", "list", "map", "node", "option", "parse", "path", "query", "render", "request", "result", "route",
    "session", "state", "stream", "table", "token", "update", "value", "view", "worker", "write", "batch", "client",
    "commit", "diff", "entry", "filter", "graph", "group", "hash", "input", "limit", "merge", "model", "offset",
    "output", "page", "queue", "range", "record", "scope", "shard", "signal", "store", "task", "timer", "tree", "user",
];
/// Extensions and their weights, roughly a polyglot monorepo.
const EXTENSIONS: &[(&str, u32)] = &[
    ("rs", 30),
    ("ts", 20),
    ("tsx", 8),
    ("js", 6),
    ("md", 8),
    ("json", 8),
    ("toml", 3),
    ("py", 5),
    ("css", 3),
    ("yaml", 3),
    ("go", 3),
    ("txt", 3),
];
/// File size classes: a size is drawn in `(max/2, max]` of a class picked by
/// weight (per mille); the mean is about 1 KB.
const SIZE_CLASSES: &[(usize, u32)] =
    &[(256, 250), (512, 300), (1024, 250), (2048, 120), (4096, 50), (8192, 20), (16_384, 7), (65_536, 3)];
const ROOT_FILES: &[&str] = &["README.md", "Cargo.toml", "package.json", ".editorconfig", "LICENSE"];
const MAX_DEPTH: usize = 5;

/// Plans `files` files in `dirs` folders from `seed`: the same arguments
/// always give the same plan. Folders nest 1 to 5 deep (most at 3 to 5);
/// each holds at least one file, the rest are spread unevenly; a few files
/// sit at the root.
///
/// # Errors
/// `dirs` is 0 or `files` is below `dirs`.
pub fn plan(files: usize, dirs: usize, seed: u64) -> Result<Plan> {
    ensure!(dirs > 0, "--dirs must be at least 1");
    ensure!(files >= dirs, "--files ({files}) must be at least --dirs ({dirs}): every folder holds a file");
    let mut rng = Rng::new(seed);
    let mut taken: HashSet<PathBuf> = HashSet::new();

    // Folders: a few top-level ones, then each new one under a random
    // folder that is not yet at the maximum depth.
    let roots = (dirs / 150).clamp(1, TOP.len());
    let mut dir_paths: Vec<PathBuf> = TOP[..roots].iter().map(PathBuf::from).collect();
    let mut eligible: Vec<usize> = (0..roots).collect();
    let mut depth: Vec<usize> = vec![1; roots];
    taken.extend(dir_paths.iter().cloned());
    while dir_paths.len() < dirs {
        let parent = *rng.pick(&eligible);
        let word = *rng.pick(SUB);
        let path = unique(&mut taken, &dir_paths[parent], word, "");
        let d = depth[parent] + 1;
        if d < MAX_DEPTH {
            eligible.push(dir_paths.len());
        }
        dir_paths.push(path);
        depth.push(d);
    }

    // Files: a few at the root, one per folder, the rest weighted.
    let mut planned = Vec::with_capacity(files);
    let size_weights: Vec<u32> = SIZE_CLASSES.iter().map(|c| c.1).collect();
    let size_of = |rng: &mut Rng| {
        let max = SIZE_CLASSES[rng.weighted(&size_weights)].0;
        rng.between(max / 2 + 1, max)
    };
    for name in ROOT_FILES.iter().take((files - dirs).min(ROOT_FILES.len())) {
        let path = PathBuf::from(name);
        taken.insert(path.clone());
        planned.push(PlannedFile { path, size: size_of(&mut rng), seed: rng.next_u64() });
    }
    let weights: Vec<u32> = (0..dirs).map(|_| *rng.pick(&[1, 1, 2, 2, 3, 4, 6, 10, 20])).collect();
    let ext_weights: Vec<u32> = EXTENSIONS.iter().map(|e| e.1).collect();
    let mut place = |rng: &mut Rng, dir: usize, planned: &mut Vec<PlannedFile>| {
        let ext = EXTENSIONS[rng.weighted(&ext_weights)].0;
        let stem = match (ext, rng.below(20)) {
            ("rs", 0) => "mod".to_owned(),
            ("ts" | "js", 0) => "index".to_owned(),
            (_, n) if n < 12 => format!("{}_{}", rng.pick(WORDS), rng.pick(WORDS)),
            _ => (*rng.pick(WORDS)).to_owned(),
        };
        let path = unique(&mut taken, &dir_paths[dir], &stem, ext);
        planned.push(PlannedFile { path, size: size_of(rng), seed: rng.next_u64() });
    };
    for dir in 0..dirs {
        place(&mut rng, dir, &mut planned);
    }
    while planned.len() < files {
        let dir = rng.weighted(&weights);
        place(&mut rng, dir, &mut planned);
    }
    Ok(Plan { dirs: dir_paths, files: planned })
}

/// `parent/stem.ext`, or `parent/stem_N.ext` with the smallest N ≥ 2 not
/// yet taken; records the result as taken.
fn unique(taken: &mut HashSet<PathBuf>, parent: &Path, stem: &str, ext: &str) -> PathBuf {
    let name = |suffix: String| {
        let file = if ext.is_empty() { format!("{stem}{suffix}") } else { format!("{stem}{suffix}.{ext}") };
        parent.join(file)
    };
    let mut path = name(String::new());
    let mut n = 2;
    while taken.contains(&path) {
        path = name(format!("_{n}"));
        n += 1;
    }
    taken.insert(path.clone());
    path
}

/// Writes the planned folders and files under `root`; returns the bytes
/// written.
fn write_tree(root: &Path, plan: &Plan) -> Result<u64> {
    for dir in &plan.dirs {
        fs::create_dir(root.join(dir)).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut total = 0;
    let mut buf = Vec::new();
    for file in &plan.files {
        let ext = file.path.extension().and_then(|e| e.to_str()).unwrap_or("");
        contents(&mut buf, ext, file.size, file.seed);
        fs::write(root.join(&file.path), &buf).with_context(|| format!("writing {}", file.path.display()))?;
        total += buf.len() as u64;
    }
    Ok(total)
}

/// Fills `buf` with `size` bytes of code-like lines for a file of type
/// `ext`, ending in a newline.
fn contents(buf: &mut Vec<u8>, ext: &str, size: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    buf.clear();
    while buf.len() < size {
        let indent = "    ".repeat(rng.below(4));
        let (a, b, c, d) = (rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS));
        let n = rng.below(1000);
        let line = match ext {
            "rs" => format!("{indent}let {a}_{b} = {c}.{d}({n});\n"),
            "ts" | "tsx" | "js" => format!("{indent}const {a}_{b} = {c}.{d}({n});\n"),
            "go" => format!("{indent}{a}{b} := {c}.{d}({n})\n"),
            "py" => format!("{indent}{a}_{b} = {c}.{d}({n})\n"),
            "json" => format!("  \"{a}_{b}\": \"{c} {d} {n}\",\n"),
            "toml" | "yaml" => format!("{a}_{b} = \"{c}-{d}-{n}\"\n"),
            "css" => format!(".{a}-{b} {{ {c}: {n}px; }}\n"),
            _ => format!("The {a} {b} sends {n} {c} to the {d}.\n"),
        };
        buf.extend_from_slice(line.as_bytes());
    }
    buf.truncate(size - 1);
    buf.push(b'\n');
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("making {} absolute", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::git;

    fn count(root: &Path, files: &mut usize, dirs: &mut usize) {
        for entry in fs::read_dir(root).expect("read_dir") {
            let entry = entry.expect("entry");
            if entry.file_name() == ".git" {
                continue;
            }
            if entry.file_type().expect("file type").is_dir() {
                *dirs += 1;
                count(&entry.path(), files, dirs);
            } else {
                *files += 1;
            }
        }
    }

    #[test]
    fn tiny_fixture_has_the_asked_shape_and_one_clean_commit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(&tmp.path().join("fx")).expect("layout");
        let fixture = build(&layout, Shape { files: 200, dirs: 20, sessions: 0 }, None).expect("build");
        let (mut files, mut dirs) = (0, 0);
        count(&layout.repo(), &mut files, &mut dirs);
        assert_eq!((files, dirs), (200, 20));
        assert_eq!(run(git(&layout.repo()).args(["status", "--porcelain"])).expect("status"), "");
        assert_eq!(run(git(&layout.repo()).args(["rev-list", "--count", "main"])).expect("count"), "1\n");
        let pushed = run(git(&layout.repo()).args(["rev-parse", "origin/main", "main"])).expect("rev-parse");
        let (origin, main) = pushed.split_once('\n').expect("two lines");
        assert_eq!(origin, main.trim_end());
        assert!(fixture.index_bytes > 0 && fixture.tree_bytes > 200 * 128);
        assert_eq!(Fixture::load(&layout).expect("marker").shape, fixture.shape);
    }

    #[test]
    fn plans_are_deterministic_and_within_depth() {
        let a = plan(2_000, 300, SEED).expect("plan");
        // Not assert_eq!: a failure would print thousands of paths.
        assert!(a == plan(2_000, 300, SEED).expect("plan"));
        assert!(a != plan(2_000, 300, SEED + 1).expect("plan"));
        assert_eq!((a.files.len(), a.dirs.len()), (2_000, 300));
        assert!(a.dirs.iter().all(|d| (1..=MAX_DEPTH).contains(&d.components().count())));
        assert!(plan(10, 20, SEED).is_err());
    }
}
