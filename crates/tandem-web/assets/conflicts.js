// The conflict matrix of each repository: live sessions × sessions,
// each cell conflict / overlap / clean with the files in its title and
// in the list below; then conflicts with each session's base.
"use strict";

function files(list) {
  const max = 8;
  const shown = list.slice(0, max).join(", ");
  return list.length > max ? shown + " and " + (list.length - max) + " more" : shown;
}

function pairOf(report) {
  const pairs = new Map();
  for (const p of report.pairs) {
    pairs.set(p.a + "\u0000" + p.b, p);
    pairs.set(p.b + "\u0000" + p.a, p);
  }
  return (a, b) => pairs.get(a + "\u0000" + b);
}

function cell(a, b, pair) {
  if (a === b) return el("td", { class: "cell self", "aria-label": "same session" }, "·");
  if (!pair) return el("td", { class: "cell clean", title: a + " and " + b + ": nothing shared" }, "clean");
  if (pair.conflicts) {
    const title = a + " ↔ " + b + " would conflict in " + files(pair.conflicts) +
      (pair.overlap.length ? "; both touch " + files(pair.overlap) : "");
    return el("td", { class: "cell conflict", title, "data-files": pair.conflicts.join("\n") }, "conflict");
  }
  return el("td", { class: "cell overlap", title: a + " ↔ " + b + " both touch " + files(pair.overlap) + "; merges cleanly",
    "data-files": pair.overlap.join("\n") }, "overlap");
}

function section(repo, report, ids) {
  const link = (name) => {
    const id = ids.get(repo.root + "\u0000" + name);
    return id ? el("a", { href: "/session/" + encodeURIComponent(id) }, name) : name;
  };
  const names = report.sessions.map((s) => s.name);
  const pair = pairOf(report);
  const parts = [el("h2", {}, repo.name, " ", el("span", { class: "count" }, repo.root))];
  if (!names.length) {
    parts.push(el("p", { class: "empty" }, "No live sessions."));
    return el("section", { class: "repo", "data-repo": repo.root }, parts);
  }
  const head = el("tr", {}, el("th", {}, ""), names.map((n) => el("th", { scope: "col", class: "col" }, el("span", {}, n))));
  const rows = names.map((a) => el("tr", { "data-session": a },
    el("th", { scope: "row" }, link(a)), names.map((b) => cell(a, b, pair(a, b)))));
  parts.push(el("div", { class: "matrix-box" }, el("table", { class: "matrix" }, el("thead", {}, head), el("tbody", {}, rows))));
  const conflicting = report.pairs.filter((p) => p.conflicts).length;
  parts.push(el("p", { class: "sub" }, names.length + " session(s), " + report.pairs_checked + " pair(s) checked: " +
    conflicting + " would conflict, " + (report.pairs.length - conflicting) + " overlap cleanly"));
  if (report.pairs.length) {
    parts.push(el("ul", { class: "pairs" }, report.pairs.map((p) => el("li", { class: p.conflicts ? "conflict" : "overlap" },
      el("details", {},
        el("summary", {}, p.a + " ↔ " + p.b + ": " + (p.conflicts ? "would conflict in " + p.conflicts.length + " file(s)" : "both touch " + p.overlap.length + " file(s), merges cleanly")),
        p.conflicts ? el("p", {}, "Conflicts: ", el("span", { class: "mono" }, p.conflicts.join(", "))) : null,
        p.overlap.length ? el("p", {}, "Both touch: ", el("span", { class: "mono" }, p.overlap.join(", "))) : null)))));
  }
  const based = report.sessions.filter((s) => s.base_conflicts || s.outside_owned.length);
  if (based.length) {
    parts.push(el("h3", {}, "With their base"));
    parts.push(el("ul", { class: "base-conflicts" }, based.map((s) => el("li", { "data-session": s.name },
      s.base_conflicts ? el("div", { class: "conflict" }, s.name + " → " + s.base + " would conflict in ",
        el("span", { class: "mono" }, files(s.base_conflicts)), el("span", { class: "sub" }, " — `tandem sync " + s.name + "` resolves it early")) : null,
      s.outside_owned.length ? el("div", { class: "warn" }, s.name + " changed files outside its owned paths: ",
        el("span", { class: "mono" }, files(s.outside_owned))) : null))));
  }
  return el("section", { class: "repo", "data-repo": repo.root }, parts);
}

async function load() {
  const box = document.getElementById("repos");
  let list;
  try {
    list = await repos();
  } catch (e) {
    showError(e.message);
    return;
  }
  const ids = await sessionIds();
  document.getElementById("empty").hidden = list.length > 0;
  const sections = await Promise.all(list.map(async (repo) => {
    let node;
    try {
      node = section(repo, await api("GET", "/api/conflicts?repo=" + encodeURIComponent(repo.root)), ids);
    } catch (e) {
      node = el("section", { class: "repo", "data-repo": repo.root }, el("h2", {}, repo.name), el("p", { class: "error" }, e.message));
    }
    return node;
  }));
  showError("");
  keepOpen(box, () => box.replaceChildren(...sections));
}

document.addEventListener("DOMContentLoaded", () => {
  load();
  reloadOnChange(load);
});
