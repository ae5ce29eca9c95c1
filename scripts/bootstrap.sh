#!/usr/bin/env bash
# Set up govcrawl on a fresh Debian/Ubuntu machine: a virtualenv in .venv with govcrawl installed.
#   bash scripts/bootstrap.sh          runtime only
#   bash scripts/bootstrap.sh --test   also the test tools, Chromium (JS rendering), Redis and pywb
#                                      (in .venv-pywb: it pins an old redis client)
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

need_apt=()
# runtime: text of Word 97-2003 attachments (.doc, WPS-saved .doc/.wps)
command -v antiword >/dev/null 2>&1 || need_apt+=(antiword)
command -v catdoc >/dev/null 2>&1 || need_apt+=(catdoc)
if [ "$with_test" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "bootstrap: installing ${need_apt[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m venv .venv
if [ "$with_test" = 1 ]; then
  .venv/bin/pip install -q -e '.[test]'
  # pywb (the WACZ replay test) pins redis 2.10 and fakeredis < 1: it gets its own virtualenv
  if [ ! -x .venv-pywb/bin/wayback ]; then
    python3 -m venv .venv-pywb
    .venv-pywb/bin/pip install -q 'pywb>=2.8,<3'
  fi
else
  .venv/bin/pip install -q -e .
fi
echo "bootstrap: ready (.venv/bin/govcrawl)"
