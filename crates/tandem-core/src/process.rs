//! Small process helpers: liveness, process-group signals, `PATH` search.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// Whether a process with this pid exists (signal 0; a zombie counts).
#[must_use]
pub fn is_alive(pid: i32) -> bool {
    pid > 0 && matches!(signal::kill(Pid::from_raw(pid), None), Ok(()) | Err(nix::errno::Errno::EPERM))
}

/// Sends `sig` to the whole process group `pgid`. Returns false when the
/// group no longer exists.
pub fn signal_group(pgid: i32, sig: Signal) -> bool {
    pgid > 1 && signal::killpg(Pid::from_raw(pgid), sig).is_ok()
}

/// Whether any process of group `pgid` is still alive.
#[must_use]
pub fn group_alive(pgid: i32) -> bool {
    pgid > 1 && matches!(signal::killpg(Pid::from_raw(pgid), None), Ok(()) | Err(nix::errno::Errno::EPERM))
}

/// Finds `program` as a shell would: a name with a `/` is taken as a path
/// (relative to `cwd`), others are searched in `path_var` (`PATH`'s
/// value). Returns the executable's path.
#[must_use]
pub fn which(program: &str, path_var: Option<&OsStr>, cwd: &Path) -> Option<PathBuf> {
    let executable =
        |p: &Path| p.is_file() && p.metadata().map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = cwd.join(program);
        return executable(&path).then_some(path);
    }
    std::env::split_paths(path_var?)
        .map(|dir| if dir.as_os_str().is_empty() { cwd.join(program) } else { dir.join(program) })
        .find(|p| executable(p))
}

/// `name` on `PATH`, if it is there.
#[must_use]
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `pid` is running: it exists and is not a zombie (state `Z`
/// in `/proc/PID/stat`), unlike [`is_alive`], which counts a process that
/// has exited but is not yet reaped.
#[must_use]
pub fn is_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

/// When `pid` started, in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), or `None` when no such process exists. With the pid
/// it names one process for good: a pid reused later has another start.
#[must_use]
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses, which may hold spaces) come
    // fields 3 (state) onwards: field 22 is the 20th.
    stat.rsplit(')').next()?.split_whitespace().nth(19)?.parse().ok()
}

/// The processes of group `pgid` that still run (zombies left out: they
/// write nothing, and whoever adopted them reaps them), from `/proc`.
#[must_use]
pub fn running_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let mut fields = stat.rsplit(')').next().unwrap_or_default().split_whitespace();
                // Fields 3 (state), 4 (ppid), 5 (pgrp).
                let state = fields.next().unwrap_or("Z");
                state != "Z" && state != "X" && fields.nth(1).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
            })
        })
        .collect()
}

/// Lowers the calling thread to the least CPU and disk priority (nice 19,
/// I/O class idle), for housekeeping that must not slow what the user
/// waits for: emptying the trash, setting up watches. On Linux both are
/// per thread (`setpriority(2)` with a thread id, `ioprio_set(2)`); a
/// refusal leaves the priority as it was.
#[allow(unsafe_code)] // two syscalls nix does not wrap
pub fn lower_thread_priority() {
    // SAFETY: plain syscalls on the calling thread's own id; no memory
    // is passed.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        // IOPRIO_WHO_PROCESS = 1; IOPRIO_CLASS_IDLE = 3 in the top bits
        // (linux/ioprio.h: class << 13).
        let _ = libc::syscall(libc::SYS_ioprio_set, 1, tid, 3 << 13);
    }
}

/// For a long-lived process with many threads (the supervisor serves
/// each host's connection on a thread of its own): at most `arenas`
/// malloc arenas (glibc makes up to eight per core, each keeping what its
/// threads freed), so memory freed by one thread serves the others.
/// Nothing on other C libraries.
#[allow(unsafe_code)] // glibc's mallopt(3), which has no safe wrapper
pub fn limit_malloc_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before the
    // threads that would use more arenas start.
    unsafe {
        let _ = libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Gives the free pages of every malloc arena back to the kernel
/// (glibc's `malloc_trim(3)`, which since 2.8 also releases free pages
/// inside the heap): what a burst (a large `list`, a conflict check)
/// allocated and freed stops counting in the process's RSS. Nothing on
/// other C libraries.
#[allow(unsafe_code)] // glibc's malloc_trim(3), which has no safe wrapper
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks; no memory of
    // ours is passed.
    unsafe {
        let _ = libc::malloc_trim(0);
    }
}

/// The git commands that write a worktree: a merge and its rollback
/// (`merge`, `commit`, `rebase`, `reset`, `read-tree`, `checkout`,
/// `update-ref`), the `reset` a `git worktree add` runs in the new
/// worktree, and the `switch -c` that takes a pooled worktree for a new
/// session (it makes the session's branch only once its checkout ends).
const WRITERS: &[&str] = &["merge", "commit", "rebase", "reset", "read-tree", "checkout", "switch", "update-ref"];

/// A git process still at work in `worktree` (its pid): one that has one of
/// `locks` open (git holds a lock file open while it writes), a `git`
/// [`WRITERS`] command whose working directory is `worktree` (`git -C`
/// runs there; a merge writes its commit after it let go of the index
/// lock), or a `git` naming `worktree` in its arguments other than as
/// `-C worktree` (the `git worktree add` making a worktree runs in the
/// repository, and `worktree` may not exist yet). Found through
/// `/proc`; `None` when none of the processes this user can see is.
#[must_use]
pub fn git_at_work(worktree: &Path, locks: &[PathBuf]) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    let given = worktree.as_os_str().as_bytes();
    let worktree = worktree.canonicalize().ok();
    let canonical = worktree.as_deref().map(|w| w.as_os_str().as_bytes());
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let is_git = std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == "git");
        if is_git {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            // Not `-C PATH`: any git (a read) runs that way.
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let names_it = args.windows(2).any(|w| w[0] != b"-C" && (w[1] == given || Some(w[1]) == canonical));
            // Reads (`status`, `rev-parse`, as `tandem list` runs) do not count.
            let writes = cmdline.split(|b| *b == 0).any(|arg| WRITERS.iter().any(|w| w.as_bytes() == arg));
            let here = worktree.is_some() && std::fs::read_link(entry.path().join("cwd")).ok() == worktree;
            if names_it || (here && writes) {
                return Some(pid);
            }
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        if fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| locks.contains(&p))) {
            return Some(pid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_searches_path_and_honours_slashes() {
        let sh = which("sh", Some(OsStr::new("/nonexistent:/bin:/usr/bin")), Path::new("/"));
        assert!(sh.is_some_and(|p| p.ends_with("sh")));
        assert_eq!(which("no-such-program-xyz", Some(OsStr::new("/bin")), Path::new("/")), None);
        assert_eq!(which("./bin/sh", None, Path::new("/")), Some(PathBuf::from("/./bin/sh")));
        assert!(is_alive(std::process::id() as i32));
    }

    #[test]
    fn a_process_has_a_start_time_and_is_a_member_of_its_group() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me), "stable");
        let group = nix::unistd::getpgrp().as_raw();
        assert!(running_members(group).contains(&me));
        assert!(running_members(i32::MAX).is_empty());
    }
}
