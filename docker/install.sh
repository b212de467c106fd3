#!/bin/sh
# Installs picop-proxy or picop-gateway into the current folder from packed tarballs, with only
# the packages the command needs, and links ./command to it. The Dockerfile's install step; the
# tests run it too (test/docker-image.test.ts).
#   docker/install.sh picop-proxy /path/to/.packs
set -eu
command=$1
packs=$2
case "$command" in
  picop-proxy) names="codec routes proxy" ;;
  picop-gateway) names="codec propagator routes net-wrap fetch gateway" ;;
  *) echo "install.sh: the command must be picop-proxy or picop-gateway, got $command" >&2; exit 2 ;;
esac
files=""
for name in $names; do
  file=$(ls "$packs"/picop-"$name"-[0-9]*.tgz 2>/dev/null | head -n 1)
  if [ -z "$file" ]; then
    echo "install.sh: no picop-$name tarball in $packs: run npm run pack first" >&2
    exit 2
  fi
  files="$files $file"
done
# shellcheck disable=SC2086 # one argument per tarball
npm install --omit=dev --no-audit --no-fund --no-package-lock --loglevel=error $files
ln -sf "node_modules/.bin/$command" command
