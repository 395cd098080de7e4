#!/usr/bin/env bash
# Runs tandem's whole test suite on a fresh machine: installs what the
# tests need, then runs them.
#  - git, tmux, bubblewrap, zsh, fish, openssl, curl, chromium and
#    chromium-driver (Debian packages) when missing (tmux drives the agent
#    view end to end; the completion tests complete in bash, zsh and fish;
#    the dashboard's TLS test makes a certificate with openssl and asks with
#    curl; the web dashboard's tests drive a real headless Chromium through
#    chromedriver);
#  - openssh-server when /usr/sbin/sshd is missing (the remote-host tests
#    run a private sshd in front of a second Unix user);
#  - Claude Code, Codex and Gemini CLI (npm packages) into .tools/<name>,
#    for the end-to-end tests, which talk to stand-ins for their model APIs
#    on 127.0.0.1 and never reach the network.
set -euo pipefail
cd "$(dirname "$0")/.."

# The agent CLIs the end-to-end tests run, pinned: npm package and version.
AGENTS=(
  "claude @anthropic-ai/claude-code 2.1.330"
  "codex @openai/codex 0.169.0"
  "gemini @google/gemini-cli 0.61.0"
)

missing=()
command -v git >/dev/null || missing+=(git)
command -v tmux >/dev/null || missing+=(tmux)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi

for agent in "${AGENTS[@]}"; do
  read -r name package version <<<"$agent"
  bin=.tools/$name/node_modules/.bin/$name
  if ! "$bin" --version 2>/dev/null | grep -q "$version"; then
    mkdir -p ".tools/$name"
    npm install --prefix ".tools/$name" --no-audit --no-fund --loglevel=error "$package@$version"
  fi
  var=TANDEM_TEST_${name^^}
  export "$var=$(pwd)/$bin"
  echo "$name $("$bin" --version)"
done

log=$(mktemp)
# A test that cannot run here returns early and so counts as passed in
# cargo's summary; it writes one line (`test: reason`) to this file
# (tests/common/mod.rs `skipped`), and the closing line counts it as
# skipped instead.
TANDEM_TEST_SKIPS=$(mktemp)
export TANDEM_TEST_SKIPS
# Lines a test adds to the summary (tests/common/mod.rs `note`): the
# fault matrix's size and result.
TANDEM_TEST_NOTES=$(mktemp)
export TANDEM_TEST_NOTES
trap 'rm -f "$log" "$TANDEM_TEST_SKIPS" "$TANDEM_TEST_NOTES"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
if [ -s "$TANDEM_TEST_SKIPS" ]; then
  echo "skipped, and why:"
  sed 's/^/  /' "$TANDEM_TEST_SKIPS"
fi
# When TANDEM_TEST_MAY_SKIP is set (`.ci/run` sets it), it names the only
# tests that may skip, `module::test` a word; any other skip fails the run.
if [ -n "${TANDEM_TEST_MAY_SKIP+set}" ]; then
  while IFS= read -r line; do
    case " $TANDEM_TEST_MAY_SKIP " in
      *" ${line%%: *} "*) ;;
      *) echo "error: ${line%%: *} must run here, but it skipped: ${line#*: }"; status=1 ;;
    esac
  done <"$TANDEM_TEST_SKIPS"
fi
if [ -s "$TANDEM_TEST_NOTES" ]; then
  sort "$TANDEM_TEST_NOTES"
  awk '/^fault matrix:/ { n += $(NF-5); h += $(NF-3); b += $(NF-1) }
       END { if (n) printf "fault matrix in all: %d case(s), %d held, %d broke\n", n, h, b }' "$TANDEM_TEST_NOTES"
fi
# One closing line for the whole run, summed over every test binary.
awk -v skips="$(grep -c . "$TANDEM_TEST_SKIPS" || true)" \
  '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p - skips, f, s + skips }' "$log"
exit "$status"
