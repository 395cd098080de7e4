//! One session row behind every front end (issue 18): `tandem list
//! --json` and the table are rendered from core's `SessionRow` and its
//! column registry. These snapshots were taken before the row moved into
//! core, and must stay byte-identical (after the values that differ from
//! run to run, ids, paths, commits and times, are replaced by their name).
//! Issue 19 changed them on purpose, once: the table's cells in words
//! (`1 changed, 1 new`, `1 ahead`, `alpha (pinned)`) and the JSON's
//! `repo` key.

use std::time::Duration;

use crate::common::{TestEnv, wait_within};

/// Keys whose values change from run to run.
const VOLATILE: [&str; 9] =
    ["id", "path", "base_commit", "created_at", "age_seconds", "last_activity", "archived_at", "archive_ref", "since"];

/// `text` with each volatile value replaced by `<key>`, and the test's own
/// folder by `<tmp>`.
fn normalized(env: &TestEnv, text: &str) -> String {
    let tmp = env.tmp.path().display().to_string();
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let key = VOLATILE.iter().find(|k| trimmed.starts_with(&format!("\"{k}\": ")));
            match key {
                Some(k) if !trimmed.starts_with(&format!("\"{k}\": null")) => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let comma = if trimmed.ends_with(',') { "," } else { "" };
                    format!("{indent}\"{k}\": \"<{k}>\"{comma}")
                }
                _ => line.replace(&tmp, "<tmp>"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn list_json_and_table_stay_byte_identical() {
    let env = TestEnv::new();
    // No inferred state flips to `idle` while the test runs.
    env.user_config("[supervisor]\nquiet_secs = 100000\n");
    std::fs::write(env.repo.join("shared.txt"), "one\ntwo\nthree\n").expect("write");
    env.git(&["add", "shared.txt"]);
    env.git(&["commit", "-q", "-m", "shared"]);

    env.ok(&["new", "alpha", "--bg", "--agent", "shell", "--title", "Fix the login redirect"]);
    env.ok(&["set", "alpha", "--priority", "high", "--status", "in-review", "--pin"]);
    let alpha = env.path_of("alpha");
    std::fs::write(alpha.join("shared.txt"), "one\nALPHA\nthree\n").expect("write");
    env.git_in(&alpha, &["commit", "-qam", "alpha edits shared"]);
    std::fs::write(alpha.join("notes.txt"), "untracked\n").expect("write");
    std::fs::write(alpha.join("README.md"), "# changed\n").expect("write");

    env.ok(&["new", "beta", "--bg", "--agent", "shell"]);
    let beta = env.path_of("beta");
    std::fs::write(beta.join("shared.txt"), "one\nBETA\nthree\n").expect("write");
    env.git_in(&beta, &["commit", "-qam", "beta edits shared"]);

    env.ok(&["new", "gamma", "--bg", "--agent", "sh -c 'exit 3'"]);
    env.wait_state("gamma", "failed");
    env.ok(&["new", "delta", "--bg", "--agent", "shell"]);
    env.ok(&["stop", "delta"]);
    env.ok(&["new", "old", "--bg", "--agent", "shell"]);
    std::fs::write(env.path_of("old").join("kept.txt"), "kept\n").expect("write");
    // Its summary names its last output: the prompt.
    wait_within("old's prompt", Duration::from_secs(20), || env.ok(&["logs", "old"]).contains("tsh$").then_some(()));
    env.ok(&["archive", "old"]);

    // Conflict control has looked at the live sessions.
    env.ok(&["conflicts"]);
    wait_within("conflict marks in list", Duration::from_secs(20), || {
        (env.session("beta")["conflicts_with"].as_array().map(Vec::len) == Some(1)).then_some(())
    });

    // Every worktree watched (set up in the background after its first look).
    wait_within("every worktree watched", Duration::from_secs(20), || {
        env.sessions().iter().all(|s| s["facts"] == "watched").then_some(())
    });
    let json = normalized(&env, &env.ok(&["list", "--json"]));
    insta::assert_snapshot!("list_json", json);
    let archived = normalized(&env, &env.ok(&["list", "--archived", "--json"]));
    insta::assert_snapshot!("list_archived_json", archived);
    // The table, without the columns that hold times and paths.
    let table = env.ok(&["list"]);
    let cut: Vec<String> = table
        .lines()
        .map(|l| l.split("  ").filter(|c| !c.is_empty()).map(str::trim).collect::<Vec<_>>())
        .map(|cells| cells[..cells.len().saturating_sub(3)].join(" | "))
        .collect();
    insta::assert_snapshot!("list_table", cut.join("\n"));
}
