#!/usr/bin/env bash
# Lint the wire contract and, when a previous commit has one, refuse breaking changes to it.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"

BUF_VERSION=1.75.0
BUF_PREFIX="${BUF_PREFIX:-$HOME/.cache/availability-buf}"
BUF="$BUF_PREFIX/node_modules/.bin/buf"

if [[ ! -x "$BUF" ]]; then
  npm install --no-save --prefix "$BUF_PREFIX" "@bufbuild/buf@$BUF_VERSION" >&2
fi

"$BUF" lint

if git rev-parse -q --verify HEAD~1 >/dev/null \
  && git cat-file -e HEAD~1:protos/inventory/v1/availability.proto 2>/dev/null; then
  # subdir=protos makes the old tree one module rooted at protos/, like buf.yaml's module,
  # so file paths match even if HEAD~1 predates buf.yaml.
  "$BUF" breaking --against '.git#ref=HEAD~1,subdir=protos'
else
  echo "buf breaking: no previous contract at HEAD~1 to compare against"
fi
