//! Sandboxed sessions: a shell agent under bubblewrap commits in its
//! worktree and reaches nothing else (the main checkout, another
//! session's worktree, `$HOME`, the network), endpoints the config allows
//! are forwarded in, setup hooks run in the same fence; container mode
//! where a container engine runs; bad input refused with nothing made.

use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use crate::common::{TestEnv, skipped, stderr, wait_for, wait_within};

/// A TCP server on 127.0.0.1 that accepts (and drops) connections for the
/// life of the test; returns its port.
fn tcp_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    port
}

/// Has the session's shell run `script` (bash; lines joined with `;`) and
/// write `KEY=CODE` lines to `probe.txt` in its worktree, ending with
/// `done`; returns them.
fn probe(env: &TestEnv, name: &str, script: &str) -> String {
    let file = env.path_of(name).join("probe.txt");
    let _ = std::fs::remove_file(&file);
    let text = format!("{}; echo done >> probe.txt", script.trim().replace('\n', "; "));
    env.ok(&["send", name, &format!("bash -c '{}'", text.replace('\'', "'\\''"))]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(text) = std::fs::read_to_string(&file).ok().filter(|t| t.ends_with("done\n")) {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "no probe from {name}; its screen:\n{}", env.ok(&["logs", name]));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that session `name` cannot write the main checkout.
fn assert_main_checkout_read_only(env: &TestEnv, name: &str) {
    let results =
        probe(env, name, &format!("touch \"{}/intruder\" 2>/dev/null; echo main=$? >> probe.txt", env.repo.display()));
    assert_ne!(code(&results, "main"), "0", "{results}");
    assert!(!env.repo.join("intruder").exists());
}

fn code<'a>(results: &'a str, key: &str) -> &'a str {
    results.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key} in {results}"))
}

fn require_bwrap() {
    assert!(
        Path::new("/usr/bin/bwrap").exists() || tandem_core::sandbox::find("bwrap").is_some(),
        "bwrap is not installed; scripts/test.sh installs it (apt-get install bubblewrap)"
    );
}

#[test]
fn a_sandboxed_shell_commits_in_its_worktree_and_reaches_nothing_else() {
    require_bwrap();
    let env = TestEnv::new();
    let (open_port, closed_port) = (tcp_server(), tcp_server());
    env.user_config(&format!(
        "[sandbox]\nnetwork = \"off\"\nallow_net = [\"127.0.0.1:{open_port}\"]\n[hooks]\nsetup = [\"touch \\\"$TANDEM_REPO/from-hook-$TANDEM_SESSION\\\"; echo hook=$? > hook.txt\"]\n"
    ));
    std::fs::create_dir_all(env.home.join(".ssh")).expect(".ssh");
    std::fs::write(env.home.join(".ssh/id_test"), "PRIVATE KEY\n").expect("key");
    std::fs::write(env.home.join(".netrc"), "machine example.com password hunter2\n").expect("netrc");
    env.ok(&["new", "other", "--bg", "--agent", "shell", "--base", "head", "--sandbox=none"]);
    env.ok(&["new", "fenced", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    let other = env.path_of("other");
    let home = env.home.clone();
    // A name of this test's own under /tmp: the sandbox's /tmp is private.
    let scratch = Path::new("/tmp").join(format!("{}-scratch", env.tmp.path().file_name().unwrap().to_string_lossy()));

    let results = probe(
        &env,
        "fenced",
        &format!(
            r#"cd "$TANDEM_WORKTREE"
echo made in the sandbox > made.txt && git add made.txt && git commit -q -m "sandboxed commit"; echo commit=$? >> probe.txt
touch "{repo}/intruder" 2>/dev/null; echo main=$? >> probe.txt
touch "{other}/intruder" 2>/dev/null; echo other=$? >> probe.txt
ls "{other}/README.md" >/dev/null 2>&1; echo see_other=$? >> probe.txt
touch "{home}/intruder" 2>/dev/null; echo home=$? >> probe.txt
cat "{home}/.ssh/id_test" >/dev/null 2>&1; echo ssh=$? >> probe.txt
grep -c hunter2 "{home}/.netrc" >/dev/null 2>&1; echo netrc=$? >> probe.txt
cat "{home}/.gitconfig" >/dev/null 2>&1; echo gitconfig=$? >> probe.txt
touch "{scratch}"; echo tmp=$? >> probe.txt
(exec 3<>/dev/tcp/127.0.0.1/{closed_port}) 2>/dev/null; echo tcp=$? >> probe.txt
(exec 3<>/dev/tcp/127.0.0.1/{open_port}) 2>/dev/null; echo allowed=$? >> probe.txt"#,
            repo = env.repo.display(),
            other = other.display(),
            home = home.display(),
            scratch = scratch.display(),
        ),
    );
    assert_eq!(code(&results, "commit"), "0", "{results}");
    // The commit is in the sandbox's private repository until tandem
    // reads the session back (any command naming it, `list`).
    env.ok(&["list"]);
    assert_eq!(env.git(&["log", "-1", "--format=%s", "fenced"]).trim(), "sandboxed commit");
    assert_eq!(env.git(&["show", "fenced:made.txt"]), "made in the sandbox\n");
    assert_ne!(code(&results, "main"), "0", "the main checkout is read-only: {results}");
    assert!(!env.repo.join("intruder").exists());
    assert_ne!(code(&results, "other"), "0", "another session's worktree is out of reach: {results}");
    assert_ne!(code(&results, "see_other"), "0", "… not even readable: {results}");
    assert!(!other.join("intruder").exists());
    assert_ne!(code(&results, "home"), "0", "$HOME is read-only: {results}");
    assert!(!home.join("intruder").exists());
    assert_ne!(code(&results, "ssh"), "0", "~/.ssh is hidden: {results}");
    assert_ne!(code(&results, "netrc"), "0", "~/.netrc is hidden: {results}");
    assert_eq!(code(&results, "gitconfig"), "0", "the rest of $HOME is readable: {results}");
    assert_eq!(code(&results, "tmp"), "0", "a private /tmp: {results}");
    assert!(!scratch.exists(), "written to the sandbox's own /tmp, not the machine's");
    assert_ne!(code(&results, "tcp"), "0", "no network: {results}");
    assert_eq!(code(&results, "allowed"), "0", "sandbox.allow_net is forwarded in: {results}");

    // The setup hook ran in the same fence: it could not write the
    // repository.
    let hook = std::fs::read_to_string(env.path_of("fenced").join("hook.txt")).expect("the hook ran");
    assert_ne!(hook.trim(), "hook=0", "{hook}");
    assert!(!env.repo.join("from-hook-fenced").exists());
    assert!(env.repo.join("from-hook-other").exists(), "the unsandboxed session's hook could");

    // The unsandboxed session, same machine, same script: everything
    // works, so the refusals above are the sandbox's.
    let results = probe(
        &env,
        "other",
        &format!(
            "touch \"{home}/intruder\" 2>/dev/null; echo home=$? >> probe.txt\n(exec 3<>/dev/tcp/127.0.0.1/{closed_port}) 2>/dev/null; echo tcp=$? >> probe.txt",
            home = home.display()
        ),
    );
    assert_eq!((code(&results, "home"), code(&results, "tcp")), ("0", "0"), "{results}");

    // `list` and `list --json` say which sessions are fenced in, and how.
    let list = env.ok(&["list"]);
    let line = list.lines().find(|l| l.starts_with("fenced ")).expect("fenced listed");
    assert!(list.lines().next().unwrap().contains("SANDBOX") && line.contains("workspace"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--json"])).expect("json");
    let by_name = |n: &str| json.as_array().unwrap().iter().find(|s| s["name"] == n).cloned().unwrap();
    assert_eq!(by_name("fenced")["sandbox"], "workspace");
    assert_eq!(by_name("other")["sandbox"], serde_json::Value::Null);

    // A respawn is fenced in again.
    env.ok(&["respawn", "fenced"]);
    env.wait_state("fenced", "running");
    assert_main_checkout_read_only(&env, "fenced");
}

#[test]
fn a_repository_cannot_widen_or_turn_off_the_sandbox() {
    require_bwrap();
    let env = TestEnv::new();
    env.user_config("[sandbox]\nmode = \"workspace\"\nnetwork = \"off\"\n");
    std::fs::write(
        env.repo.join(".tandem.toml"),
        "[sandbox]\nmode = \"none\"\nnetwork = \"on\"\nallow_write = [\"/\"]\nmax_processes = 0\nmax_memory = \"0\"\ntmp_size = \"1T\"\n",
    )
    .expect("write");
    env.git(&["add", ".tandem.toml"]);
    env.git(&["commit", "-q", "-m", "a greedy repository"]);
    let shown = env.ok(&["config", "show"]);
    let value = |key: &str| shown.lines().find(|l| l.starts_with(key)).unwrap_or_default().to_owned();
    assert!(value("sandbox.mode").contains("\"workspace\""), "{shown}");
    assert!(value("sandbox.network").contains("\"off\""), "{shown}");
    assert!(!value("sandbox.allow_write").contains("\"/\""), "{shown}");
    assert!(value("sandbox.max_processes").contains("512"), "{shown}");
    assert!(value("sandbox.max_memory").contains("\"4G\""), "{shown}");
    assert!(value("sandbox.tmp_size").contains("\"1G\""), "{shown}");
    env.ok(&["new", "fenced", "--bg", "--agent", "shell", "--base", "head"]);
    assert_eq!(env.session("fenced")["sandbox"], "workspace", "sandbox.mode from the user's config");
    assert_main_checkout_read_only(&env, "fenced");
}

#[test]
fn sandbox_bad_input_is_refused_with_nothing_made() {
    let mut env = TestEnv::new();
    let sessions_before = env.ok(&["list", "--json"]);
    let branches = env.git(&["branch", "--list"]);

    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox=jail"]);
    assert!(err.contains("unknown sandbox mode \"jail\"") && err.contains("none, workspace or container"), "{err}");
    env.user_config("[sandbox]\nnetwork = \"sometimes\"\n");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox"]);
    assert!(err.contains("sandbox.network: \"sometimes\" is not on or off"), "{err}");
    env.user_config("[sandbox]\nnetwork = \"off\"\nallow_net = [\"example.com:443\"]\n");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox"]);
    assert!(err.contains("sandbox.allow_net: \"example.com:443\" is not IP:PORT"), "{err}");
    // A writable folder that holds tandem's state (or the repository)
    // would show it inside the fence again: the agent could write the
    // database or hold the lock tandem's readers take turns on.
    env.user_config(&format!("[sandbox]\nallow_write = [{:?}]\n", env.tmp.path().to_string_lossy()));
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox"]);
    assert!(err.contains("sandbox.allow_write names") && err.contains("tandem's state"), "{err}");
    env.user_config(&format!("[sandbox]\nallow_write = [{:?}]\n", env.repo.join(".git").to_string_lossy()));
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox"]);
    assert!(err.contains("which holds or is part of") && err.contains("the repository's"), "{err}");
    // Inside one is part of it: hooks there run outside.
    env.user_config(&format!("[sandbox]\nallow_write = [{:?}]\n", env.repo.join(".git/hooks").to_string_lossy()));
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox"]);
    assert!(err.contains("is part of") && err.contains("the repository's"), "{err}");
    // tandem's config would let the agent unfence its next session.
    env.user_config(&format!("[sandbox]\nallow_write = [{:?}]\n", env.tandem_home.join("config").to_string_lossy()));
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox"]);
    assert!(err.contains("tandem's config"), "{err}");
    env.user_config("[sandbox]\nallow_write = [\"build\"]\n");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox"]);
    assert!(err.contains("\"build\"") || err.contains("names build, which is not an absolute path"), "{err}");
    env.user_config("");
    let err = env.fails(&["new", "x", "--bg", "--agent", "shell", "--sandbox=container"]);
    assert!(err.contains("sandbox.image is empty") || err.contains("neither `docker` nor `podman`"), "{err}");

    // No bwrap on PATH: a clear refusal, and `doctor` says how to install
    // it.
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let git = tandem_core::sandbox::find("git").expect("git on PATH");
    std::os::unix::fs::symlink(git, bin.join("git")).expect("symlink");
    env.ok(&["daemon", "stop"]);
    env.env.push(("PATH".to_owned(), bin.to_string_lossy().into_owned()));
    let err = env.fails(&["new", "x", "--bg", "--agent", "/bin/sh", "--sandbox"]);
    assert!(err.contains("`bwrap` is not installed") && err.contains("apt-get install bubblewrap"), "{err}");
    let doctor = env.ok(&["doctor"]);
    assert!(doctor.contains("bwrap is not installed") && doctor.contains("apt-get install bubblewrap"), "{doctor}");

    assert_eq!(env.ok(&["list", "--json"]), sessions_before, "no session was made");
    assert_eq!(env.git(&["branch", "--list"]), branches, "no branch was made");
}

/// Container mode needs a running engine; this machine kind has only
/// Docker's client (and a Podman that cannot start containers), so the
/// real run happens where `docker info` (or `podman info`) answers.
/// No engine: a counted skip, the only one `.ci/run` allows. An engine
/// that answers but cannot run the agent: a failure with the engine's
/// error. It proves the agent ran in the container tandem made, not on
/// the machine: while it runs the engine shows `tandem-<id>` running, the
/// agent's hostname is that container's, and its PID and UTS namespaces
/// are not this test's; once it is stopped the engine no longer has that
/// container.
#[test]
fn container_mode_runs_the_agent_in_a_container_where_an_engine_runs() {
    let engine = ["docker", "podman"].into_iter().find(|e| {
        std::process::Command::new(e)
            .arg("info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(engine) = engine else {
        skipped("container mode: no Docker or Podman engine answers `info` here");
        return;
    };
    let image = std::env::var("TANDEM_TEST_IMAGE").unwrap_or_else(|_| "debian:stable-slim".to_owned());
    let env = TestEnv::new();
    env.user_config(&format!("[sandbox]\nimage = {image:?}\nnetwork = \"off\"\n"));
    let out = env.tandem(&["new", "boxed", "--bg", "--agent", "/bin/sh", "--base", "head", "--sandbox=container"]);
    assert!(out.status.success(), "{engine} answers `info` but the session did not start: {}", stderr(&out));
    assert_eq!(env.session("boxed")["sandbox"], "container");
    let name = format!("tandem-{}", env.session("boxed")["id"].as_str().expect("id"));
    let worktree = env.path_of("boxed");
    env.ok(&[
        "send",
        "boxed",
        "echo \"host=$(cat /proc/sys/kernel/hostname) pidns=$(readlink /proc/self/ns/pid) utsns=$(readlink /proc/self/ns/uts)\" > where.txt; echo done >> where.txt",
    ]);
    let text = wait_within("the container's answer", Duration::from_secs(120), || {
        std::fs::read_to_string(worktree.join("where.txt")).ok().filter(|t| t.contains("done"))
    });
    let field = |key: &str| {
        text.split_whitespace().find_map(|w| w.strip_prefix(&format!("{key}="))).unwrap_or_default().to_owned()
    };
    // The agent still runs (a shell waiting for input): its container too.
    let inspect = std::process::Command::new(engine)
        .args(["inspect", "--format", "{{.State.Running}} {{.Config.Hostname}}", &name])
        .output()
        .expect("inspect");
    let inspected = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
    assert!(inspect.status.success(), "{engine} has no container {name}: {}", stderr(&inspect));
    let container_host =
        inspected.strip_prefix("true ").unwrap_or_else(|| panic!("{name} is not running: {inspected}"));
    assert!(!container_host.is_empty(), "{inspected}");
    assert_eq!(field("host"), container_host, "the agent's hostname is its container's: {text}");
    let machine_host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_ne!(field("host"), machine_host.trim(), "a hostname of its own: {text}");
    for ns in ["pid", "uts"] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("our namespace");
        let theirs = field(&format!("{ns}ns"));
        assert!(theirs.starts_with(&format!("{ns}:[")), "the agent read its {ns} namespace: {text}");
        assert_ne!(theirs, ours.to_string_lossy(), "a {ns} namespace of its own: {text}");
    }
    env.ok(&["stop", "boxed"]);
    wait_within(&format!("{engine} to remove {name}"), Duration::from_secs(60), || {
        let ps =
            std::process::Command::new(engine).args(["ps", "--all", "--format", "{{.Names}}"]).output().expect("ps");
        assert!(ps.status.success(), "{engine} ps: {}", stderr(&ps));
        (!String::from_utf8_lossy(&ps.stdout).lines().any(|n| n.trim() == name)).then_some(())
    });
}

/// One frame exchange on a Unix socket: hello, then `msg`; the answers
/// until the host closes or 5 s pass.
fn raw_exchange(socket: &Path, msg: &tandem_core::protocol::ClientMsg) -> Vec<tandem_core::protocol::HostMsg> {
    use tandem_core::protocol::{self, ClientMode, ClientMsg, HostMsg};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    protocol::send(&mut stream, &ClientMsg::hello(ClientMode::Control)).expect("hello");
    protocol::send(&mut stream, msg).expect("send");
    let mut answers = Vec::new();
    while let Ok(Some(answer)) = protocol::recv::<HostMsg>(&mut stream) {
        let done = !matches!(answer, HostMsg::Welcome { .. });
        answers.push(answer);
        if done {
            break;
        }
    }
    answers
}

/// A repository with an ignored `.env`, an unsandboxed session `other`,
/// a snapshot ref of a removed session, and a sandboxed shell session
/// `box`; `XDG_RUNTIME_DIR` is a folder under `$HOME` (which a sandbox
/// sees) with a stand-in for ssh-agent's socket in it.
fn fenced_box() -> (TestEnv, std::os::unix::net::UnixListener) {
    require_bwrap();
    let mut env = TestEnv::new();
    let user_run = env.home.join("user-run");
    std::fs::create_dir_all(&user_run).expect("user run");
    let ssh_agent = std::os::unix::net::UnixListener::bind(user_run.join("ssh-agent.sock")).expect("bind");
    env.env.push(("XDG_RUNTIME_DIR".to_owned(), user_run.to_string_lossy().into_owned()));
    std::fs::write(env.repo.join(".gitignore"), ".env\n").expect("gitignore");
    std::fs::write(env.repo.join(".env"), "TOKEN=hunter2\n").expect(".env");
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "ignore .env"]);
    env.ok(&["new", "other", "--bg", "--agent", "shell", "--base", "head", "--sandbox=none"]);
    env.git(&["update-ref", "refs/tandem/archive/gone/1", "HEAD"]);
    env.ok(&["new", "box", "--bg", "--agent", "shell", "--base", "head", "--sandbox"]);
    (env, ssh_agent)
}

/// Issue 16 §1, the repository: inside, `git update-ref` of `main`,
/// deleting another session's snapshot ref, rewriting `packed-refs`,
/// deleting every object, making a branch, all leave the repository as
/// it was (they act on the session's private repository, or fail on the
/// read-only objects); the agent still commits on its branch, and the
/// commit reaches the repository.
#[test]
fn issue_16_a_sandboxed_agent_cannot_change_the_repository_but_its_branch() {
    let (env, _ssh_agent) = fenced_box();
    let main_before = env.git(&["rev-parse", "main"]);
    let all_objects = || env.git(&["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"]);
    let objects_before = all_objects();
    let common = env.repo.join(".git");
    let results = probe(
        &env,
        "box",
        &format!(
            r#"cd "$TANDEM_WORKTREE"
h=$(git rev-parse HEAD); git update-ref refs/heads/main $h^ 2>/dev/null || git update-ref -d refs/heads/main; git update-ref -d refs/tandem/archive/gone/1
git pack-refs --all; : > "$(git rev-parse --git-common-dir)/packed-refs"; git update-ref refs/heads/box $h
git branch intruder $h; touch "{common}/refs/heads/intruder2"
shared=$(head -1 "{common}/objects/info/alternates"); test -d "$shared/pack"; echo shared=$? >> probe.txt
find "$shared" "{common}/objects" -type f -delete 2>/dev/null; touch "$shared/intruder" 2>/dev/null; echo objects=$? >> probe.txt
echo work > work.txt && git add work.txt && git commit -q -m "own work"; echo commit=$? >> probe.txt"#,
            common = common.display(),
        ),
    );
    assert_eq!(code(&results, "commit"), "0", "{results}");
    assert_eq!(code(&results, "shared"), "0", "the repository's objects are seen inside: {results}");
    assert_ne!(code(&results, "objects"), "0", "the repository's objects are read-only: {results}");
    assert!(env.ok(&["diff", "box", "--name-only"]).contains("work.txt"));
    assert_eq!(env.git(&["log", "-1", "--format=%s", "box"]).trim(), "own work");
    assert_eq!(env.git(&["rev-parse", "main"]), main_before, "main moved");
    assert!(
        env.git(&["for-each-ref", "refs/tandem/archive/"]).contains("refs/tandem/archive/gone/1"),
        "snapshot deleted"
    );
    assert!(env.git(&["branch", "--list", "intruder*"]).is_empty(), "a branch made inside reached the repository");
    let objects_after = all_objects();
    assert!(objects_before.lines().all(|o| objects_after.contains(o)), "objects were deleted");
    env.git(&["fsck", "--connectivity-only", "--no-dangling"]);
    assert_eq!(env.git(&["log", "-1", "--format=%s", "main"]).trim(), "ignore .env");
}

/// Issue 16 §1, planted config: the worktree's `.git` file, the config,
/// hooks and attributes git reads are read-only inside, and the admin
/// folder the agent writes (`commondir`, `config.worktree`) is its own
/// copy, so nothing planted runs when tandem or the user runs git outside
/// (`list`, `diff`, `conflicts`, `git status` in the worktree, `new`),
/// not even through a nested repository it stages, and a respawn fences
/// the agent in the same way.
#[test]
fn issue_16_nothing_a_sandboxed_agent_writes_runs_outside() {
    let (env, _ssh_agent) = fenced_box();
    let common = env.repo.join(".git");
    let admin = common.join("worktrees/box");
    let marker = env.tmp.path().join("pwned");
    let fsmonitor = format!("[core]\\n\\tfsmonitor = touch {}\\n", marker.display());
    let results = probe(
        &env,
        "box",
        &format!(
            r#"cd "$TANDEM_WORKTREE"
mkdir -p /tmp/evil; cp -r "{common}/." /tmp/evil/ 2>/dev/null; printf '{fsmonitor}' >> /tmp/evil/config
echo /tmp/evil > "{admin}/commondir" 2>/dev/null; echo commondir=$? >> probe.txt
echo "gitdir: {common}" > .git 2>/dev/null; echo dotgit=$? >> probe.txt
printf '{fsmonitor}' > "{admin}/config.worktree" 2>/dev/null; echo worktree_config=$? >> probe.txt
printf '{fsmonitor}' >> "{common}/config" 2>/dev/null; echo config=$? >> probe.txt
printf '#!/bin/sh\ntouch {marker}\n' > "{common}/hooks/post-checkout" 2>/dev/null; echo hooks=$? >> probe.txt
printf '* filter=evil\n' > "{common}/info/attributes" 2>/dev/null; echo attributes=$? >> probe.txt
mkdir sub && cd sub && git init -q && git config filter.evil.clean "touch {marker}; cat" && echo "* filter=evil" > .gitattributes && echo data > f && git add . && git commit -q -m nested; echo more >> f; cd .. && git add sub; echo nested=$? >> probe.txt"#,
            common = common.display(),
            admin = admin.display(),
            marker = marker.display(),
        ),
    );
    for key in ["dotgit", "config", "hooks", "attributes"] {
        assert_ne!(code(&results, key), "0", "{key} was writable: {results}");
    }
    // `commondir` and `config.worktree` were written, in the sandbox's own
    // copy of the admin folder: the repository's is not even seen.
    assert_eq!(std::fs::read_to_string(admin.join("commondir")).expect("commondir").trim(), "../..");
    assert!(!std::fs::read_to_string(admin.join("config.worktree")).unwrap_or_default().contains("fsmonitor"));
    assert!(std::fs::read_to_string(env.path_of("box").join(".git")).expect(".git").contains("worktrees/box"));
    assert_eq!(code(&results, "nested"), "0", "{results}");
    assert!(!marker.exists(), "the nested repository's filter ran inside: {results}");
    // tandem's own git: list (git status), diff, conflicts (snapshots),
    // and the user's git in the main checkout.
    env.ok(&["list"]);
    assert!(!marker.exists(), "list");
    env.ok(&["diff", "box", "--stat"]);
    assert!(!marker.exists(), "diff");
    env.ok(&["conflicts"]);
    assert!(!marker.exists(), "conflicts");
    env.git(&["status", "--short"]);
    env.ok(&["new", "after", "--bg", "--agent", "shell", "--base", "head", "--sandbox=none"]);
    assert!(!marker.exists(), "a planted command ran outside the sandbox");
    // A respawn: the fence comes from tandem's records, not from files
    // in the worktree.
    env.ok(&["respawn", "box"]);
    env.wait_state("box", "running");
    let results =
        probe(&env, "box", &format!("touch \"{}/config\" 2>/dev/null; echo config=$? >> probe.txt", common.display()));
    assert_ne!(code(&results, "config"), "0", "{results}");
}

/// Issue 16 §1, sockets: the supervisor's and every host's socket are
/// out of reach inside (so neither `tandem new --sandbox=none` nor a raw
/// frame can make or drive an unfenced session); the session's hook
/// channel takes its own hook events only, recorded for it whatever the
/// event says, and refuses a prompt.
#[test]
fn issue_16_a_sandboxed_agent_reaches_no_socket_of_tandems() {
    let (env, _ssh_agent) = fenced_box();
    let marker = env.tmp.path().join("pwned");
    let results = probe(
        &env,
        "box",
        &format!(
            r#"test -S "{home}/run/supervisor.sock"; echo supervisor=$? >> probe.txt
ls "{home}/run/h/" 2>/dev/null | grep -q sock; echo hosts=$? >> probe.txt
"{bin}" new evil --bg --sandbox=none --agent "touch {marker}" >/dev/null 2>&1; echo tandem_new=$? >> probe.txt"#,
            home = env.tandem_home.display(),
            bin = TestEnv::bin().display(),
            marker = marker.display(),
        ),
    );
    assert_ne!(code(&results, "supervisor"), "0", "{results}");
    assert_ne!(code(&results, "hosts"), "0", "{results}");
    assert_ne!(code(&results, "tandem_new"), "0", "{results}");
    assert!(env.sessions().iter().all(|s| s["name"] != "evil"), "the sandbox made a session");

    let id = env.session("box")["id"].as_str().unwrap().to_owned();
    let channel = env.tandem_home.join("run/s").join(&id).join("hook.sock");
    let prompt = tandem_core::protocol::ClientMsg::Prompt { text: format!("touch {}", marker.display()) };
    let answers = raw_exchange(&channel, &prompt);
    assert!(
        matches!(answers.last(), Some(tandem_core::protocol::HostMsg::Error { .. })),
        "a prompt on the hook channel: {answers:?}"
    );
    let hook = tandem_core::protocol::ClientMsg::Hook {
        payload: serde_json::json!({"hook_event_name": "UserPromptSubmit", "prompt": "said on the channel", "session_id": "other"}),
    };
    let answers = raw_exchange(&channel, &hook);
    assert!(matches!(answers.last(), Some(tandem_core::protocol::HostMsg::Hooked { .. })), "{answers:?}");
    assert!(env.ok(&["history", "box"]).contains("said on the channel"));
    assert!(!env.ok(&["history", "other"]).contains("said on the channel"));
    // Prompts are typed in order: once this probe ran, the refused one
    // would have too.
    probe(&env, "box", "echo after=0 >> probe.txt");
    assert!(!marker.exists(), "the hook channel typed a prompt");
}

/// Issue 16 §1, what a sandbox sees: not tandem's database or another
/// session's logs, not the main checkout (its ignored `.env`), not the
/// user's runtime folder (ssh-agent, D-Bus, systemd sockets).
#[test]
fn issue_16_a_sandboxed_agent_sees_no_state_main_checkout_or_user_sockets() {
    let (env, _ssh_agent) = fenced_box();
    let other_log = env.tandem_home.join("state/sessions").join(env.session("other")["id"].as_str().unwrap());
    let user_run = env.home.join("user-run");
    let script = format!(
        r#"cat "{home}/state/tandem.db" >/dev/null 2>&1; echo db=$? >> probe.txt
ls "{other_log}" >/dev/null 2>&1; echo other_log=$? >> probe.txt
cat "{repo}/.env" >/dev/null 2>&1; echo dotenv=$? >> probe.txt
test -S "{user_run}/ssh-agent.sock"; echo user_run=$? >> probe.txt"#,
        home = env.tandem_home.display(),
        other_log = other_log.display(),
        repo = env.repo.display(),
        user_run = user_run.display(),
    );
    let results = probe(&env, "box", &script);
    for key in ["db", "other_log", "dotenv", "user_run"] {
        assert_ne!(code(&results, key), "0", "{key} was visible: {results}");
    }
    // The same script in the unsandboxed session sees all of it: the
    // refusals are the sandbox's.
    let results = probe(&env, "other", &script);
    for key in ["db", "other_log", "dotenv", "user_run"] {
        assert_eq!(code(&results, key), "0", "{key}: {results}");
    }
}

/// A sandboxed agent's work is never lost to `rm`: its commit and a file
/// it staged (both only in its private repository until read back) make
/// `rm` refuse, and `rm --force` keeps them in its snapshot.
#[test]
fn issue_16_a_sandboxed_agents_commits_and_staged_files_survive_rm() {
    let (env, _ssh_agent) = fenced_box();
    let results = probe(
        &env,
        "box",
        r#"cd "$TANDEM_WORKTREE"
echo committed > c.txt && git add c.txt && git commit -q -m "inside"; echo commit=$? >> probe.txt
echo staged > s.txt && git add s.txt && echo changed after > s.txt; echo staged=$? >> probe.txt"#,
    );
    assert_eq!((code(&results, "commit"), code(&results, "staged")), ("0", "0"), "{results}");
    // The staged version is in the repository too: git outside can show
    // what changed since it was staged.
    env.ok(&["list"]);
    let diff = env.git_in(&env.path_of("box"), &["diff", "--", "s.txt"]);
    assert!(diff.contains("-staged") && diff.contains("+changed after"), "{diff}");
    let err = env.fails(&["rm", "box"]);
    assert!(err.contains("box"), "{err}");
    env.ok(&["rm", "--force", "box"]);
    let snapshot = env.git(&["for-each-ref", "--format=%(refname)", "refs/tandem/archive/box/"]);
    let snapshot = snapshot.lines().next().expect("a snapshot was kept");
    assert_eq!(env.git(&["show", &format!("{snapshot}:c.txt")]), "committed\n");
    assert_eq!(env.git(&["show", &format!("{snapshot}:s.txt")]), "changed after\n");
}

/// Writes a stand-in for container engine `name` into `dir`: it logs
/// each call to `dir/calls.log`; `info` exits 0 when `answers`; `run`
/// fails with `run_error` when given, else exits 0.
fn fake_engine(dir: &Path, name: &str, answers: bool, run_error: Option<&str>) {
    let info = if answers {
        "exit 0".to_owned()
    } else {
        format!("echo 'Cannot connect to the {name} daemon. Is it running?' >&2; exit 1")
    };
    let run = match run_error {
        Some(e) => format!("echo 'pulling…' >&2; echo '{e}' >&2; exit 126"),
        None => "exit 0".to_owned(),
    };
    let script = format!(
        "#!/bin/sh\necho \"{name} $*\" >> \"{log}\"\ncase \"$1\" in\n  info) {info} ;;\n  run) {run} ;;\nesac\nexit 0\n",
        log = dir.join("calls.log").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).expect("fake engine");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
}

/// A test environment whose `PATH` starts with `dir` (fake engines).
fn env_with_engines(dir: &Path) -> TestEnv {
    let mut env = TestEnv::new();
    env.env.push(("PATH".to_owned(), format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display())));
    env.user_config("[sandbox]\nimage = \"img:1\"\n");
    env
}

#[test]
fn container_mode_uses_the_engine_that_answers_not_the_first_on_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    fake_engine(dir.path(), "docker", false, Some("docker: this client has no daemon"));
    fake_engine(dir.path(), "podman", true, None);
    let env = env_with_engines(dir.path());
    env.ok(&["new", "boxed", "--bg", "--agent", "/bin/sh", "--base", "head", "--sandbox=container"]);
    let log = dir.path().join("calls.log");
    let calls = crate::common::wait_for("the agent's container run", || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("podman run --rm --interactive --tty"))
    });
    assert!(
        calls.contains("podman run --rm --network none --pids-limit 512 --memory 4294967296 --entrypoint true img:1"),
        "checked first, under the limits:\n{calls}"
    );
    assert!(!calls.contains("docker run"), "the docker client with no daemon is passed over:\n{calls}");
    assert_eq!(env.session("boxed")["sandbox"], "container");
}

#[test]
fn a_container_engine_that_cannot_start_a_container_fails_new_with_its_error_and_makes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    fake_engine(
        dir.path(),
        "podman",
        true,
        Some("Error: crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted: OCI permission denied"),
    );
    let env = env_with_engines(dir.path());
    let branches = env.git(&["branch", "--list"]);
    let err = env.fails(&["new", "boxed", "--bg", "--agent", "/bin/sh", "--base", "head", "--sandbox=container"]);
    assert!(
        err.contains("cannot start sandbox.image \"img:1\"") && err.contains("crun: setrlimit `RLIMIT_NOFILE`"),
        "{err}"
    );
    assert_eq!(env.sessions().len(), 0, "no session");
    assert_eq!(env.git(&["branch", "--list"]), branches, "no branch");

    // Neither engine answers: a refusal naming each one's error.
    fake_engine(dir.path(), "podman", false, None);
    fake_engine(dir.path(), "docker", false, None);
    let err = env.fails(&["new", "boxed", "--bg", "--agent", "/bin/sh", "--base", "head", "--sandbox=container"]);
    assert!(
        err.contains("no container engine answers here") && err.contains("Cannot connect to the podman daemon"),
        "{err}"
    );
    assert_eq!(env.sessions().len(), 0, "no session");
    assert_eq!(env.git(&["branch", "--list"]), branches, "no branch");
}

/// Issue 16 §1: a FIFO where git keeps the worktree's `HEAD` or `index`
/// (the admin folder is the agent's to write) would make every git
/// outside block on it: `tandem list` and `diff` still answer.
#[test]
fn issue_16_a_fifo_in_the_admin_folder_does_not_hang_tandem() {
    let (env, _ssh_agent) = fenced_box();
    let results = probe(
        &env,
        "box",
        r#"admin=$(git rev-parse --git-dir); rm -f "$admin/index" && mkfifo "$admin/index"; echo index=$? >> probe.txt
rm -f "$admin/ORIG_HEAD"; mkfifo "$admin/ORIG_HEAD"; cp "$admin/HEAD" "$admin/HEAD.real"; rm -f "$admin/HEAD" && mkfifo "$admin/HEAD"; echo head=$? >> probe.txt"#,
    );
    assert_eq!((code(&results, "index"), code(&results, "head")), ("0", "0"), "{results}");
    for args in [&["list", "--json"][..], &["diff", "box", "--stat"], &["rm", "box"]] {
        assert!(tandem_within(&env, args, 30).is_some(), "`tandem {}` hung", args.join(" "));
    }
    env.ok(&["stop", "box"]);
}

/// What tandem does to a sandboxed session's branch outside (`tandem
/// sync` rebasing it onto its moved base) reaches the agent's side too:
/// its HEAD, index and branch follow, and its next commit builds on the
/// rebased one, so nothing is lost either way.
#[test]
fn issue_16_tandem_sync_of_a_sandboxed_session_reaches_the_agent() {
    let (env, _ssh_agent) = fenced_box();
    commit_mine(&env);
    commit_theirs(&env);
    let out = env.ok(&["sync", "box"]);
    assert!(out.contains("rebased"), "{out}");
    let results = probe(
        &env,
        "box",
        r#"git log --format=%s -3 | tr '\n' , > log.txt; echo log=$(cat log.txt) >> probe.txt
test -z "$(git status --porcelain -- mine.txt theirs.txt)"; echo clean=$? >> probe.txt
echo after > after.txt && git add after.txt && git commit -q -m after; echo commit=$? >> probe.txt"#,
    );
    assert_eq!(code(&results, "log"), "mine,theirs,ignore .env,", "{results}");
    assert_eq!(code(&results, "clean"), "0", "{results}");
    assert_eq!(code(&results, "commit"), "0", "{results}");
    env.ok(&["list"]);
    assert_eq!(env.git(&["log", "--format=%s", "-3", "box"]), "after\nmine\ntheirs\n");
}

/// Several tandem processes reading a sandboxed session's work back at
/// once (each `tandem` command does, and the supervisor and the host do
/// on their own) take turns: none fails on another's git ref lock and
/// drops what it was bringing back, so the agent sees its rebased branch
/// and index however many read at once.
#[test]
fn issue_16_concurrent_reads_of_a_sandboxed_session_take_turns() {
    let (env, _ssh_agent) = fenced_box();
    let readers_at_once = || {
        let readers: Vec<_> = (0..6)
            .map(|_| {
                env.command_in(&env.repo, &["diff", "box", "--stat"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run tandem")
            })
            .collect();
        for reader in readers {
            let out = reader.wait_with_output().expect("wait");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{err}");
            assert!(!err.contains("cannot read the sandbox's work back"), "{err}");
        }
    };
    commit_mine(&env);
    // Each brings the agent's commit back (and the host does too).
    readers_at_once();
    assert_eq!(env.git(&["log", "--format=%s", "-2", "box"]), "mine\nignore .env\n");
    commit_theirs(&env);
    env.ok(&["sync", "box"]);
    readers_at_once();
    let results = probe(
        &env,
        "box",
        &r#"git log --format=%s -3 | tr '\n' , > log.txt; echo log=$(cat log.txt) >> probe.txt
test -z "$(git status --porcelain -- mine.txt theirs.txt)"; echo clean=$? >> probe.txt
ls SANDBOXES/*/sync.lock >/dev/null 2>&1; echo lock=$? >> probe.txt"#
            .replace("SANDBOXES", &env.tandem_home.join("state/sandboxes").to_string_lossy()),
    );
    assert_eq!(code(&results, "log"), "mine,theirs,ignore .env,", "{results}");
    assert_eq!(code(&results, "clean"), "0", "{results}");
    // The lock the readers take turns on is tandem's: the agent cannot
    // see it, so it cannot hold it and stall them.
    let locks = std::fs::read_dir(env.tandem_home.join("state/sandboxes"))
        .expect("sandboxes")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("sync.lock").is_file()))
        .count();
    assert_eq!(locks, 1, "the lock is there outside");
    assert_ne!(code(&results, "lock"), "0", "{results}");
}

/// While `tandem sync` rebases a sandboxed session outside, the agent's
/// git rewrites its own index (as its `git status` does): the rebased
/// index still reaches the agent, rather than its stale one coming out
/// over the rebase.
#[test]
fn issue_16_an_agent_index_written_during_a_sync_does_not_undo_the_rebase() {
    let (env, _ssh_agent) = fenced_box();
    commit_mine(&env);
    // Checking `theirs.txt` out during the rebase leaves a mark in the
    // worktree, then takes 2 s; the agent writes its index on the mark.
    std::fs::write(env.repo.join(".git/info/attributes"), "theirs.txt filter=slow\n").expect("attributes");
    env.git(&["config", "filter.slow.smudge", "touch .in-rebase; sleep 2; cat"]);
    env.git(&["config", "filter.slow.clean", "cat"]);
    commit_theirs(&env);
    let file = env.path_of("box").join("probe.txt");
    let _ = std::fs::remove_file(&file);
    let script = "while [ ! -f .in-rebase ]; do sleep 0.05; done; git update-index --force-write-index; echo wrote=$? >> probe.txt; echo done >> probe.txt";
    env.ok(&["send", "box", &format!("bash -c '{script}'")]);
    let out = env.ok(&["sync", "box"]);
    assert!(out.contains("rebased"), "{out}");
    let wrote = wait_for("the agent to write its index", || {
        std::fs::read_to_string(&file).ok().filter(|t| t.ends_with("done\n"))
    });
    assert_eq!(code(&wrote, "wrote"), "0", "{wrote}");
    std::fs::remove_file(env.path_of("box").join(".in-rebase")).expect("mark");
    assert_rebased_inside(&env);
    let outside = env.git_in(&env.path_of("box"), &["status", "--porcelain", "--", "mine.txt", "theirs.txt"]);
    assert_eq!(outside, "", "outside too");
    // A sync with nothing to do leaves no mark that would have a later
    // read-back copy the repository's index over what the agent stages.
    let out = env.ok(&["sync", "box"]);
    assert!(out.contains("up to date"), "{out}");
    let marks = std::fs::read_dir(env.tandem_home.join("state/sandboxes"))
        .expect("sandboxes")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("rewritten-outside").exists()))
        .count();
    assert_eq!(marks, 0, "a rewritten-outside mark stays");
}

/// The agent in `box` commits `mine.txt` ("mine").
fn commit_mine(env: &TestEnv) {
    let results = probe(
        env,
        "box",
        r#"echo mine > mine.txt && git add mine.txt && git commit -q -m mine; echo commit=$? >> probe.txt"#,
    );
    assert_eq!(code(&results, "commit"), "0", "{results}");
}

/// The user commits `theirs.txt` ("theirs") on the base.
fn commit_theirs(env: &TestEnv) {
    std::fs::write(env.repo.join("theirs.txt"), "theirs\n").expect("write");
    env.git(&["add", "theirs.txt"]);
    env.git(&["commit", "-q", "-m", "theirs"]);
}

/// Inside `box`, the branch is "mine" rebased onto "theirs" and the
/// index matches it.
fn assert_rebased_inside(env: &TestEnv) {
    let results = probe(
        env,
        "box",
        r#"git log --format=%s -3 | tr '\n' , > log.txt; echo log=$(cat log.txt) >> probe.txt
test -z "$(git status --porcelain -- mine.txt theirs.txt)"; echo clean=$? >> probe.txt"#,
    );
    assert_eq!(code(&results, "log"), "mine,theirs,ignore .env,", "{results}");
    assert_eq!(code(&results, "clean"), "0", "{results}");
}

/// Runs `tandem ARGS` in the repository for at most `secs` seconds:
/// `None` when it had not answered by then (it is killed).
fn tandem_within(env: &TestEnv, args: &[&str], secs: u64) -> Option<std::process::Output> {
    let mut child = env
        .command_in(&env.repo, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tandem");
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A branch `feature` of the user's, one commit off `main~1` (so `main`
/// is one ahead of it); returns its commit.
fn user_feature_branch(env: &TestEnv) -> String {
    let tree = env.git(&["rev-parse", "main~1^{tree}"]);
    let commit = env.git(&["commit-tree", tree.trim(), "-p", "main~1", "-m", "user feature work"]);
    env.git(&["update-ref", "refs/heads/feature", commit.trim()]);
    commit.trim().to_owned()
}

/// Issue 16 §1, the worktree's admin folder (review): it is the real one,
/// writable inside, and git outside takes the worktree's `HEAD` from it.
/// An agent that points `HEAD` at the user's `feature` (and makes its
/// index match, so the worktree looks clean) has `tandem sync` rebase
/// `feature`, not the session's branch.
#[test]
fn issue_16_a_sandboxed_agents_head_cannot_make_sync_rewrite_another_branch() {
    let (env, _ssh_agent) = fenced_box();
    let feature = user_feature_branch(&env);
    // The agent can find the commit itself (`git cat-file
    // --batch-all-objects` over the repository's objects, seen inside).
    let results = probe(
        &env,
        "box",
        &format!(
            r#"cd "$TANDEM_WORKTREE"; admin=$(git rev-parse --git-dir)
echo "ref: refs/heads/feature" > "$admin/HEAD"; echo head=$? >> probe.txt
git read-tree {feature} && git checkout-index -a -f && rm -f .gitignore; echo index=$? >> probe.txt"#
        ),
    );
    assert_eq!((code(&results, "head"), code(&results, "index")), ("0", "0"), "{results}");
    let _ = env.tandem(&["sync", "box"]);
    assert_eq!(env.git(&["rev-parse", "feature"]).trim(), feature, "tandem sync rewrote the user's feature branch");
}

/// Issue 16 §1, the admin folder again (review): a rebase's state
/// (`rebase-merge/head-name`, `orig-head`) lives there, and `git rebase
/// --abort` moves the branch `head-name` names back to `orig-head`. An
/// agent that plants one naming `main` has `tandem sync box --abort`,
/// the command tandem itself advises, move `main` back (losing commits).
#[test]
fn issue_16_a_planted_rebase_cannot_make_sync_abort_move_main() {
    let (env, _ssh_agent) = fenced_box();
    let main_before = env.git(&["rev-parse", "main"]);
    let old = env.git(&["rev-parse", "main~1"]);
    let results = probe(
        &env,
        "box",
        &format!(
            r#"cd "$TANDEM_WORKTREE"; admin=$(git rev-parse --git-dir); mkdir -p "$admin/rebase-merge"
echo refs/heads/main > "$admin/rebase-merge/head-name"; echo {old} > "$admin/rebase-merge/orig-head"
echo {old} > "$admin/rebase-merge/onto"; touch "$admin/rebase-merge/interactive"; echo planted=$? >> probe.txt"#,
            old = old.trim()
        ),
    );
    assert_eq!(code(&results, "planted"), "0", "{results}");
    // The planted state is in the sandbox's own admin folder: `sync` sees
    // no rebase under way, and `--abort` has nothing of the agent's to
    // act on.
    let _ = env.tandem(&["sync", "box"]);
    let _ = env.tandem(&["sync", "box", "--abort"]);
    assert_eq!(env.git(&["rev-parse", "main"]), main_before, "`tandem sync box --abort` moved main");
}

/// Issue 16 §3 (review): a FIFO the agent makes in its private
/// repository (`packed-refs`, read by the fenced `upload-pack` when
/// tandem reads the work back) must not hang the supervisor: `tandem
/// list` answers.
#[test]
fn issue_16_a_fifo_in_the_private_repository_does_not_hang_list() {
    let (env, _ssh_agent) = fenced_box();
    let id = env.session("box")["id"].as_str().expect("id").to_owned();
    let fifo = env.tandem_home.join("state/sandboxes").join(&id).join("git/packed-refs");
    let results = probe(
        &env,
        "box",
        r#"cd "$TANDEM_WORKTREE"; common=$(git rev-parse --git-common-dir)
rm -f "$common/packed-refs"; mkfifo "$common/packed-refs"; echo fifo=$? >> probe.txt
echo more > more.txt && git add more.txt"#,
    );
    assert_eq!(code(&results, "fifo"), "0", "{results}");
    let answered = tandem_within(&env, &["list"], 60);
    // Let a blocked reader go before the test ends (opened for writing).
    let _ = std::fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(&fifo);
    let _ = std::fs::remove_file(&fifo);
    assert!(answered.is_some(), "`tandem list` did not answer within 60 s");
    let again = tandem_within(&env, &["list"], 10);
    assert!(again.is_some(), "a second `tandem list` did not answer within 10 s");
}

/// Issue 16 §3 (review): a FIFO the agent makes for its worktree's
/// `HEAD` (in the admin folder, writable inside) must not hang the
/// supervisor: `tandem list` answers.
#[test]
fn issue_16_a_fifo_for_head_in_the_admin_folder_does_not_hang_list() {
    let (env, _ssh_agent) = fenced_box();
    let results = probe(
        &env,
        "box",
        r#"cd "$TANDEM_WORKTREE"; admin=$(git rev-parse --git-dir)
rm -f "$admin/HEAD"; mkfifo "$admin/HEAD"; echo fifo=$? >> probe.txt"#,
    );
    assert_eq!(code(&results, "fifo"), "0", "{results}");
    let answered = tandem_within(&env, &["list"], 60);
    let head = env.repo.join(".git/worktrees/box/HEAD");
    let _ = std::fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(&head);
    let _ = std::fs::remove_file(&head);
    let _ = std::fs::write(&head, "ref: refs/heads/box\n");
    assert!(answered.is_some(), "`tandem list` did not answer within 60 s");
}

/// Issue 16 §5 (review): git outside appends to the worktree's
/// `logs/HEAD` (in the admin folder) when `tandem sync` moves `HEAD`, and
/// follows a symlink there: an agent that makes it a link to a file of
/// the user's has git write into that file.
#[test]
fn issue_16_no_write_lands_outside_through_a_planted_reflog_symlink() {
    let (env, _ssh_agent) = fenced_box();
    let victim = env.tmp.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").expect("victim");
    // main one ahead of box: `tandem sync box` has something to rebase.
    env.git(&["commit", "-q", "--allow-empty", "-m", "main moves on"]);
    let results = probe(
        &env,
        "box",
        &format!(
            r#"cd "$TANDEM_WORKTREE"; admin=$(git rev-parse --git-dir)
rm -f "$admin/logs/HEAD"; mkdir -p "$admin/logs"; ln -s "{victim}" "$admin/logs/HEAD"; echo link=$? >> probe.txt"#,
            victim = victim.display()
        ),
    );
    assert_eq!(code(&results, "link"), "0", "{results}");
    let _ = env.tandem(&["sync", "box"]);
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious\n", "git wrote through the symlink");
}

/// Issue 16 §1 (review): the agent's branch comes back only forward, or
/// its old tip is kept: an agent that resets its branch back past its
/// own earlier commits (already read back) must not make them unreachable
/// in the repository.
#[test]
fn issue_16_a_sandboxed_agent_cannot_rewind_its_branch_and_lose_commits() {
    let (env, _ssh_agent) = fenced_box();
    let results = probe(
        &env,
        "box",
        r#"cd "$TANDEM_WORKTREE"
echo one > one.txt && git add one.txt && git commit -q -m "one" && echo two > two.txt && git add two.txt && git commit -q -m "two"; echo commit=$? >> probe.txt"#,
    );
    assert_eq!(code(&results, "commit"), "0", "{results}");
    env.ok(&["list"]);
    let two = env.git(&["rev-parse", "box"]);
    assert_eq!(env.git(&["log", "-1", "--format=%s", "box"]).trim(), "two");
    let results = probe(&env, "box", r#"git reset -q --hard HEAD~2; echo reset=$? >> probe.txt"#);
    assert_eq!(code(&results, "reset"), "0", "{results}");
    env.ok(&["list"]);
    let holding = env.git(&["for-each-ref", "--contains", two.trim(), "--format=%(refname)"]);
    assert!(!holding.trim().is_empty(), "the agent's earlier commits are reachable from no ref:\n{holding}");
}

/// Issue 16 §2 (review): tandem asks a sandboxed session's agent CLI one
/// question outside the fence (a title, an archive summary: `claude -p`).
/// Claude Code run that way reads the project settings of the folder it
/// runs in, with no trust prompt, and runs their hooks: asked in the
/// session's worktree, it runs whatever the agent planted in
/// `.claude/settings.json` there, outside the sandbox.
#[test]
fn issue_16_a_sandboxed_agents_planted_claude_settings_run_nothing_outside() {
    use crate::common::anthropic::{MessagesStub, Step, use_claude};
    let Some((claude, mut env)) = crate::common::agent_and_env("claude") else { return };
    require_bwrap();
    let stub = MessagesStub::start(vec![Step::text("Nothing to do.")]);
    use_claude(&mut env, &claude, &stub, &[]);
    env.user_config(&format!("[sandbox]\nnetwork = \"off\"\nallow_net = [\"127.0.0.1:{}\"]\n", stub.port()));
    env.ok(&["new", "boxed", "--bg", "--agent", "claude", "--base", "head", "--sandbox"]);
    assert_eq!(env.session("boxed")["sandbox"], "workspace");
    // What the agent can write in its worktree (here written for it).
    let marker = env.tmp.path().join("pwned");
    let hook = serde_json::json!({ "type": "command", "command": format!("touch {}", marker.display()) });
    let settings = serde_json::json!({ "hooks": {
        "SessionStart": [{ "hooks": [hook.clone()] }],
        "UserPromptSubmit": [{ "hooks": [hook] }],
    }});
    let dir = env.path_of("boxed").join(".claude");
    std::fs::create_dir_all(&dir).expect(".claude");
    std::fs::write(dir.join("settings.json"), settings.to_string()).expect("settings");
    std::fs::remove_file(&marker).ok();
    env.wait_state("boxed", "idle");
    std::fs::remove_file(&marker).ok();
    // Archiving asks the agent's CLI for a summary.
    env.ok(&["archive", "boxed"]);
    assert!(!marker.exists(), "a hook the sandboxed agent planted ran outside its sandbox");
}

/// A sandboxed trial's check builds and runs its agent's code: `task
/// show` runs it in the trial's fence, so what the agent planted in its
/// worktree (here: the check script itself) cannot write outside it.
#[test]
fn issue_16_a_sandboxed_trials_check_runs_in_its_fence() {
    require_bwrap();
    let env = TestEnv::new();
    env.user_config("[sandbox]\nmode = \"workspace\"\n");
    let escaped = env.repo.join("escaped-by-check");
    env.ok(&[
        "task",
        "new",
        "Write check.sh",
        "--name",
        "t",
        "--trials",
        "1",
        "--agents",
        "shell",
        "--base",
        "head",
        "--check",
        "sh check.sh",
    ]);
    let wt = env.path_of("t-t1");
    // What the agent wrote: a check that reaches for the main checkout.
    std::fs::write(wt.join("check.sh"), format!("touch {} && echo inside > ok.txt\n", escaped.display()))
        .expect("write");
    let shown: serde_json::Value = serde_json::from_str(&env.ok(&["task", "show", "t", "--json"])).expect("json");
    assert!(!escaped.exists(), "the check wrote outside the trial's fence: {shown}");
    assert!(!wt.join("ok.txt").exists(), "the check's first step failed, so it stopped there");
    std::fs::write(wt.join("check.sh"), "echo inside > ok.txt\n").expect("write");
    env.ok(&["task", "show", "t", "--json"]);
    assert_eq!(std::fs::read_to_string(wt.join("ok.txt")).expect("the check ran"), "inside\n");
}

/// Issue 16 §3 (review): `git status` outside reads the `HEAD` of a
/// nested repository staged as a gitlink (to compare its commit, whatever
/// `diff.ignoreSubmodules=dirty` says); one the agent made a FIFO must
/// not hang the supervisor: `tandem list` answers.
#[test]
fn issue_16_a_fifo_in_a_nested_repository_does_not_hang_list() {
    let (env, _ssh_agent) = fenced_box();
    let head = env.path_of("box").join("sub/.git/HEAD");
    let results = probe(
        &env,
        "box",
        r#"cd "$TANDEM_WORKTREE"
mkdir sub && cd sub && git init -q && echo d > f && git add f && git commit -q -m n && cd .. && git add sub 2>/dev/null && git commit -q -m "add sub"; echo nested=$? >> probe.txt
rm sub/.git/HEAD && mkfifo sub/.git/HEAD; echo fifo=$? >> probe.txt; touch changed.txt"#,
    );
    assert_eq!((code(&results, "nested"), code(&results, "fifo")), ("0", "0"), "{results}");
    let answered = tandem_within(&env, &["list"], 60);
    let _ = std::fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(&head);
    let _ = std::fs::remove_file(&head);
    assert!(answered.is_some(), "`tandem list` did not answer within 60 s");
}

/// Issue 22: a sandboxed agent's checkpoints live where it cannot reach
/// them. From inside, it tries to list them, delete their refs (by git
/// and by hand, loose and packed) and drop their objects; outside, every
/// checkpoint still resolves to its commit, which still holds its work,
/// and `rewind` brings that work back.
#[test]
fn issue_22_a_sandboxed_agent_cannot_reach_its_checkpoints() {
    let (env, _ssh_agent) = fenced_box();
    let id = env.session("box")["id"].as_str().expect("id").to_owned();
    let results = probe(&env, "box", r#"cd "$TANDEM_WORKTREE"; echo precious > work.txt; echo wrote=$? >> probe.txt"#);
    assert_eq!(code(&results, "wrote"), "0", "{results}");
    crate::common::hook_event(&env, &id, &serde_json::json!({ "hook_event_name": "UserPromptSubmit", "prompt": "w" }));
    crate::common::hook_event(&env, &id, &serde_json::json!({ "hook_event_name": "Stop" }));
    let reference = format!("refs/tandem/checkpoints/{id}/1");
    let commit = crate::common::wait_for("the checkpoint", || {
        let out = env.command_git_in(&env.repo, &["rev-parse", "--verify", "--quiet", &reference]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    let common = env.repo.join(".git");
    let results = probe(
        &env,
        "box",
        &format!(
            r#"cd "$TANDEM_WORKTREE"
n=$(git for-each-ref refs/tandem/checkpoints/ | wc -l); echo seen=$n >> probe.txt
git update-ref -d {reference} 2>/dev/null; echo gitdelete=$? >> probe.txt
rm -rf "{common}/refs/tandem" 2>/dev/null; echo rmloose=$? >> probe.txt
printf "" > "{common}/packed-refs" 2>/dev/null; echo packed=$? >> probe.txt
rm -f work.txt; git reflog expire --expire=now --all 2>/dev/null; git gc -q --prune=now 2>/dev/null; echo gc=$? >> probe.txt"#,
            common = common.display()
        ),
    );
    assert_eq!(code(&results, "seen"), "0", "the agent sees no checkpoint ref: {results}");
    assert_eq!(env.git(&["rev-parse", &reference]).trim(), commit, "the ref is where it was");
    assert_eq!(env.git(&["show", &format!("{commit}:work.txt")]), "precious\n", "and its commit holds the work");
    assert!(!env.path_of("box").join("work.txt").exists());
    let out = env.tandem(&["rewind", "box", "1", "--stop"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert_eq!(std::fs::read_to_string(env.path_of("box").join("work.txt")).expect("back"), "precious\n");
}
