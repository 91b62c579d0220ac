#!/usr/bin/env bash
# One bounded, headless campaign-night run, then a check of what it did.
#
# Starts two votesvc services on loopback, each with its own campaign file and
# data directory: the open campaign (loadtest/campaign.toml) and one verified by
# SMS (loadtest/campaign-sms.toml), whose codes go to a local webhook server
# (loadtest/sms_webhook.py) that locust reads them from. Runs locust's TV-night
# shape against both (about 2.5 minutes with the defaults), writes locust's CSV
# files and HTML report, then checks the run (loadtest/check.py): the flush
# waited for, `votesvc reconcile` clean, each ledger holding exactly the 201s
# locust saw, no error beyond the expected 409/429, vote p99 within
# LOADTEST_P99_MS (default 100). Exit status 1 if locust or the check failed.
#
#   loadtest/run.sh                 # or: make loadtest
#   LOCUST_BASELINE_USERS=50 LOCUST_TV_SPIKE=120 loadtest/run.sh
#
# Report: loadtest/reports/<time>/check.txt, report.html and locust_*.csv.
# Settings: LOADTEST_PORT (18100; the SMS service and the webhook take the next
# two ports), LOADTEST_WORKERS (1), LOADTEST_P99_MS (100), and the LOCUST_*
# options of loadtest/locustfile.py. It only ever targets 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${LOADTEST_PORT:-18100}
sms_port=$((port + 1))
hook_port=$((port + 2))
workers=${LOADTEST_WORKERS:-1}
bin=.venv/bin
if [ ! -x "$bin/locust" ]; then
  echo "locust is not installed: $bin/pip install -e '.[load]'" >&2
  exit 2
fi
out=loadtest/reports/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
data=$(mktemp -d "${TMPDIR:-/tmp}/votesvc-loadtest-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$data"
}
trap cleanup EXIT

# The webhook's key, shared by the SMS service and the webhook server (never on a command line).
VOTESVC_SMS_WEBHOOK_SECRET=$("$bin/python" -c 'import secrets; print(secrets.token_hex(32))')
export VOTESVC_SMS_WEBHOOK_SECRET
"$bin/python" -m loadtest.sms_webhook --port "$hook_port" >"$out/sms_webhook.log" 2>&1 &
pids+=($!)

VOTESVC_DATA_DIR=$data/open VOTESVC_CAMPAIGN=loadtest/campaign.toml VOTESVC_LOG_LEVEL=WARNING \
  "$bin/votesvc" serve --host 127.0.0.1 --port "$port" --workers "$workers" >"$out/server.log" 2>&1 &
pids+=($!)
VOTESVC_DATA_DIR=$data/sms VOTESVC_CAMPAIGN=loadtest/campaign-sms.toml VOTESVC_LOG_LEVEL=WARNING \
  VOTESVC_SMS_SENDER=webhook:http://127.0.0.1:$hook_port/sms \
  "$bin/votesvc" serve --host 127.0.0.1 --port "$sms_port" --workers "$workers" \
  >"$out/server-sms.log" 2>&1 &
pids+=($!)

url=http://127.0.0.1:$port
sms_url=http://127.0.0.1:$sms_port
"$bin/python" - "$url/readyz" "$sms_url/readyz" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
for address in sys.argv[1:]:
    while True:
        try:
            with urllib.request.urlopen(address, timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{address}: not ready within 30 s; see the server logs of this run")
        time.sleep(0.2)
PY

# The shape stops the run; timeout is the backstop should anything hang. Users
# that stop (the ramp-down, the end) finish the request in hand (--stop-timeout):
# one cut off after the service accepted it would be a 201 locust never saw.
status=0
timeout --signal=INT --kill-after=30 900 \
  "$bin/locust" -f loadtest/locustfile.py --headless --host "$url" \
  --sms-host "$sms_url" --sms-codes "http://127.0.0.1:$hook_port" --record "$out/record" \
  --csv "$out/locust" --html "$out/report.html" --only-summary --stop-timeout 10 \
  --exit-code-on-error 1 "$@" || status=$?

# What it did: the ledgers against the 201s locust saw, the errors, the vote p99.
checked=0
"$bin/python" -m loadtest.check --record "$out/record" \
  --service "open=$data/open,loadtest/campaign.toml" \
  --service "sms=$data/sms,loadtest/campaign-sms.toml" \
  --report "$out/check.txt" || checked=$?
echo "report: $out/check.txt, $out/report.html (CSV: $out/locust_*.csv)"
if [ "$status" -ne 0 ]; then
  echo "locust exited with status $status" >&2
fi
if [ "$status" -ne 0 ] || [ "$checked" -ne 0 ]; then
  exit 1
fi
