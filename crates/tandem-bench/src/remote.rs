//! `tandem-bench remote`: remote hosts over SSH (issue 21), each figure
//! beside the plain-ssh path it stands next to, measured in one run over a
//! real private `sshd` on 127.0.0.1 in front of two fresh Unix users (two
//! remotes: two control masters, two remote supervisors):
//!
//! - **list**: `tandem list` with 2 remotes × N sessions, warm (control
//!   masters up), run by run alternating with a plain `tandem list` (a
//!   second tandem home with no remote) and one SSH round trip
//!   (`ssh HOST true` over the same master). Target: median ≤ local +
//!   round trip. Cold (masters closed before each run) beside it.
//! - **keystroke to echo**: one byte typed into `tandem attach HOST:NAME`
//!   (a shell session) in a PTY until its echo comes back, alternating
//!   with `ssh -t HOST tmux attach` to a tmux session over the same
//!   master. Target: ≤ 1.0× the tmux median.
//! - **new**: `tandem new --on HOST --agent shell --bg`, alternating with
//!   `ssh HOST git -C REPO worktree add` in the same repository there.
//!   The first `new --on` of each host (which clones the repository) is
//!   shown apart.
//! - **first connection**: `tandem remote add` (logs in, starts the
//!   master), `tandem remote install`, a cold `ssh HOST true`, and the
//!   control masters' memory.
//!
//! Needs root: it adds the users (`useradd`), runs `/usr/sbin/sshd` on a
//! free port, and at the end kills every process of those users by pid,
//! the server and the local control masters, then `userdel -r`s them.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::fixture::{self, Layout, Shape};
use crate::process::{Tandem, run, run_timed};
use crate::pty::Pty;
use crate::stats::{median, ms};

/// Measure remote hosts over SSH: list, attach echo, new (needs root)
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// The tandem binary to measure (also installed on the remotes)
    #[arg(long)]
    tandem: PathBuf,
    /// Sessions (shell agents) on each of the two remotes
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Timed runs of the list and echo figures
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Cold `tandem list` runs (control masters closed first)
    #[arg(long, default_value_t = 5)]
    cold_runs: usize,
    /// Tracked files in the repository
    #[arg(long, default_value_t = 2_000)]
    files: usize,
    /// Folders holding them
    #[arg(long, default_value_t = 200)]
    dirs: usize,
}

/// The ssh host aliases of the two remotes, and tandem's names for them.
const HOSTS: [(&str, &str); 2] = [("tdb1", "r1"), ("tdb2", "r2")];

/// Keystrokes timed per `--runs` (each takes about a millisecond).
const ECHO_RUNS: usize = 4;

/// Keys typed for the echo figures: lowercase letters that end no escape
/// sequence a terminal is sent (`h`, `l`, `m` do).
const KEYS: &[u8] = b"abcdefgijknopqrstuvwxyz";

fn line(report: &mut String, name: &str, samples: &[f64], unit: &str) -> Result<()> {
    Ok(crate::stats::line(report, 52, name, samples, unit)?)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .is_some_and(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
}

/// One remote user: its name, uid and home.
struct User {
    name: String,
    uid: u32,
    home: PathBuf,
}

/// The SSH lab: the users, the server, the client's files. Dropping it
/// stops the local supervisors, kills (by pid) every process of the
/// users, the server and the control masters under `dir`, and removes the
/// users with their homes.
struct Lab {
    dir: PathBuf,
    users: Vec<User>,
    sshd: Option<Child>,
    /// Local tandem homes whose supervisors are stopped first.
    homes: Vec<Tandem>,
}

impl Lab {
    fn new(dir: &Path) -> Lab {
        Lab { dir: dir.to_path_buf(), users: Vec::new(), sshd: None, homes: Vec::new() }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// `PATH` with the `ssh` wrapper (which adds `-F <config>`) first.
    fn path_var(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
        format!("{}:{rest}", self.dir.join("bin").display())
    }

    fn add_user(&mut self, name: &str) -> Result<()> {
        let exists = Command::new("id").arg("-u").arg(name).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        ensure!(!exists.success(), "user {name} exists already; run again (the name has this process's id)");
        run(Command::new("useradd").args(["-m", "-s", "/bin/bash", name]))?;
        let uid = run(Command::new("id").args(["-u", name]))?.trim().parse().context("uid of the new user")?;
        self.users.push(User { name: name.to_owned(), uid, home: PathBuf::from(format!("/home/{name}")) });
        // sshd without PAM refuses a locked account.
        run(Command::new("usermod").args(["-p", "*", name]))?;
        let home = &self.users.last().expect("just pushed").home;
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n",
        )?;
        std::fs::write(home.join(".bashrc"), "PS1='$ '\n")?;
        std::fs::create_dir_all(home.join(".ssh"))?;
        std::fs::copy(self.dir.join("client_key.pub"), home.join(".ssh/authorized_keys"))?;
        std::fs::set_permissions(home.join(".ssh/authorized_keys"), std::fs::Permissions::from_mode(0o600))?;
        run(Command::new("chown").args(["-R", &format!("{name}:{name}")]).arg(home))?;
        Ok(())
    }

    /// Keys, two users, configs and the `ssh` wrapper; then the server.
    fn start(&mut self) -> Result<()> {
        std::fs::create_dir_all(self.dir.join("bin"))?;
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(self.dir.join(key)))?;
        }
        let tag = std::process::id() & 0xf_ffff;
        for i in 1..=HOSTS.len() {
            self.add_user(&format!("tdb{tag:05x}{i}"))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = self.dir.display();
        let users: Vec<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
        std::fs::write(
            self.dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile .ssh/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowUsers {}\n",
                users.join(" ")
            ),
        )?;
        let mut client = String::new();
        for ((alias, _), user) in HOSTS.iter().zip(&self.users) {
            write!(
                client,
                "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {}\n  IdentityFile {dir}/client_key\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {dir}/known_hosts\n  StrictHostKeyChecking accept-new\n  \
                 LogLevel ERROR\n",
                user.name
            )?;
        }
        std::fs::write(self.config(), client)?;
        let wrapper = self.dir.join("bin/ssh");
        std::fs::write(&wrapper, format!("#!/bin/sh\nexec /usr/bin/ssh -F '{}' \"$@\"\n", self.config().display()))?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
        std::fs::create_dir_all("/run/sshd")?;
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.dir.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start /usr/sbin/sshd")?;
        self.sshd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.sshd.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.sshd = None;
                bail!("sshd exited at start ({status}); its log: {}", self.log());
            }
            ensure!(Instant::now() < deadline, "sshd did not listen on {port} within 20 s: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// `ssh -F <config>` riding the control master under `control_dir`
    /// (tandem's own, so it is the same connection tandem uses).
    fn ssh(&self, control_dir: &Path) -> Command {
        let mut cmd = Command::new("/usr/bin/ssh");
        cmd.arg("-F").arg(self.config()).args(["-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o"]);
        cmd.arg(format!("ControlPath={}/%C", control_dir.display()));
        cmd.args(["-o", "ControlPersist=600"]);
        cmd
    }

    /// `ssh -F <config>` with no control master: a login of its own.
    fn ssh_direct(&self) -> Command {
        let mut cmd = Command::new("/usr/bin/ssh");
        cmd.arg("-F").arg(self.config()).args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
        ]);
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for tandem in &self.homes {
            tandem.stop_daemon();
        }
        for _ in 0..50 {
            let pids: Vec<u32> = self.users.iter().flat_map(|u| pids_where(|p| uid_of(p) == Some(u.uid))).collect();
            if pids.is_empty() {
                break;
            }
            kill(&pids);
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut child) = self.sshd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let dir = self.dir.parent().unwrap_or(&self.dir).display().to_string();
        kill(&pids_where(|p| cmdline(p).starts_with(&format!("ssh: {dir}"))));
        for user in &self.users {
            let _ = std::fs::remove_dir_all(format!("/tmp/tandem-{}", user.uid));
            let ok = Command::new("userdel")
                .args(["-r", "-f", &user.name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success() || s.code() == Some(12));
            if !ok {
                eprintln!("warning: could not remove user {}; run `userdel -r -f {}`", user.name, user.name);
            }
        }
    }
}

fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

fn pids_where(keep: impl Fn(u32) -> bool) -> Vec<u32> {
    all_pids().into_iter().filter(|&p| keep(p) && !is_zombie(p)).collect()
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_owned)))
        .is_none_or(|state| state == "Z" || state == "X")
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_owned())
        .unwrap_or_default()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// SIGKILL to each pid (by pid, with kill(1)).
fn kill(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The live control masters (`ssh: <path> [mux]`) under `control_dir`.
fn masters(control_dir: &Path) -> Vec<u32> {
    let prefix = format!("ssh: {}", control_dir.display());
    pids_where(|p| {
        let line = cmdline(p);
        line.starts_with(&prefix) && line.ends_with("[mux]")
    })
}

pub fn run_cmd(args: &RemoteArgs) -> Result<()> {
    ensure!(
        is_root(),
        "tandem-bench remote needs root: it adds two Unix users and runs a private sshd; \
         run it as root in a throwaway machine or container (`sudo tandem-bench remote …`)"
    );
    ensure!(Path::new("/usr/sbin/sshd").exists(), "/usr/sbin/sshd is missing: apt-get install openssh-server");
    ensure!(
        Command::new("tmux").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "tmux is missing (the attach baseline): apt-get install tmux"
    );
    let bin = std::path::absolute(&args.tandem)?;
    ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    ensure!(args.runs >= 1 && args.sessions >= 2, "--runs must be at least 1 and --sessions at least 2");
    // Short: control sockets live under it (a Unix socket path has ≤ 107 bytes).
    let temp = tempfile::Builder::new().prefix("tbr-").tempdir_in("/tmp")?;
    // The remote users clone the repository's origin from here.
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755))?;
    let mut lab = Lab::new(&temp.path().join("ssh"));
    lab.start()?;
    let layout = Layout::new(&temp.path().join("l"))?;
    eprintln!("making a repository of {} files ...", args.files);
    fixture::build(&layout, Shape { files: args.files, dirs: args.dirs, sessions: 0 }, None)?;
    let tandem = layout.tandem(bin.clone());
    let plain = Tandem { bin: bin.clone(), home: temp.path().join("plain"), repo: layout.repo() };
    let one = Tandem { bin, home: temp.path().join("one"), repo: layout.repo() };
    lab.homes = vec![tandem.clone(), plain.clone(), one.clone()];
    let path = lab.path_var();
    let cmd = |t: &Tandem, words: &[&str]| {
        let mut c = t.cmd(words);
        c.env("PATH", &path);
        c
    };
    run(&mut cmd(&tandem, &["daemon", "start"]))?;
    run(&mut cmd(&plain, &["daemon", "start"]))?;
    run(&mut cmd(&one, &["daemon", "start"]))?;
    let control = tandem.home.join("run/ssh");

    // First connection: add (logs in, starts the master), install.
    let mut report = String::new();
    let (mut add, mut install, mut first_new, mut login) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (alias, name) in HOSTS {
        login.push(ms(run_timed(lab.ssh_direct().args([alias, "true"]), None)?.1));
        add.push(ms(run_timed(&mut cmd(&tandem, &["remote", "add", name, alias]), None)?.1));
        install.push(ms(run_timed(&mut cmd(&tandem, &["remote", "install", name]), None)?.1));
    }

    // New: tandem new --on against ssh git worktree add, alternating.
    eprintln!("making {} sessions on each of 2 remotes ...", args.sessions);
    let (mut new_on, mut worktree_add, mut how, mut repos) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((alias, name), user) in HOSTS.iter().zip(&lab.users) {
        let new = |i: usize| -> Result<f64> {
            let session = format!("s{i:02}");
            let words = ["new", "--on", name, &session, "--agent", "shell", "--bg"];
            Ok(ms(run_timed(&mut cmd(&tandem, &words), None)?.1))
        };
        first_new.push(new(0)?);
        let (repo, kind) = remote_repo(&user.home)?;
        how.push(kind);
        repos.push(repo.clone());
        for i in 1..args.sessions {
            new_on.push(new(i)?);
            let wt = user.home.join(format!("bench-wt/b{i:02}"));
            let git = format!("git -C {} worktree add -q -b bench-{i:02} {}", repo.display(), wt.display());
            worktree_add.push(ms(run_timed(lab.ssh(&control).args([alias, "--", &git]), None)?.1));
        }
    }

    // List, warm: with 2 remotes against no remote + one round trip.
    let rows: serde_json::Value = serde_json::from_str(&run(&mut cmd(&tandem, &["list", "--json"]))?)?;
    let rows = rows.as_array().context("list --json is not an array")?;
    let remote_rows = rows.iter().filter(|r| r["host"].is_string()).count();
    let unreachable = rows.iter().filter(|r| r["state"] == "unreachable").count();
    ensure!(
        remote_rows == 2 * args.sessions && unreachable == 0,
        "tandem list --json shows {remote_rows} remote rows ({unreachable} unreachable), expected {}",
        2 * args.sessions
    );
    // The same list with one remote only, and the remote tandem's start
    // (ssh over the master + `tandem --version` there): where time goes.
    run(&mut cmd(&one, &["remote", "add", HOSTS[0].1, HOSTS[0].0]))?;
    run(&mut cmd(&one, &["list"]))?;
    run(&mut cmd(&plain, &["list"]))?;
    let version = "PATH=\"$HOME/.local/bin:$PATH\" exec tandem --version";
    let (mut list_remote, mut list_local, mut rtt) = (Vec::new(), Vec::new(), Vec::new());
    let (mut list_one, mut remote_start, mut remote_own) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        list_remote.push(ms(run_timed(&mut cmd(&tandem, &["list"]), None)?.1));
        list_local.push(ms(run_timed(&mut cmd(&plain, &["list"]), None)?.1));
        rtt.push(ms(run_timed(lab.ssh(&control).args([HOSTS[0].0, "true"]), None)?.1));
        list_one.push(ms(run_timed(&mut cmd(&one, &["list"]), None)?.1));
        remote_start.push(ms(run_timed(lab.ssh(&control).args([HOSTS[0].0, "--", version]), None)?.1));
        remote_own.push(ms(run_timed(&mut as_user(&lab.users[0], &repos[0], &["tandem", "list"]), None)?.1));
    }
    let master_kib: u64 = masters(&control).iter().map(|&p| rss_kib(p)).sum();
    let master_count = masters(&control).len();

    // List, cold: every master closed first.
    let mut list_cold = Vec::new();
    for _ in 0..args.cold_runs {
        for (alias, _) in HOSTS {
            let _ = run(lab.ssh(&control).args(["-O", "exit", alias]));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !masters(&control).is_empty() {
            ensure!(Instant::now() < deadline, "the control masters did not end within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        list_cold.push(ms(run_timed(&mut cmd(&tandem, &["list"]), None)?.1));
    }
    run(&mut cmd(&tandem, &["list"]))?;

    // Keystroke to echo: tandem attach HOST:NAME against ssh -t tmux attach.
    let (alias, name) = HOSTS[0];
    run(lab.ssh(&control).args([
        alias,
        "--",
        "tmux new-session -d -s bench -x 120 -y 40 \\; set-option -g status off",
    ]))?;
    let mut attach = {
        let mut c = portable_pty::CommandBuilder::new(&tandem.bin);
        c.args(["attach", &format!("{name}:s00")]);
        c.cwd(&tandem.repo);
        c.env("TANDEM_HOME", &tandem.home);
        c.env("PATH", &path);
        c.env("TERM", "xterm-256color");
        Pty::start(c)?
    };
    let mut tmux = {
        let mut c = portable_pty::CommandBuilder::new("/usr/bin/ssh");
        for arg in lab.ssh(&control).get_args() {
            c.arg(arg);
        }
        c.args(["-t", alias, "tmux", "attach", "-t", "bench"]);
        c.env("TERM", "xterm-256color");
        Pty::start(c)?
    };
    let (mut echo_tandem, mut echo_tmux) = (Vec::new(), Vec::new());
    for k in 0..args.runs * ECHO_RUNS {
        let key = KEYS[k % KEYS.len()];
        echo_tandem.push(attach.echo(key, "tandem attach")?);
        echo_tmux.push(tmux.echo(key, "ssh -t tmux attach")?);
    }
    drop(attach);
    drop(tmux);

    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        report,
        "2 remotes (two users behind one sshd on 127.0.0.1) × {} shell sessions; {} runs each \
         ({} keystrokes), alternating; {cpus} CPUs, load {}",
        args.sessions,
        args.runs,
        args.runs * ECHO_RUNS,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )?;
    writeln!(report, "{:<52} {:>10} {:>20}", "figure", "median", "min–max")?;
    line(&mut report, "tandem list, 2 remotes, warm", &list_remote, "ms")?;
    line(&mut report, "  beside: tandem list, no remote", &list_local, "ms")?;
    line(&mut report, "  beside: ssh HOST true over the master", &rtt, "ms")?;
    line(&mut report, "  where: tandem list, 1 remote, warm", &list_one, "ms")?;
    line(&mut report, "  where: ssh HOST tandem --version over the master", &remote_start, "ms")?;
    line(&mut report, "  where: the remote's own tandem list (no ssh)", &remote_own, "ms")?;
    line(&mut report, "tandem list, 2 remotes, cold (masters closed)", &list_cold, "ms")?;
    line(&mut report, "keystroke → echo, tandem attach HOST:NAME", &echo_tandem, "ms")?;
    line(&mut report, "  beside: ssh -t HOST tmux attach", &echo_tmux, "ms")?;
    line(&mut report, "tandem new --on HOST --agent shell --bg", &new_on, "ms")?;
    line(&mut report, "  beside: ssh HOST git worktree add", &worktree_add, "ms")?;
    line(&mut report, "first tandem new --on HOST (repository there)", &first_new, "ms")?;
    line(&mut report, "first connection: ssh HOST true, no master", &login, "ms")?;
    line(&mut report, "first connection: tandem remote add", &add, "ms")?;
    line(&mut report, "first connection: tandem remote install", &install, "ms")?;
    writeln!(report, "repository on the remotes: {}", how.join(", "))?;
    writeln!(report, "control masters: {master_count}, {master_kib} KiB resident together")?;
    let mid = |s: &[f64]| median(s).unwrap_or(f64::NAN);
    let list_target = mid(&list_local) + mid(&rtt);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    writeln!(
        report,
        "target: warm list ≤ local list + one round trip ({list_target:.2} ms): {}",
        verdict(mid(&list_remote) <= list_target)
    )?;
    let ratio = mid(&echo_tandem) / mid(&echo_tmux);
    writeln!(report, "target: attach echo ≤ 1.0× ssh+tmux: {ratio:.2}× {}", verdict(ratio <= 1.0))?;
    writeln!(report, "new --on vs ssh git worktree add: {:.2}×", mid(&new_on) / mid(&worktree_add))?;
    print!("{report}");
    drop(lab);
    Ok(())
}

/// `ARGS` as `user` in `dir`, with the environment an ssh login gives it
/// (`HOME`, `PATH` with `~/.local/bin` first, no `TANDEM_HOME`).
fn as_user(user: &User, dir: &Path, args: &[&str]) -> Command {
    let home = user.home.display();
    let mut cmd = Command::new("/usr/sbin/runuser");
    cmd.args(["-u", &user.name, "--", "/usr/bin/env", "-i"])
        .arg(format!("HOME={home}"))
        .arg(format!("USER={}", user.name))
        .arg(format!("PATH={home}/.local/bin:/usr/local/bin:/usr/bin:/bin"))
        .args(args)
        .current_dir(dir);
    cmd
}

/// The repository `tandem new --on` made in `home` (a clone of the origin
/// or a mirror), and which of the two.
fn remote_repo(home: &Path) -> Result<(PathBuf, String)> {
    for kind in ["repos", "mirrors"] {
        let dir = home.join(".local/share/tandem").join(kind);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.path().join(".git").is_dir() {
                    return Ok((entry.path(), if kind == "repos" { "cloned" } else { "mirror" }.to_owned()));
                }
            }
        }
    }
    bail!("no repository under {}/.local/share/tandem/{{repos,mirrors}} after tandem new --on", home.display())
}
