// The dashboard: every session, grouped as the agent view groups them,
// pushed live from /api/events.
"use strict";

const GROUPS = [
  ["needs_input", "Needs input"],
  ["error", "Error"],
  ["running", "Running"],
  ["idle", "Idle"],
  ["done", "Done"],
  ["archived", "Archived"],
];

let latest = null;

function rowOf(repo, s, now) {
  const since = s.last_activity ? ago(now - s.last_activity) : "";
  const counts = [];
  if (s.ahead) counts.push("↑" + s.ahead);
  if (s.behind) counts.push("↓" + s.behind);
  const link = el("a", { href: "/session/" + encodeURIComponent(s.id), class: "name" }, s.name);
  return el("tr", { "data-session": s.name, "data-group": s.group },
    el("td", {}, link, s.title ? el("div", { class: "sub" }, s.title) : null),
    el("td", { class: "agent" }, s.agent),
    el("td", { class: "state state-" + s.group }, s.state_text, el("div", { class: "sub" }, since)),
    el("td", { class: "branch" }, s.branch, counts.length ? el("div", { class: "sub" }, counts.join(" ")) : null),
    el("td", { class: "changes" }, s.changed || ""),
    el("td", { class: "diffstat" }, s.diffstat || ""),
    el("td", { class: "pr" }, s.pr || ""),
    el("td", { class: "conflicts" }, (s.conflicts_with || []).join(", ")),
    el("td", { class: "message" }, s.last_message || ""),
  );
}

function render(snapshot) {
  latest = snapshot;
  const errorBox = document.getElementById("error");
  errorBox.hidden = !snapshot.error;
  errorBox.textContent = snapshot.error || "";
  const needle = document.getElementById("filter").value.trim().toLowerCase();
  const groups = document.getElementById("groups");
  groups.replaceChildren();
  let total = 0;
  for (const [key, title] of GROUPS) {
    const rows = [];
    for (const repo of snapshot.repos) {
      for (const s of repo.sessions) {
        if (s.group !== key) continue;
        const hay = [s.name, s.branch, s.agent, s.state_text, s.title, repo.name].join(" ").toLowerCase();
        if (needle && !hay.includes(needle)) continue;
        rows.push(rowOf(repo, s, snapshot.now));
      }
    }
    total += rows.length;
    if (!rows.length) continue;
    groups.append(el("section", { class: "group", "data-group": key },
      el("h2", {}, title, " ", el("span", { class: "count" }, rows.length)),
      el("table", {},
        el("thead", {}, el("tr", {}, ["Name", "Agent", "State", "Branch", "Changes", "Diff", "PR", "Conflicts", "Last message"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows))));
  }
  document.getElementById("empty").hidden = total > 0 || !!snapshot.error;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("filter").addEventListener("input", () => latest && render(latest));
  follow(render, (up) => document.getElementById("conn").classList.toggle("down", !up));
});
