#!/usr/bin/env bash
# Renders docs/agent-view.png, the picture at the top of the README: the
# agent view of real sessions (real worktrees, branches and agents; the
# agents are shell commands doing real work in a small demo repository),
# captured from a tmux pane with its colours (`capture-pane -e`), turned
# into HTML by `aha` and photographed by headless Chromium.
#
# Needs tmux, aha and chromium (Debian packages of those names) and a
# built tandem: scripts/screenshot.sh [TANDEM_BINARY] (default: `tandem`
# on PATH). Everything runs under a temporary TANDEM_HOME and HOME, ended
# and removed on exit; nothing of the user's is read or changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$(command -v tandem)}")
out=$root/docs/agent-view.png
work=$(mktemp -d)
export TANDEM_HOME=$work/th HOME=$work/home GIT_CONFIG_NOSYSTEM=1 NO_COLOR= TERM=tmux-256color
cleanup() {
  tmux -S "$work/tmux" kill-server 2>/dev/null || true
  # Agents outlive the supervisor by design: stop each one first.
  (cd "$work/shop" 2>/dev/null && "$bin" list --names 2>/dev/null | while read -r name; do
    "$bin" stop "$name" >/dev/null 2>&1 || true
  done)
  "$bin" daemon stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$HOME"
git config --global user.name "Ada Demo"
git config --global user.email ada@example.com
git config --global init.defaultBranch main

repo=$work/shop
mkdir -p "$repo/src"
cd "$repo"
git init -q
printf '# shop\n\nA small web shop.\n' >README.md
printf 'pub fn redirect_after_login(next: &str) -> &str {\n    next\n}\n' >src/login.rs
printf 'pub fn total(prices: &[u32]) -> u32 {\n    prices.iter().sum()\n}\n' >src/cart.rs
printf 'pub fn search(q: &str) -> Vec<String> {\n    vec![q.to_owned()]\n}\n' >src/search.rs
git add -A && git commit -qm "A small web shop"

t() { "$bin" "$@"; }
# Committed work and an uncommitted edit: ahead of its base, with changes.
t new fix-login --bg --base head --agent shell >/dev/null
t send fix-login "sed -i 's/    next/    if next.starts_with('\"'\"'\/'\"'\"') { next } else { \"\/\" }/' src/login.rs && git commit -qam 'Only redirect to local paths' && echo '// TODO: test' >> src/login.rs && clear && echo 'fix committed; writing the test next'" >/dev/null
# The other agents are small programs, so the AGENT column reads well.
mkdir -p "$work/bin"
printf '#!/bin/sh\nfor i in $(seq 1 600); do echo "test cart::total_$i ... ok"; sleep 0.5; done\n' >"$work/bin/cargo-watch"
printf '#!/bin/sh\necho indexing; sed -i s/vec/Vec::from/ src/search.rs; echo done\n' >"$work/bin/indexer"
printf '#!/bin/sh\necho "error: test checkout::pay timed out" >&2; exit 1\n' >"$work/bin/test-checkout"
chmod +x "$work/bin"/*
export PATH=$work/bin:$PATH
# An agent at work: output streaming.
t new cart-totals --bg --base head --agent cargo-watch >/dev/null
# An agent that finished, and one that failed.
t new search-index --bg --base head --agent indexer >/dev/null
t new flaky-test --bg --base head --agent test-checkout >/dev/null
t set fix-login --priority high --pin >/dev/null

cols=132 rows=34
tmux -S "$work/tmux" -f /dev/null new-session -d -x $cols -y $rows -c "$repo" \
  "env PATH='$PATH' TANDEM_HOME='$TANDEM_HOME' HOME='$HOME' TERM=tmux-256color '$bin'"
# Wait for the view to show every session and the running one's output.
for _ in $(seq 1 100); do
  screen=$(tmux -S "$work/tmux" capture-pane -p)
  if grep -q flaky-test <<<"$screen" && grep -q search-index <<<"$screen" && grep -q 'fix committed' <<<"$screen"; then
    break
  fi
  sleep 0.2
done
tmux -S "$work/tmux" capture-pane -e -p >"$work/screen.ans"
{
  printf '<!doctype html><meta charset="utf-8"><style>body{margin:0;background:#1e1e1e}'
  printf 'pre{margin:12px;font:14px/17px "DejaVu Sans Mono",monospace;color:#d4d4d4}</style><pre>'
  aha --no-header --black <"$work/screen.ans"
  printf '</pre>'
} >"$work/screen.html"
width=$((cols * 84 / 10 + 24)) height=$((rows * 17 + 24))
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=$width,$height \
  --screenshot="$out" "file://$work/screen.html" 2>/dev/null
echo "wrote $out"
