#!/usr/bin/env bash
# Releases every package at one version: scripts/release.sh 0.2.0 [--publish]
#
# 1. checks the tree is clean and CHANGELOG.md has a section for the version;
# 2. sets the version of every workspace, and their dependencies on each other, to it;
# 3. builds, lints, type-checks and tests (npm test);
# 4. packs every package into .packs/ and shows what `npm publish --dry-run` would send;
# 5. with --publish: publishes each package (public; with provenance when run in GitHub Actions,
#    which needs `permissions: id-token: write` and the packages' `repository` field), then tags.
# Without --publish it stops after 4: commit the version change, then run it again with --publish.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:?usage: scripts/release.sh VERSION [--publish]}
publish=${2:-}
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then
  echo "release: $version is not a semantic version" >&2
  exit 2
fi
if ! grep -Eq "^## (Unreleased \()?$version\)?" CHANGELOG.md; then
  echo "release: CHANGELOG.md has no section for $version" >&2
  exit 2
fi
if [[ $publish != --publish && -n $(git status --porcelain) ]]; then
  echo "release: the work tree is not clean" >&2
  exit 2
fi

node --input-type=module - "$version" <<'JS'
import { readFileSync, writeFileSync } from 'node:fs';
const version = process.argv[2];
const root = JSON.parse(readFileSync('package.json', 'utf8'));
const names = root.workspaces.map((dir) => JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')).name);
for (const dir of root.workspaces) {
  const file = `${dir}/package.json`;
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  pkg.version = version;
  for (const name of names) if (pkg.dependencies?.[name]) pkg.dependencies[name] = version;
  writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
}
JS
npm install --package-lock-only --no-audit --no-fund --loglevel=error
npm run lint
npm run typecheck
npm test
npm run pack
for dir in $(node -p "require('./package.json').workspaces.join(' ')"); do
  (cd "$dir" && npm publish --dry-run --loglevel=warn)
done

if [[ $publish == --publish ]]; then
  provenance=()
  if [[ ${GITHUB_ACTIONS:-} == true ]]; then provenance=(--provenance); fi
  for dir in $(node -p "require('./package.json').workspaces.join(' ')"); do
    (cd "$dir" && npm publish --access public "${provenance[@]}")
  done
  git tag "v$version"
  echo "released $version: push the tag (git push origin v$version)"
else
  echo "ready: commit the version change, then scripts/release.sh $version --publish"
fi
