#!/usr/bin/env bash
# Installs what the browser and metrics tests need, from Debian's packages:
#   chromium  (/usr/bin/chromium) - the dashboard test drives it headless with playwright-core
#   prometheus (/usr/bin/promtool) - the metrics test checks /metrics with Prometheus's own parser
#   etcd-server (/usr/bin/etcd) - the coordinator's store for --ha, started by the tests themselves
# Does nothing when all three are there. Needs root, or sudo.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: chromium, promtool and etcd are installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install-test-deps: ${missing[*]} missing, and installing needs root: run 'sudo scripts/install-test-deps.sh'" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: ${missing[*]} missing and there is no apt-get: install Debian's chromium, prometheus and etcd-server packages (or your system's equivalents at /usr/bin/chromium, promtool and etcd on PATH)" >&2
  exit 1
fi

echo "install-test-deps: installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
# --no-install-recommends: no desktop extras. Neither the prometheus server nor etcd is started as
# a service here (no init system); the tests start the etcd they need.
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ -x /usr/bin/chromium ] && command -v promtool >/dev/null && command -v etcd >/dev/null
echo "install-test-deps: done ($(/usr/bin/chromium --version 2>/dev/null | head -1); $(promtool --version 2>&1 | head -1); $(etcd --version 2>&1 | head -1))"
