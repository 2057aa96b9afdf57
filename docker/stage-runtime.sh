#!/bin/sh
# Copies what the runtime image needs out of a built repository into $1: every workspace's package.json and
# dist/ (npm ci links workspaces, so each must exist), the CLI's bin/, the console's static files, the lockfile and the proto files
# (the scheduler serves them through gRPC reflection). Sources, tests and dev tools stay behind.
set -eu
out=$1
mkdir -p "$out"
cp package.json package-lock.json "$out/"
cp -r proto "$out/proto"
for dir in packages/* agents scheduler test; do
  [ -f "$dir/package.json" ] || continue
  mkdir -p "$out/$dir"
  cp "$dir/package.json" "$out/$dir/"
  if [ -d "$dir/dist" ]; then cp -r "$dir/dist" "$out/$dir/dist"; fi
done
cp -r packages/cli/bin "$out/packages/cli/bin"
# The web console's static shell (plain files, no build step).
cp -r scheduler/console "$out/scheduler/console"
# Build caches are not code.
find "$out" -name '.tsbuildinfo' -delete
