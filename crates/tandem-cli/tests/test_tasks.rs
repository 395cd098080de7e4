//! Tasks and trials with the shell agent and scripted edits: the brief,
//! `task show` (diffstat, files, the check, cached per state), `task
//! diff`, `task promote` (the others archived and restorable), and bad
//! input.

use std::path::Path;

use crate::common::{TestEnv, stderr, stdout};

fn commit(env: &TestEnv, wt: &Path, file: &str, text: &str) {
    env.commit_in(wt, file, text, &format!("add {file}"));
}

fn show(env: &TestEnv, task: &str) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["task", "show", task, "--json"])).expect("json")
}

fn trial(shown: &serde_json::Value, n: i64) -> &serde_json::Value {
    shown["trials"].as_array().expect("trials").iter().find(|t| t["trial"] == n).expect("trial")
}

#[test]
fn three_trials_are_compared_and_one_promoted_the_others_archived() {
    let env = TestEnv::new();
    let runs = env.tmp.path().join("check-runs");
    let check = format!("echo run >> {}; grep -q ok done.txt", runs.display());
    let out = env.ok(&[
        "task",
        "new",
        "Write done.txt saying ok",
        "--name",
        "greet",
        "--trials",
        "3",
        "--agents",
        "shell",
        "--base",
        "head",
        "--check",
        &check,
        "--owns",
        "done.txt",
        "--owns",
        "src/",
    ]);
    assert!(out.starts_with("task greet: 3 trial(s)\n"), "{out}");
    let wt = |n: u32| env.path_of(&format!("greet-t{n}"));
    for n in 1..=3 {
        let s = env.session(&format!("greet-t{n}"));
        assert_eq!(s["branch"], format!("greet/t{n}"), "{s}");
        let brief = std::fs::read_to_string(wt(n).join(".tandem/brief.md")).expect("brief");
        assert!(brief.contains(&format!("# Task `greet`: trial {n} of 3")), "{brief}");
        assert!(brief.contains("Write done.txt saying ok") && brief.contains("`done.txt`, `src/`"), "{brief}");
        assert!(brief.contains("### Summary") && brief.contains(&check), "{brief}");
        assert_eq!(env.git_in(&wt(n), &["status", "--porcelain"]), "", "the brief is excluded from git");
    }

    commit(&env, &wt(1), "done.txt", "ok\n");
    std::fs::write(wt(2).join("done.txt"), "not yet\n").expect("write"); // uncommitted
    commit(&env, &wt(3), "done.txt", "ok\n");
    commit(&env, &wt(3), "src/lib.rs", "pub fn hi() {}\n");
    commit(&env, &wt(3), "README.md", "# changed\n");

    let shown = show(&env, "greet");
    assert_eq!(shown["task"]["check"], check);
    let (t1, t2, t3) = (trial(&shown, 1), trial(&shown, 2), trial(&shown, 3));
    assert_eq!((t1["check"]["passed"].as_bool(), t2["check"]["passed"].as_bool()), (Some(true), Some(false)));
    assert_eq!(t2["check"]["exit_code"], 1);
    assert_eq!(t3["check"]["passed"], true);
    assert_eq!(t1["files"], serde_json::json!(["done.txt"]));
    assert_eq!(t2["files"], serde_json::json!(["done.txt"]), "uncommitted work counts");
    assert_eq!((t3["insertions"].as_u64(), t3["files"].as_array().map(Vec::len)), (Some(3), Some(3)));
    assert_eq!(t3["outside_owned"], serde_json::json!(["README.md"]));
    assert_eq!(std::fs::read_to_string(&runs).expect("runs").lines().count(), 3);

    // Results are kept per state: nothing changed, nothing runs again.
    let table = env.ok(&["task", "show", "greet"]);
    assert!(table.contains("TRIAL") && table.contains("FAIL (1)") && table.contains("pass"), "{table}");
    assert!(table.contains("warning: greet-t3 changed files outside its owned paths: README.md"), "{table}");
    assert_eq!(std::fs::read_to_string(&runs).expect("runs").lines().count(), 3, "cached");
    std::fs::write(wt(2).join("done.txt"), "ok\n").expect("write");
    assert_eq!(trial(&show(&env, "greet"), 2)["check"]["passed"], true, "a new state is checked again");
    assert_eq!(std::fs::read_to_string(&runs).expect("runs").lines().count(), 4);

    let names = env.ok(&["task", "diff", "greet", "1", "t3", "--name-only"]);
    assert_eq!(names, "README.md\nsrc/lib.rs\n");

    let listed = env.ok(&["task", "list"]);
    let row = listed.lines().find(|l| l.starts_with("greet")).unwrap_or_default();
    assert!(row.contains("in-progress") && row.contains("3 ") && row.contains("Write done.txt"), "{listed}");

    // Promote t3: its branch becomes greet/result; the others are archived.
    let out = env.ok(&["task", "promote", "greet", "3"]);
    assert!(out.contains("promoted greet-t3 of task greet: its branch is now greet/result"), "{out}");
    assert_eq!(env.git_in(&wt(3), &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "greet/result");
    assert_eq!(env.session("greet-t3")["branch"], "greet/result");
    let archived: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["list", "--archived", "--json"])).expect("json");
    let mut names: Vec<&str> = archived.iter().filter_map(|s| s["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["greet-t1", "greet-t2"]);
    assert!(!env.git(&["branch", "--list", "greet/t1"]).is_empty(), "archived trials keep their branches");
    assert_eq!(env.git(&["rev-parse", "main"]), env.git(&["rev-parse", "HEAD"]), "nothing merged");
    let shown = show(&env, "greet");
    assert_eq!(shown["task"]["promoted"], "greet-t3");
    assert_eq!(shown["task"]["status"], "in-review");
    assert_eq!(trial(&shown, 1)["state"], "archived");
    let err = env.fails(&["task", "promote", "greet", "1"]);
    assert!(err.contains("task `greet` already promoted greet-t3"), "{err}");
    env.ok(&["restore", "greet-t2"]);
    assert_eq!(std::fs::read_to_string(env.path_of("greet-t2").join("done.txt")).expect("restored"), "ok\n");
    env.ok(&["task", "set", "greet", "--status", "done"]);
    assert_eq!(show(&env, "greet")["task"]["status"], "done");
    // The STATUS column, not the objective (which says "done.txt").
    let listed = env.ok(&["task", "list"]);
    let row = listed.lines().find(|l| l.starts_with("greet")).unwrap_or_default();
    assert_eq!(row.split_whitespace().nth(1), Some("done"), "{listed}");
}

#[test]
fn task_bad_input_is_refused_with_nothing_made() {
    let env = TestEnv::new();
    let before = env.repo_state();
    let err = env.fails(&["task", "new", "  "]);
    assert!(err.contains("the objective is empty"), "{err}");
    let err = env.fails(&["task", "new", "x", "--trials", "0"]);
    assert!(err.contains("--trials must be 1 to 16, not 0"), "{err}");
    let err = env.fails(&["task", "new", "x", "--trials", "1", "--agents", "shell,shell"]);
    assert!(err.contains("2 agents for 1 trial(s)"), "{err}");
    env.git(&["branch", "taken"]);
    let err = env.fails(&["task", "new", "x", "--name", "taken", "--agents", "shell"]);
    assert!(err.contains("a branch named `taken` exists"), "{err}");
    env.git(&["branch", "-D", "taken"]);
    assert_eq!(env.repo_state(), before);
    assert!(env.ok(&["task", "list"]).contains("no tasks in this repository"));

    env.ok(&["task", "new", "first", "--name", "one", "--trials", "1", "--agents", "shell", "--base", "head"]);
    let err = env.fails(&["task", "new", "again", "--name", "one", "--agents", "shell"]);
    assert!(err.contains("a task named `one` already exists"), "{err}");
    let err = env.fails(&["task", "show", "nope"]);
    assert!(err.contains("no task named `nope` here"), "{err}");
    let err = env.fails(&["task", "diff", "one", "1", "9"]);
    assert!(err.contains("task `one` has no trial `9`"), "{err}");
    let err = env.fails(&["task", "set", "one", "--status", "finished"]);
    assert!(err.contains("unknown status `finished`"), "{err}");
}

/// Runs `tandem ARGS` for each of `runs` at once (the supervisor already
/// up), and returns their outputs in the same order.
fn at_once(env: &TestEnv, runs: &[Vec<&str>]) -> Vec<std::process::Output> {
    use std::process::Stdio;
    env.ok(&["list"]);
    let children: Vec<_> = runs
        .iter()
        .map(|args| {
            env.command_in(&env.repo, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn")
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().expect("wait")).collect()
}

#[test]
fn racing_promotes_of_one_task_promote_one_trial_and_refuse_the_other() {
    // Each promote runs in the supervisor under the repository's lock:
    // the second sees the first's promotion, whichever comes first.
    let env = TestEnv::new();
    for round in 0..3 {
        let task = format!("race{round}");
        env.ok(&["task", "new", "Race", "--name", &task, "--trials", "2", "--agents", "shell", "--base", "head"]);
        let outs = at_once(&env, &[vec!["task", "promote", &task, "1"], vec!["task", "promote", &task, "2"]]);
        let won: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
        assert_eq!(won.len(), 1, "one promote wins: {:?}", outs.iter().map(stderr).collect::<Vec<_>>());
        let (winner, loser) = (won[0] + 1, 2 - won[0]);
        let refused = stderr(&outs[loser - 1]);
        let expected =
            format!("task `{task}` already promoted {task}-t{winner} (branch {task}/result); nothing changed");
        assert!(refused.contains(&expected), "round {round}: {refused}");
        let shown: serde_json::Value =
            serde_json::from_str(&env.ok(&["task", "show", &task, "--json", "--no-check"])).expect("json");
        assert_eq!(shown["task"]["promoted"], format!("{task}-t{winner}"));
        assert_eq!(trial(&shown, i64::try_from(loser).expect("small"))["state"], "archived");
        let head = env.git_in(&env.path_of(&format!("{task}-t{winner}")), &["rev-parse", "--abbrev-ref", "HEAD"]);
        assert_eq!(head.trim(), format!("{task}/result"));
        assert!(!env.git(&["branch", "--list", &format!("{task}/t{loser}")]).is_empty(), "the loser keeps its branch");
    }
}

#[test]
fn racing_task_news_of_one_objective_get_names_of_their_own() {
    // The name is picked and the task stored under the repository's lock:
    // the second `task new` sees the first's task and takes the next name.
    let env = TestEnv::new();
    let new = vec!["task", "new", "Race me", "--trials", "1", "--agents", "shell", "--base", "head"];
    let outs = at_once(&env, &[new.clone(), new.clone(), new]);
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let mut heads: Vec<String> = outs.iter().map(|o| stdout(o).lines().next().unwrap_or_default().to_owned()).collect();
    heads.sort_unstable();
    assert_eq!(heads, ["task race-me-2: 1 trial(s)", "task race-me-3: 1 trial(s)", "task race-me: 1 trial(s)"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&env.ok(&["task", "list", "--json"])).expect("json");
    assert_eq!(listed.len(), 3, "{listed:?}");
}
