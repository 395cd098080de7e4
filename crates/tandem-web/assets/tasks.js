// Every repository's tasks (`tandem task list`), each linking to its
// trials side by side.
"use strict";

function counts(states) {
  const seen = new Map();
  for (const s of states) seen.set(s, (seen.get(s) || 0) + 1);
  return [...seen].map(([s, n]) => n + " " + s).join(", ");
}

async function load() {
  let data;
  try {
    data = await api("GET", "/api/tasks" + (param("repo") ? "?repo=" + encodeURIComponent(param("repo")) : ""));
  } catch (e) {
    showError(e.message);
    return;
  }
  showError("");
  const now = Date.now() / 1000;
  const box = document.getElementById("tasks");
  box.replaceChildren();
  let total = 0;
  for (const repo of data.repos) {
    if (!repo.tasks.length) continue;
    total += repo.tasks.length;
    const rows = repo.tasks.slice().reverse().map((t) => el("tr", { "data-task": t.name },
      el("td", {}, el("a", { class: "name", href: "/tasks/" + repo.id + "/" + encodeURIComponent(t.name) }, t.name)),
      el("td", { class: "status" }, t.status),
      el("td", { class: "states" }, counts(t.states)),
      el("td", { class: "promoted" }, t.promoted || ""),
      el("td", { class: "sub" }, ago(now - t.created_at)),
      el("td", { class: "message" }, t.objective)));
    box.append(el("section", { class: "repo", "data-repo": repo.root },
      el("h2", {}, repo.name, " ", el("span", { class: "count" }, repo.root)),
      el("table", {},
        el("thead", {}, el("tr", {}, ["Task", "Status", "Trials", "Promoted", "Age", "Objective"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows))));
  }
  document.getElementById("empty").hidden = total > 0;
}

document.addEventListener("DOMContentLoaded", () => {
  load();
  reloadOnChange(load);
});
