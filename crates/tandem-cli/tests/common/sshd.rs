//! A private OpenSSH server on 127.0.0.1 in front of a fresh Unix user: the
//! honest stand-in for a second machine in the remote-host tests (issue
//! 21). The user has its own home, its own tandem state
//! (`~/.local/state/tandem`, `/tmp/tandem-<uid>`) and its own processes.
//!
//! [`Sshd::start`] makes the user (`tdr` and 8 hex digits, unlocked with
//! `usermod -p '*'` because sshd refuses a locked account without PAM), a
//! host key and a client key, and runs `/usr/sbin/sshd -D` as a child on a
//! free port. It writes an ssh client config with the host alias
//! [`Sshd::ALIAS`] and puts a folder first on the test's `PATH` (in
//! `TestEnv::env`) whose `ssh`, `scp` and `sftp` add `-F` that config: the
//! test's processes run with `HOME` set to a temporary folder, and ssh reads
//! `~/.ssh/config` from the passwd entry's home, not from `$HOME`.
//!
//! Needs root (`useradd`, `runuser`, binding sshd) and `/usr/sbin/sshd`
//! (`scripts/test.sh` installs `openssh-server`). Without them the test is
//! skipped, saying why, unless `TANDEM_TEST_REQUIRE_AGENTS` is set (CI),
//! where a missing sshd fails the test.
//!
//! Drop kills every process of the user (by pid, from `/proc`), the server
//! and its per-connection processes, the test's ssh control masters, and
//! removes the user with its home and its runtime folder.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{TestEnv, WAIT, skipped};

/// `useradd` and `userdel` lock `/etc/passwd`; tests running at once take
/// turns (and still retry: other programs may hold the lock).
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// The SSH server, its user and the client's files. See the module doc.
pub struct Sshd {
    user: String,
    uid: u32,
    home: PathBuf,
    port: u16,
    /// Keys, configs, logs, the `ssh` wrapper (in the test's temporary
    /// folder).
    dir: PathBuf,
    /// The local `TANDEM_HOME`, whose ssh control masters Drop ends.
    tandem_home: PathBuf,
    listener: Option<Child>,
}

impl Sshd {
    /// The host alias in the client config.
    pub const ALIAS: &'static str = "tdremote";

    /// Starts a server and its user for `env`, and puts the `ssh` wrapper
    /// first on `env`'s `PATH` (every `PATH` entry already in `env.env`
    /// keeps its folders after it). `None` (the test is skipped, saying
    /// why) when not root or no `/usr/sbin/sshd`; under
    /// `TANDEM_TEST_REQUIRE_AGENTS` those panic instead.
    pub fn start(env: &mut TestEnv) -> Option<Sshd> {
        let why = if !nix::unistd::geteuid().is_root() {
            Some("the SSH tests need root (to add a Unix user and run sshd)")
        } else if !Path::new("/usr/sbin/sshd").exists() {
            Some("/usr/sbin/sshd is missing; `bash scripts/test.sh` installs openssh-server")
        } else {
            None
        };
        if let Some(why) = why {
            assert!(std::env::var_os("TANDEM_TEST_REQUIRE_AGENTS").is_none(), "required here: {why}");
            skipped(why);
            return None;
        }
        let dir = env.tmp.path().join("sshd");
        std::fs::create_dir_all(dir.join("bin")).expect("sshd folder");
        let (user, uid) = add_user();
        let home = PathBuf::from(format!("/home/{user}"));
        let mut sshd =
            Sshd { user, uid, home, port: free_port(), dir, tandem_home: env.tandem_home.clone(), listener: None };
        sshd.set_up_home();
        sshd.write_keys_and_configs();
        sshd.put_wrapper_on_path(env);
        sshd.start_again();
        Some(sshd)
    }

    /// The host alias to pass to `tandem remote add` ([`Sshd::ALIAS`]).
    pub fn alias(&self) -> &str {
        Self::ALIAS
    }

    /// The remote user's name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The remote user's id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The remote user's home folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ssh client config (`ssh -F`).
    pub fn client_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// The server's log (`sshd -E`), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.listener.as_ref().map(|c| c.id() as i32)
    }

    /// `/usr/bin/ssh -F <client config> ARGS` from the test, as root.
    pub fn ssh(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/ssh")
            .arg("-F")
            .arg(self.client_config())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    /// Runs `ARGS` as the remote user, in its home, with the environment
    /// an ssh session gives it (`HOME`, `USER`, `PATH` with
    /// `~/.local/bin` first, no `TANDEM_HOME`, no `XDG_RUNTIME_DIR`), so
    /// `tandem` here sees the same state as the remote `tandem proxy`.
    pub fn run_as_remote(&self, args: &[&str]) -> Output {
        self.remote_command(args).output().expect("run a command as the remote user")
    }

    /// [`Sshd::run_as_remote`] as a `Command`, for more settings.
    pub fn remote_command(&self, args: &[&str]) -> Command {
        let home = self.home.display();
        let mut cmd = Command::new("/usr/sbin/runuser");
        cmd.args(["-u", &self.user, "--", "/usr/bin/env", "-i"])
            .arg(format!("HOME={home}"))
            .arg(format!("USER={}", self.user))
            .arg(format!("LOGNAME={}", self.user))
            .arg(format!("PATH={home}/.local/bin:/usr/local/bin:/usr/bin:/bin"))
            .args(["SHELL=/bin/bash", "LANG=C.UTF-8", "TERM=xterm-256color"])
            .args(args)
            .current_dir(&self.home)
            .stdin(Stdio::null());
        cmd
    }

    /// `tandem ARGS` as the remote user ([`Sshd::run_as_remote`]); asserts
    /// success and returns stdout.
    pub fn remote_tandem(&self, args: &[&str]) -> String {
        let mut all = vec!["tandem"];
        all.extend_from_slice(args);
        let out = self.run_as_remote(&all);
        assert!(
            out.status.success(),
            "remote tandem {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies `src` to `~USER/<rel>` owned by the user, mode `mode`.
    pub fn install_file(&self, src: &Path, rel: &str, mode: &str) {
        let dest = self.home.join(rel);
        let out = Command::new("install")
            .args(["-D", "-o", &self.user, "-g", &self.user, "-m", mode])
            .arg(src)
            .arg(&dest)
            .output()
            .expect("run install");
        assert!(out.status.success(), "install {}: {}", dest.display(), String::from_utf8_lossy(&out.stderr));
    }

    /// Puts tandem on the remote the way a user would: `tandem remote add
    /// tdr <alias>`, then `tandem remote install tdr`. Returns the remote's
    /// name, `tdr`.
    /// While this tandem has no `remote` command (exit 2: usage), copies
    /// the binary directly instead ([`Sshd::copy_tandem`]).
    pub fn install_tandem(&self, env: &TestEnv) -> &'static str {
        if env.tandem(&["remote", "list"]).status.code() == Some(2) {
            self.copy_tandem();
            return "tdr";
        }
        let out = env.tandem(&["remote", "add", "tdr", self.alias()]);
        assert!(out.status.success(), "remote add: {}\nsshd log:\n{}", super::stderr(&out), self.log());
        let out = env.tandem(&["remote", "install", "tdr"]);
        assert!(out.status.success(), "remote install: {}\nsshd log:\n{}", super::stderr(&out), self.log());
        assert!(
            self.home.join(".local/bin/tandem").is_file(),
            "remote install put no tandem in ~/.local/bin: {}",
            super::stdout(&out)
        );
        "tdr"
    }

    /// Copies the test's `tandem` to `~USER/.local/bin/tandem` directly,
    /// without tandem's own `remote install`.
    pub fn copy_tandem(&self) {
        self.install_file(&TestEnv::bin(), ".local/bin/tandem", "755");
    }

    /// Starts the server (again) on the same port and waits until it
    /// accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.listener.is_none(), "sshd is already running");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd (sshd's privilege separation folder)");
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.dir.join("sshd.log"))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/sbin/sshd");
        self.listener = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.listener.as_mut().and_then(|c| c.try_wait().expect("try_wait sshd")) {
                self.listener = None;
                panic!("sshd exited at start ({status}); its log:\n{}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "sshd never listened on port {}; its log:\n{}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server and every per-connection sshd process under it:
    /// new connections are refused and open ones drop. The user's own
    /// processes (its tandem supervisor and agents) keep running, as on a
    /// machine whose sshd went away.
    pub fn stop(&mut self) {
        let Some(mut child) = self.listener.take() else { return };
        let pid = child.id() as i32;
        // Stopped first, so it forks no new connection while its children
        // are listed.
        let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        for p in sshd_descendants(pid) {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = child.wait();
        // The per-connection processes were the listener's children, so
        // init reaps them; wait until they are gone.
        super::wait_for("sshd's connection processes to end", || sshd_serving(&self.user).is_empty().then_some(()));
    }

    /// Stops (SIGSTOP) the server and its per-connection processes: the
    /// host still accepts TCP connections but never answers.
    pub fn freeze(&self) {
        self.signal_all(Signal::SIGSTOP);
    }

    /// Lets a [`Sshd::freeze`]d server run on (SIGCONT).
    pub fn thaw(&self) {
        self.signal_all(Signal::SIGCONT);
    }

    fn signal_all(&self, signal: Signal) {
        let pid = self.pid().expect("sshd runs");
        let _ = kill(Pid::from_raw(pid), signal);
        for p in sshd_descendants(pid) {
            let _ = kill(Pid::from_raw(p), signal);
        }
    }

    /// Ends (SIGKILL, by pid) the ssh control masters whose control path
    /// lies under `dir` (the local tandem's runtime folder): the shared
    /// connection drops as if the network went away. Returns how many.
    pub fn kill_control_masters(&self, dir: &Path) -> usize {
        let masters = control_masters(dir);
        for &pid in &masters {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        super::wait_for("the control masters to end", || {
            masters.iter().all(|&p| !Path::new(&format!("/proc/{p}")).exists() || is_zombie(p)).then_some(())
        });
        masters.len()
    }

    /// The pids of the live ssh control masters whose control path lies
    /// under `dir`.
    pub fn control_master_pids(&self, dir: &Path) -> Vec<i32> {
        control_masters(dir)
    }

    /// The pids of the processes the remote user runs now.
    pub fn remote_pids(&self) -> Vec<i32> {
        pids_of_uid(self.uid)
    }

    /// Whether `pid` is a live process of the remote user.
    pub fn remote_pid_alive(&self, pid: i32) -> bool {
        pids_of_uid(self.uid).contains(&pid) && !is_zombie(pid)
    }

    fn set_up_home(&self) {
        std::fs::write(
            self.home.join(".gitconfig"),
            "[user]\n\tname = Remote Test\n\temail = remote@example.com\n[init]\n\tdefaultBranch = main\n",
        )
        .expect("remote .gitconfig");
        // The same prompt as the local test home's, so shell sessions on
        // the remote can be waited for the same way.
        std::fs::write(self.home.join(".bashrc"), format!("PS1='{} '\n", super::PROMPT)).expect("remote .bashrc");
        std::fs::create_dir_all(self.home.join(".ssh")).expect("remote .ssh");
        std::fs::create_dir_all(self.home.join(".local/bin")).expect("remote .local/bin");
        chown_r(&self.home, &self.user);
    }

    fn write_keys_and_configs(&self) {
        for key in ["host_key", "client_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(self.dir.join(key))
                .output()
                .expect("run ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        }
        self.authorize_client_key();
        let dir = self.dir.display();
        std::fs::write(
            self.dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile .ssh/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowUsers {user}\n\
                 LogLevel VERBOSE\n",
                port = self.port,
                user = self.user
            ),
        )
        .expect("sshd_config");
        std::fs::write(
            self.client_config(),
            format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {dir}/client_key\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {dir}/known_hosts\n  StrictHostKeyChecking accept-new\n  \
                 LogLevel ERROR\n",
                alias = Self::ALIAS,
                port = self.port,
                user = self.user
            ),
        )
        .expect("ssh client config");
    }

    /// (Re)writes the user's `authorized_keys` with the client key.
    pub fn authorize_client_key(&self) {
        let key = std::fs::read_to_string(self.dir.join("client_key.pub")).expect("client_key.pub");
        let file = self.home.join(".ssh/authorized_keys");
        std::fs::write(&file, key).expect("authorized_keys");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod authorized_keys");
        chown_r(&self.home.join(".ssh"), &self.user);
    }

    /// Removes the user's `authorized_keys`: the server refuses the key.
    pub fn revoke_client_key(&self) {
        std::fs::remove_file(self.home.join(".ssh/authorized_keys")).expect("remove authorized_keys");
    }

    fn put_wrapper_on_path(&self, env: &mut TestEnv) {
        let bin = self.dir.join("bin");
        let config = self.client_config();
        for tool in ["ssh", "scp", "sftp"] {
            let file = bin.join(tool);
            std::fs::write(&file, format!("#!/bin/sh\nexec /usr/bin/{tool} -F '{}' \"$@\"\n", config.display()))
                .expect("write the ssh wrapper");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod the wrapper");
        }
        let bin = bin.to_string_lossy().into_owned();
        let mut found = false;
        for (k, v) in &mut env.env {
            if k == "PATH" {
                *v = format!("{bin}:{v}");
                found = true;
            }
        }
        if !found {
            let path = std::env::var("TEST_PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
            env.env.push(("PATH".to_owned(), format!("{bin}:{path}")));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Stopped processes die of SIGKILL too; no thaw needed.
        for _ in 0..50 {
            let pids = pids_of_uid(self.uid);
            if pids.iter().all(|&p| is_zombie(p)) {
                break;
            }
            for p in pids {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        for pid in control_masters(&self.tandem_home) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(format!("/tmp/tandem-{}", self.uid));
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..20 {
            let ok = Command::new("userdel")
                .args(["-r", "-f", &self.user])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success() || s.code() == Some(12)); // 12: home not removed
            if ok || !Path::new(&self.home).exists() && !user_exists(&self.user) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Makes a new unlocked user with a home; returns its name and uid.
fn add_user() -> (String, u32) {
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = String::new();
    for attempt in 0..40u32 {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").subsec_nanos();
        let seed = nanos ^ std::process::id().rotate_left(16) ^ attempt.wrapping_mul(0x9e37_79b9);
        let user = format!("tdr{:08x}", seed);
        if user_exists(&user) {
            continue;
        }
        let out = Command::new("useradd").args(["-m", "-s", "/bin/bash", &user]).output().expect("run useradd");
        if !out.status.success() {
            // Most often "cannot lock /etc/passwd": another test (or
            // program) holds it; try again shortly.
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let out = Command::new("usermod").args(["-p", "*", &user]).output().expect("run usermod");
        assert!(out.status.success(), "usermod -p '*' {user}: {}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new("id").args(["-u", &user]).output().expect("run id");
        let uid = String::from_utf8_lossy(&out.stdout).trim().parse().expect("a numeric uid");
        return (user, uid);
    }
    panic!("could not add a test user: {last}");
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn chown_r(path: &Path, user: &str) {
    let out = Command::new("chown").args(["-R", &format!("{user}:{user}")]).arg(path).output().expect("run chown");
    assert!(out.status.success(), "chown {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Every process id in `/proc`.
fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// `(comm, state, ppid)` of `pid` from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(String, char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

fn is_zombie(pid: i32) -> bool {
    stat(pid).is_none_or(|(_, state, _)| state == 'Z' || state == 'X')
}

/// The sshd processes under `root` (its children, theirs, …).
fn sshd_descendants(root: i32) -> Vec<i32> {
    let table: Vec<(i32, String, i32)> =
        all_pids().into_iter().filter_map(|p| stat(p).map(|(comm, _, ppid)| (p, comm, ppid))).collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, comm, ppid) in &table {
            if *ppid == parent && comm.starts_with("sshd") && !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Live sshd processes serving `user` (`sshd: USER…` in their command
/// line), wherever they were re-parented.
fn sshd_serving(user: &str) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&p| {
            !is_zombie(p)
                && stat(p).is_some_and(|(comm, _, _)| comm.starts_with("sshd"))
                && cmdline(p).starts_with(&format!("sshd: {user}"))
        })
        .collect()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_owned())
        .unwrap_or_default()
}

/// ssh control masters (`ssh: <control path> [mux]`) whose control path
/// lies under `dir`.
fn control_masters(dir: &Path) -> Vec<i32> {
    let dir = dir.to_string_lossy().into_owned();
    all_pids()
        .into_iter()
        .filter(|&p| {
            let line = cmdline(p);
            line.starts_with(&format!("ssh: {dir}")) && line.ends_with("[mux]") && !is_zombie(p)
        })
        .collect()
}

fn pids_of_uid(uid: u32) -> Vec<i32> {
    all_pids().into_iter().filter(|p| std::fs::metadata(format!("/proc/{p}")).is_ok_and(|m| m.uid() == uid)).collect()
}
