//! Caps on what one sandboxed session may take of the machine: the number
//! of processes (threads count too) and the memory of its agent and
//! everything the agent starts, and the size of its private `/tmp`
//! (issue 16: 400 processes and 300 MB into a RAM-backed `/tmp` went
//! through).
//!
//! How, the first that works on this machine (`tandem doctor` says which):
//! 1. the user's systemd: `systemd-run --user --scope -p TasksMax=N -p
//!    MemoryMax=BYTES` (systemd.resource-control(5)), a cgroup v2 scope
//!    that goes with its last process;
//! 2. a cgroup tandem makes itself, per controller (`pids`, `memory`), in
//!    the cgroup v2 or v1 hierarchy that has it, below the cgroup tandem
//!    runs in: `tandem-<session id>` with `pids.max`, and `memory.max`
//!    (v2) or `memory.limit_in_bytes` (v1). The sandbox's first process,
//!    `tandem sandbox-limit` ([`enter`]), moves itself in before it execs
//!    the sandbox, so nothing the agent starts is outside; the host
//!    removes it once the agent has ended ([`remove`]), and every start
//!    sweeps empty leftovers of a killed host;
//! 3. `setrlimit(RLIMIT_NPROC)` when not root (the kernel does not hold
//!    root to it): at most N processes more than the user runs now.
//!    Memory has no per-process limit that caps a session (RLIMIT_AS is
//!    per process, and Node.js agents reserve far more address space than
//!    they use), so it goes uncapped.
//!
//! The private `/tmp` is a tmpfs of at most `sandbox.tmp_size` bytes
//! (bwrap's `--size`, read from [`Caps::tmp_size`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A bad limit in the config.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(
        "sandbox.{key}: {value:?} is not a size (e.g. \"4G\", \"512M\", or \"0\" for no cap); fix it in config.toml"
    )]
    BadSize { key: &'static str, value: String },
}

/// The caps of one sandboxed session, from `[sandbox]`: `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// `sandbox.max_processes`: processes and threads at once.
    pub max_processes: Option<u64>,
    /// `sandbox.max_memory`, in bytes.
    pub max_memory: Option<u64>,
    /// `sandbox.tmp_size`: the private `/tmp`, in bytes.
    pub tmp_size: Option<u64>,
}

impl Caps {
    /// The caps `sandbox` sets.
    ///
    /// # Errors
    /// [`LimitError::BadSize`] for a size that does not parse.
    pub fn from_config(sandbox: &crate::config::SandboxConfig) -> Result<Caps, LimitError> {
        let size = |key: &'static str, value: &str| {
            parse_size(value).ok_or_else(|| LimitError::BadSize { key, value: value.to_owned() })
        };
        Ok(Caps {
            max_processes: Some(sandbox.max_processes).filter(|n| *n > 0),
            max_memory: size("max_memory", &sandbox.max_memory)?,
            tmp_size: size("tmp_size", &sandbox.tmp_size)?,
        })
    }

    /// `argv` run under these caps: behind `tandem sandbox-limit` (tandem's
    /// binary `tandem_exe`), which applies them and execs `argv`;
    /// unchanged when there is neither a process nor a memory cap.
    #[must_use]
    pub fn wrap(&self, tandem_exe: &Path, session_id: &str, argv: Vec<String>) -> Vec<String> {
        if self.max_processes.is_none() && self.max_memory.is_none() {
            return argv;
        }
        let mut out = vec![tandem_exe.to_string_lossy().into_owned(), "sandbox-limit".to_owned()];
        out.extend(["--name".to_owned(), cgroup_name(session_id)]);
        if let Some(n) = self.max_processes {
            out.extend(["--max-processes".to_owned(), n.to_string()]);
        }
        if let Some(n) = self.max_memory {
            out.extend(["--max-memory".to_owned(), n.to_string()]);
        }
        out.push("--".to_owned());
        out.extend(argv);
        out
    }

    /// What the host runs once the agent has ended: `tandem sandbox-limit
    /// --remove NAME`, when there is a cgroup to remove.
    #[must_use]
    pub fn cleanup(&self, tandem_exe: &Path, session_id: &str) -> Option<Vec<String>> {
        (self.max_processes.is_some() || self.max_memory.is_some()).then(|| {
            vec![
                tandem_exe.to_string_lossy().into_owned(),
                "sandbox-limit".to_owned(),
                "--remove".to_owned(),
                cgroup_name(session_id),
            ]
        })
    }
}

/// The cgroup (or systemd scope) name of a session: `tandem-<session id>`.
#[must_use]
pub fn cgroup_name(session_id: &str) -> String {
    format!("tandem-{session_id}")
}

/// Parses a size: bytes, or a number with `K`, `M`, `G` or `T` (powers of
/// 1024; `KB`, `KiB` too). `Some(None)` for `""` or `0` (no cap); `None`
/// when it is not a size.
#[must_use]
pub fn parse_size(text: &str) -> Option<Option<u64>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(None);
    }
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_uppercase();
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    let bytes = number.checked_mul(1u64 << shift)?;
    Some(Some(bytes).filter(|b| *b > 0))
}

/// `bytes` as people write it: `4 GiB`, `512 MiB`, `1536 KiB`, `100 B`.
#[must_use]
pub fn show_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// How one cap is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// A transient scope of the user's systemd.
    Systemd,
    /// A cgroup tandem made in the v2 hierarchy, below `parent`.
    CgroupV2 { parent: PathBuf },
    /// A cgroup tandem made in the v1 hierarchy of its controller, below
    /// `parent`.
    CgroupV1 { parent: PathBuf },
    /// `setrlimit(RLIMIT_NPROC)`.
    Rlimit,
}

impl std::fmt::Display for How {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            How::Systemd => f.write_str("systemd-run --user --scope (cgroup v2)"),
            How::CgroupV2 { parent } => write!(f, "cgroup v2 under {}", parent.display()),
            How::CgroupV1 { parent } => write!(f, "cgroup v1 under {}", parent.display()),
            How::Rlimit => f.write_str("setrlimit RLIMIT_NPROC (counts all of the user's processes)"),
        }
    }
}

/// What [`enter`] or [`probe`] found for each cap: how it holds, or why it
/// does not.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub processes: Option<Result<How, String>>,
    pub memory: Option<Result<How, String>>,
}

/// Applies the caps to this process, which is about to exec the sandbox:
/// returns the argv prefix to exec through (`systemd-run …` when the
/// user's systemd holds the caps; else empty, the caps being in force
/// already) and what holds each cap. A cap nothing can hold is left off,
/// which the report says.
#[must_use]
pub fn enter(name: &str, max_processes: Option<u64>, max_memory: Option<u64>) -> (Vec<String>, Report) {
    if max_processes.is_none() && max_memory.is_none() {
        return (Vec::new(), Report::default());
    }
    let properties = systemd_properties(max_processes, max_memory);
    if systemd_answers(&properties) {
        let mut prefix: Vec<String> =
            ["systemd-run", "--user", "--scope", "--quiet", "--collect"].iter().map(|s| (*s).to_owned()).collect();
        prefix.push(format!("--unit={name}-{}", std::process::id()));
        prefix.extend(properties);
        prefix.push("--".to_owned());
        let held = |cap: Option<u64>| cap.map(|_| Ok(How::Systemd));
        return (prefix, Report { processes: held(max_processes), memory: held(max_memory) });
    }
    sweep();
    let pid = std::process::id();
    let join = |controller: Controller, bytes: u64| make(controller, name, bytes, Some(pid));
    let mut report = Report {
        processes: max_processes.map(|n| join(Controller::Pids, n)),
        memory: max_memory.map(|n| join(Controller::Memory, n)),
    };
    if let (Some(n), Some(Err(why))) = (max_processes, &report.processes) {
        report.processes = Some(rlimit_processes(n).map_err(|e| format!("{why}; {e}")));
    }
    (Vec::new(), report)
}

/// What [`enter`] would do here, tried on a cgroup of its own that is
/// removed at once (for `tandem doctor`); nothing is capped.
#[must_use]
pub fn probe(caps: &Caps) -> Report {
    if caps.max_processes.is_none() && caps.max_memory.is_none() {
        return Report::default();
    }
    if systemd_answers(&systemd_properties(caps.max_processes, caps.max_memory)) {
        let held = |cap: Option<u64>| cap.map(|_| Ok(How::Systemd));
        return Report { processes: held(caps.max_processes), memory: held(caps.max_memory) };
    }
    let name = format!("tandem-probe-{}", std::process::id());
    let try_one = |controller: Controller, value: u64| {
        let how = make(controller, &name, value, None);
        remove(&name);
        how
    };
    let processes = caps.max_processes.map(|n| {
        try_one(Controller::Pids, n).or_else(|why| {
            if nix::unistd::Uid::effective().is_root() {
                Err(format!("{why}; RLIMIT_NPROC does not hold root"))
            } else {
                Ok(How::Rlimit)
            }
        })
    });
    let memory = caps.max_memory.map(|n| {
        try_one(Controller::Memory, n)
            .map_err(|why| format!("{why}; no setrlimit caps a session's memory (RLIMIT_AS breaks Node.js agents)"))
    });
    Report { processes, memory }
}

/// Removes session cgroup `name` wherever tandem made it, waiting up to
/// 2 s for its last processes to be gone (a PID namespace's processes
/// die a moment after its first). Only `tandem-…` names are touched.
pub fn remove(name: &str) {
    if !name.starts_with("tandem-") || name.contains('/') || name.contains("..") {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for controller in [Controller::Pids, Controller::Memory] {
        let Some((parent, _)) = place(controller) else { continue };
        let dir = parent.join(name);
        while dir.exists() {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a session's cgroup");
                    break;
                }
            }
        }
    }
}

/// Removes the empty `tandem-*` cgroups a killed host left (a cgroup
/// with processes refuses `rmdir`, so live sessions keep theirs).
fn sweep() {
    for controller in [Controller::Pids, Controller::Memory] {
        let Some((parent, _)) = place(controller) else { continue };
        let Ok(entries) = std::fs::read_dir(&parent) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("tandem-") {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

fn systemd_properties(max_processes: Option<u64>, max_memory: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = max_processes {
        out.extend(["-p".to_owned(), format!("TasksMax={n}")]);
    }
    if let Some(n) = max_memory {
        out.extend(["-p".to_owned(), format!("MemoryMax={n}")]);
    }
    out
}

/// Whether the user's systemd makes a scope with `properties` (one run
/// of `true` in it).
fn systemd_answers(properties: &[String]) -> bool {
    if crate::process::find("systemd-run").is_none() {
        return false;
    }
    std::process::Command::new("systemd-run")
        .args(["--user", "--scope", "--quiet", "--collect"])
        .args(properties)
        .args(["--", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Pids,
    Memory,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
        }
    }

    /// The file that holds the cap.
    fn file(self, v2: bool) -> &'static str {
        match (self, v2) {
            (Controller::Pids, _) => "pids.max",
            (Controller::Memory, true) => "memory.max",
            (Controller::Memory, false) => "memory.limit_in_bytes",
        }
    }
}

/// Makes cgroup `name` for `controller` with cap `value` and, with
/// `pid`, moves that process into it.
fn make(controller: Controller, name: &str, value: u64, pid: Option<u32>) -> Result<How, String> {
    let (parent, v2) = place(controller)
        .ok_or_else(|| format!("no cgroup hierarchy here offers the {} controller to tandem", controller.name()))?;
    let dir = parent.join(name);
    let fail = |what: &str, e: io::Error| format!("cannot {what} {}: {e}", dir.display());
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail("make", e)),
    }
    let file = dir.join(controller.file(v2));
    if let Err(e) = std::fs::write(&file, value.to_string()) {
        let _ = std::fs::remove_dir(&dir);
        return Err(fail(&format!("write {} in", controller.file(v2)), e));
    }
    if let Some(pid) = pid
        && let Err(e) = std::fs::write(dir.join("cgroup.procs"), pid.to_string())
    {
        let _ = std::fs::remove_dir(&dir);
        return Err(fail("join", e));
    }
    Ok(if v2 { How::CgroupV2 { parent } } else { How::CgroupV1 { parent } })
}

/// Where tandem can make a cgroup for `controller`: the cgroup this
/// process is in, in the hierarchy that has the controller (v2 first),
/// and whether that is v2.
fn place(controller: Controller) -> Option<(PathBuf, bool)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = parse_mountinfo(&mountinfo);
    if let Some(path) = membership.lines().find_map(|l| l.strip_prefix("0::"))
        && let Some(mount) = mounts.iter().find(|m| m.fstype == "cgroup2")
    {
        let dir = mount.join(path);
        if v2_offers(&dir, controller.name()) {
            return Some((dir, true));
        }
    }
    let path = membership.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == controller.name()).then_some(path)
    })?;
    let mount =
        mounts.iter().find(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == controller.name()))?;
    let dir = mount.join(path);
    dir.is_dir().then_some((dir, false))
}

/// Whether cgroup v2 folder `dir` offers `controller` to a child it
/// makes: the controller is available there and enabled for children
/// (tandem enables it when it may).
fn v2_offers(dir: &Path, controller: &str) -> bool {
    let has = |file: &str| {
        std::fs::read_to_string(dir.join(file)).is_ok_and(|t| t.split_whitespace().any(|c| c == controller))
    };
    if !has("cgroup.controllers") {
        return false;
    }
    if !has("cgroup.subtree_control") {
        // Refused in a cgroup that holds processes (the v2 rule against
        // processes in inner nodes), allowed at the root.
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{controller}"));
    }
    has("cgroup.subtree_control")
}

/// One cgroup mount, from `/proc/self/mountinfo` (proc(5)).
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    /// The mount's root within its hierarchy.
    root: String,
    point: PathBuf,
    fstype: String,
    super_options: String,
}

impl Mount {
    /// The folder of cgroup `path` (as `/proc/self/cgroup` gives it)
    /// under this mount.
    fn join(&self, path: &str) -> PathBuf {
        let inside = if self.root == "/" { path } else { path.strip_prefix(self.root.as_str()).unwrap_or(path) };
        match inside.trim_start_matches('/') {
            "" => self.point.clone(),
            inside => self.point.join(inside),
        }
    }
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mut after = after.split(' ');
            let (fstype, _source, super_options) = (after.next()?, after.next()?, after.next().unwrap_or(""));
            if !fstype.starts_with("cgroup") {
                return None;
            }
            Some(Mount {
                root: unescape(fields.get(3)?),
                point: PathBuf::from(unescape(fields.get(4)?)),
                fstype: fstype.to_owned(),
                super_options: super_options.to_owned(),
            })
        })
        .collect()
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let mut out = Vec::new();
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(n) = std::str::from_utf8(&bytes[i + 1..i + 4]).ok().and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(n);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Caps this process and what it starts at `extra` processes more than
/// the user runs now (RLIMIT_NPROC counts them all).
fn rlimit_processes(extra: u64) -> Result<How, String> {
    use nix::sys::resource::{Resource, setrlimit};
    if nix::unistd::Uid::effective().is_root() {
        return Err("RLIMIT_NPROC does not hold root".to_owned());
    }
    let uid = nix::unistd::Uid::current().as_raw();
    let running = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .filter(|e| e.metadata().is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == uid))
                .count() as u64
        })
        .unwrap_or(0);
    let limit = running + extra;
    setrlimit(Resource::RLIMIT_NPROC, limit, limit).map_err(|e| format!("setrlimit RLIMIT_NPROC: {e}"))?;
    Ok(How::Rlimit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024_and_refuse_clearly() {
        assert_eq!(parse_size("4G"), Some(Some(4 << 30)));
        assert_eq!(parse_size("512m"), Some(Some(512 << 20)));
        assert_eq!(parse_size("1 GiB"), Some(Some(1 << 30)));
        assert_eq!(parse_size("64KB"), Some(Some(64 << 10)));
        assert_eq!(parse_size("1000"), Some(Some(1000)));
        assert_eq!(parse_size("0"), Some(None));
        assert_eq!(parse_size(""), Some(None));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("4X"), None);
        assert_eq!(parse_size("99999999999T"), None, "overflow");
        assert_eq!(show_size(4 << 30), "4 GiB");
        assert_eq!(show_size(1536 << 10), "1536 KiB");
        assert_eq!(show_size(1000), "1000 B");
    }

    #[test]
    fn mountinfo_gives_each_hierarchy_and_its_controllers() {
        let text = "\
35 24 0:30 / /sys/fs/cgroup/pids rw,relatime shared:14 - cgroup cgroup rw,pids
36 24 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 24 0:35 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
41 24 0:36 / /proc rw - proc proc rw
";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].super_options, "rw,pids");
        assert_eq!(mounts[1].join("/process_api/x"), PathBuf::from("/sys/fs/cgroup/memory/process_api/x"));
        assert_eq!(mounts[2].join("/docker/abc/inner"), PathBuf::from("/sys/fs/cgroup/unified/inner"));
        assert_eq!(mounts[0].join("/").display().to_string(), "/sys/fs/cgroup/pids");
        assert_eq!(unescape("/a\\040b"), "/a b");
    }

    #[test]
    fn the_sandbox_runs_behind_sandbox_limit_only_when_something_is_capped() {
        let exe = Path::new("/bin/tandem");
        let argv = vec!["bwrap".to_owned(), "sh".to_owned()];
        assert_eq!(Caps::default().wrap(exe, "abc", argv.clone()), argv);
        assert_eq!(Caps::default().cleanup(exe, "abc"), None);
        let caps = Caps { max_processes: Some(64), max_memory: Some(1 << 30), tmp_size: None };
        assert_eq!(
            caps.wrap(exe, "abc", argv).join(" "),
            "/bin/tandem sandbox-limit --name tandem-abc --max-processes 64 --max-memory 1073741824 -- bwrap sh"
        );
        assert_eq!(caps.cleanup(exe, "abc").unwrap().join(" "), "/bin/tandem sandbox-limit --remove tandem-abc");
    }
}
