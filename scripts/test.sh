#!/usr/bin/env bash
# Runs tandem's whole test suite on a fresh machine: installs what the
# tests need, then runs them.
#  - git (Debian package) when missing;
#  - Claude Code (npm package @anthropic-ai/claude-code) into .tools/claude,
#    for the end-to-end tests, which talk to a stand-in for the Anthropic API
#    on 127.0.0.1 and never reach the network.
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.330

missing=()
command -v git >/dev/null || missing+=(git)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi

claude=.tools/claude/node_modules/.bin/claude
if ! "$claude" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION "; then
  mkdir -p .tools/claude
  npm install --prefix .tools/claude --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
fi
TANDEM_TEST_CLAUDE="$(pwd)/$claude"
export TANDEM_TEST_CLAUDE
"$TANDEM_TEST_CLAUDE" --version

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
