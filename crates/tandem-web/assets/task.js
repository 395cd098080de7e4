// One task: its trials side by side (state, the check, diffstat, files,
// time, tokens, handoff), the diff between two trials, and Promote.
"use strict";

const [, , repoId, taskName] = location.pathname.split("/").map(decodeURIComponent);
const base = "/api/tasks/" + encodeURIComponent(repoId) + "/" + encodeURIComponent(taskName);
let shown = null;

function checkCell(task, t) {
  if (!task.check) return el("span", { class: "sub" }, "no check");
  if (!t.check) return el("span", { class: "sub" }, t.state === "archived" ? "not run" : "not run yet");
  const c = t.check;
  const secs = (c.duration_ms / 1000).toFixed(1) + "s";
  const verdict = c.passed ? "pass" : (c.exit_code === null ? "FAIL (killed)" : "FAIL (" + c.exit_code + ")");
  return el("details", { class: "check " + (c.passed ? "pass" : "fail") },
    el("summary", {}, verdict + " · " + secs),
    el("pre", { class: "output" }, c.output || "(no output)"));
}

function trialCard(task, t, ids) {
  const id = t.id || ids.get(t.name);
  const link = id ? el("a", { href: "/session/" + encodeURIComponent(id), class: "name" }, t.name) : el("span", { class: "name" }, t.name);
  const promote = el("button", { "data-action": "promote", "data-trial": t.trial, class: "primary",
    disabled: !!task.promoted || t.state === "archived" }, "Promote");
  promote.addEventListener("click", () => promoteTrial(t));
  return el("article", { class: "trial" + (t.promoted ? " promoted" : ""), "data-trial": t.trial, "data-session": t.name },
    el("h2", {}, "t" + t.trial + " ", link, t.promoted ? el("span", { class: "badge" }, "promoted") : null),
    el("dl", {},
      el("dt", {}, "Agent"), el("dd", {}, t.agent),
      el("dt", {}, "Branch"), el("dd", { class: "mono" }, t.branch),
      el("dt", {}, "State"), el("dd", { class: "state state-" + t.state.split(/[^a-z_-]/)[0] }, t.state),
      el("dt", {}, "Check"), el("dd", { class: "check-result" }, checkCell(task, t)),
      el("dt", {}, "Diff"), el("dd", { class: "diffstat" }, diffstat(t.insertions, t.deletions) + " in " + t.files.length + " file(s)"),
      el("dt", {}, "Time"), el("dd", {}, ago(t.duration_secs)),
      el("dt", {}, "Tokens"), el("dd", {}, t.tokens === null ? "–" : String(t.tokens)),
      el("dt", {}, "Cost"), el("dd", {}, t.cost_usd === null ? "–" : "$" + t.cost_usd.toFixed(2))),
    t.files.length ? el("details", { class: "files" }, el("summary", {}, "Files"), el("ul", {}, t.files.map((f) => el("li", { class: "mono" }, f)))) : null,
    t.outside_owned.length ? el("p", { class: "warn" }, "Changed outside its owned paths: " + t.outside_owned.join(", ")) : null,
    t.handoff_summary ? el("p", { class: "message handoff" }, t.handoff_summary) : null,
    t.handoff ? el("details", {}, el("summary", {}, "Handoff"), el("pre", { class: "output" }, t.handoff)) : null,
    el("div", { class: "actions" }, promote));
}

async function promoteTrial(t) {
  const question = "Promote t" + t.trial + " (" + t.name + ")?\n\nIts branch becomes " + taskName +
    "/result; the other trials are archived (their branches kept, `tandem restore` brings them back). Nothing is merged.";
  if (!confirm(question)) return;
  try {
    const done = await api("POST", base + "/promote", { trial: t.trial });
    toast(done.ok ? "Promoted " + done.promoted + ": its branch is now " + done.branch : done.error, !done.ok);
  } catch (e) {
    toast(e.message, true);
  }
  load(true, false);
}

function render(data, ids) {
  shown = data;
  const task = data.task;
  document.title = task.name + " · tandem";
  document.getElementById("task-name").textContent = task.name;
  document.getElementById("task-title").textContent = "Task " + task.name;
  const meta = [task.status];
  if (task.check) meta.push("check: " + task.check);
  if (task.owned.length) meta.push("owns: " + task.owned.join(", "));
  if (task.promoted) meta.push("promoted: " + task.promoted);
  document.getElementById("task-meta").textContent = meta.join(" · ");
  document.getElementById("objective").textContent = task.objective;
  const trials = document.getElementById("trials");
  keepOpen(trials, () => trials.replaceChildren(...data.trials.map((t) => trialCard(task, t, ids))));
  for (const [id, pick] of [["diff-a", 0], ["diff-b", 1]]) {
    const select = document.getElementById(id);
    const was = select.value;
    select.replaceChildren(...data.trials.map((t, i) =>
      el("option", { value: String(t.trial), selected: was ? was === String(t.trial) : i === pick }, "t" + t.trial + " " + t.name)));
  }
}

let checking = false;

// `check`: also run the check where a live trial has no result for its
// state (first load and the button; not on every change an agent makes).
async function load(quiet, check) {
  try {
    const ids = await sessionIds();
    // First without running the check (it may take minutes), then with it.
    const data = await api("GET", base + "?no_check=1");
    showError("");
    render(data, ids);
    const missing = data.task.check && data.trials.some((t) => !t.check && t.state !== "archived");
    const button = document.getElementById("run-check");
    button.hidden = !missing || checking;
    if (missing && check && !checking) {
      checking = true;
      button.hidden = true;
      const status = document.getElementById("check-status");
      status.textContent = "Running `" + data.task.check + "` in the trials without a result…";
      status.hidden = false;
      try {
        render(await api("GET", base), ids);
        status.hidden = true;
      } catch (e) {
        status.textContent = "The check did not run: " + e.message;
      } finally {
        checking = false;
      }
    }
  } catch (e) {
    if (!quiet || !shown) showError(e.message);
  }
}

async function showDiff(event) {
  event.preventDefault();
  const a = document.getElementById("diff-a").value;
  const b = document.getElementById("diff-b").value;
  const files = document.getElementById("diff-files");
  const patch = document.getElementById("diff-patch");
  const summary = document.getElementById("diff-summary");
  try {
    const d = await api("GET", base + "/diff?a=" + encodeURIComponent(a) + "&b=" + encodeURIComponent(b));
    summary.textContent = d.a + " → " + d.b + ": " + d.files.length + " file(s), " + diffstat(d.insertions, d.deletions) +
      (d.truncated ? " (patch cut at 2 MiB)" : "");
    files.replaceChildren(...d.files.map((f) => el("li", { class: "mono" },
      f.path, " ", el("span", { class: "sub" }, f.insertions === null ? "binary" : diffstat(f.insertions, f.deletions)))));
    patch.replaceChildren(...d.patch.split("\n").map((line) => el("span", {
      class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" :
        line.startsWith("@@") ? "hunk" : null,
    }, line + "\n")));
    patch.hidden = !d.patch;
    if (!d.files.length) summary.textContent = d.a + " and " + d.b + " have the same work.";
  } catch (e) {
    toast(e.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("diff-form").addEventListener("submit", showDiff);
  document.getElementById("run-check").addEventListener("click", () => load(true, true));
  load(false, true);
  reloadOnChange(() => load(true, false));
});
