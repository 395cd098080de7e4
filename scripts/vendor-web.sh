#!/usr/bin/env bash
# Fetches the web dashboard's third-party front-end files again from npm
# (pinned versions) into crates/tandem-web/assets/vendor/, with their
# licenses. The files are committed: building tandem needs neither Node
# nor the network; run this only to update them (then commit).
#
#   bash scripts/vendor-web.sh
set -euo pipefail

XTERM=6.0.0          # @xterm/xterm
XTERM_FIT=0.11.0     # @xterm/addon-fit
HLJS=11.12.0         # @highlightjs/cdn-assets

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/crates/tandem-web/assets/vendor"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
for pkg in "@xterm/xterm@$XTERM" "@xterm/addon-fit@$XTERM_FIT" "@highlightjs/cdn-assets@$HLJS"; do
  npm pack --silent "$pkg" >/dev/null
done
for tgz in *.tgz; do
  mkdir -p "${tgz%.tgz}"
  tar -xzf "$tgz" -C "${tgz%.tgz}"
done
xterm=$(ls -d xterm-xterm-*/package)
fit=$(ls -d xterm-addon-fit-*/package)
hljs=$(ls -d highlightjs-cdn-assets-*/package)

mkdir -p "$out"
rm -f "$out"/*
cp "$xterm/lib/xterm.js" "$out/xterm.js"
cp "$xterm/css/xterm.css" "$out/xterm.css"
cp "$xterm/LICENSE" "$out/xterm.LICENSE"
cp "$fit/lib/addon-fit.js" "$out/xterm-addon-fit.js"
cp "$fit/LICENSE" "$out/xterm-addon-fit.LICENSE"
cp "$hljs/highlight.min.js" "$out/highlight.min.js"
cp "$hljs/styles/github-dark.min.css" "$out/highlight-github-dark.min.css"
cp "$hljs/LICENSE" "$out/highlight.LICENSE"
# Source map references point at files not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/xterm.js" "$out/xterm-addon-fit.js"
cat > "$out/VERSIONS" <<TXT
@xterm/xterm $XTERM
@xterm/addon-fit $XTERM_FIT
@highlightjs/cdn-assets $HLJS
TXT
ls -l "$out"
