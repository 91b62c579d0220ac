#!/usr/bin/env bash
# One bounded, headless campaign-night run: starts votesvc on loopback with its
# own campaign file and data directory, runs locust's TV-night shape against it
# (about 2.5 minutes with the defaults), writes locust's CSV files and HTML
# report, stops the service and exits (status 1 if any request failed).
#
#   loadtest/run.sh                 # or: make loadtest
#   LOCUST_BASELINE_USERS=50 LOCUST_TV_SPIKE=120 loadtest/run.sh
#
# Report: loadtest/reports/<time>/report.html and locust_*.csv.
# Settings: LOADTEST_PORT (18100), LOADTEST_WORKERS (1), and the LOCUST_* options
# of loadtest/locustfile.py. It only ever targets 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${LOADTEST_PORT:-18100}
workers=${LOADTEST_WORKERS:-1}
bin=.venv/bin
if [ ! -x "$bin/locust" ]; then
  echo "locust is not installed: $bin/pip install -e '.[load]'" >&2
  exit 2
fi
out=loadtest/reports/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
data=$(mktemp -d "${TMPDIR:-/tmp}/votesvc-loadtest-XXXXXX")

VOTESVC_DATA_DIR=$data VOTESVC_CAMPAIGN=loadtest/campaign.toml VOTESVC_LOG_LEVEL=WARNING \
  "$bin/votesvc" serve --host 127.0.0.1 --port "$port" --workers "$workers" >"$out/server.log" 2>&1 &
server=$!
cleanup() {
  kill -INT "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

url=http://127.0.0.1:$port
"$bin/python" - "$url/readyz" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as reply:
            if reply.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("votesvc did not become ready within 30 s; see the server.log of this run")
    time.sleep(0.2)
PY

# The shape stops the run; timeout is the backstop should anything hang.
status=0
timeout --signal=INT --kill-after=30 900 \
  "$bin/locust" -f loadtest/locustfile.py --headless --host "$url" \
  --csv "$out/locust" --html "$out/report.html" --only-summary \
  --exit-code-on-error 1 "$@" || status=$?
echo "report: $out/report.html (CSV: $out/locust_*.csv)"
exit "$status"
