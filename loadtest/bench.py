"""The vote-path benchmark: one command, one server configuration, every figure.

    make bench                      # or: .venv/bin/python loadtest/bench.py

For each worker count (1 and 2) it starts ``votesvc serve`` once and measures,
against that one server, with wrk (Debian's ``wrk``; Lua scripts in
``loadtest/wrk``):

- the ceiling: ``GET /healthz``, the bare endpoint of the same stack;
- ``POST /v1/votes`` at full load, every vote from a new phone (all ``201``);
- ``GET /v1/tally`` at full load;
- vote latency (p50/p99) at half of the measured vote peak, paced open-loop;
- server CPU-seconds per vote (``/proc/<pid>/stat`` of the server processes).

Then Redis alone runs the project's own ``cast_vote.lua`` under
``redis-benchmark`` (Debian's ``redis-tools``), and a fresh Redis is loaded with
1,000,000 synthetic voters in the real key layout to weigh the state a phone
keeps for its day (stream entries are weighed apart).

Pinning, on a machine with two or more CPUs: the one-worker server runs on the
first CPU, wrk and the flusher on the second; Redis is not pinned (it takes
what the others leave). Two workers may use every CPU. The benchmark has its
own campaign file (an IP limit loopback cannot hit, burst and daily limits that
unique phones never reach), its own data directory (deleted afterwards), its
own embedded Redis, and runs ``votesvc flush`` as its own process when the
command exists (the paced run is repeated with the flusher paused, to show
what its reads cost the vote p99). Results are printed and written to
``BENCHMARKS.md`` (its own section only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from votesvc.campaign import NOMINEE_CODES
from votesvc.keys import PHONE_KEY_CHARS, Keys
from votesvc.phones import hash_phone
from votesvc.redis_server import EmbeddedRedis
from votesvc.scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = ROOT / "loadtest" / "wrk"
VENV_BIN = Path(sys.executable).parent
SECRET = "bench-secret-not-for-production"
CAMPAIGN_ID = "bench"
NOMINEES = 30
BURST_LIMIT = 5  # the bench campaign's phone_burst_limit
SECTION_BEGIN = "<!-- votesvc-bench:begin (written by loadtest/bench.py) -->"
SECTION_END = "<!-- votesvc-bench:end -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- set-up ---------------------------------------------------------------------------


def campaign_toml() -> str:
    lines = [
        "[campaign]",
        f'id = "{CAMPAIGN_ID}"',
        'title = "Benchmark campaign"',
        'timezone = "Asia/Shanghai"',
        'opens_at = "2020-01-01T00:00:00+08:00"',
        'closes_at = "2099-12-31T23:59:59+08:00"',
        "",
        "[rules]",
        "votes_per_phone_per_day = 10",
        "votes_per_nominee_per_phone_per_day = 1",
        f"phone_burst_limit = {BURST_LIMIT}",
        "phone_burst_seconds = 10",
        "ip_limit = 1000000000  # all load comes from 127.0.0.1",
        "ip_limit_seconds = 60",
        "trusted_proxies = []",
    ]
    for index in range(1, NOMINEES + 1):
        lines += [
            "",
            "[[nominees]]",
            f'id = "N{index:02d}"',
            f'name = "Nominee {index}"',
            'trade = "welder"',
            'employer = "Works"',
        ]
    return "\n".join(lines) + "\n"


def need_tools() -> None:
    missing = [tool for tool in ("wrk", "redis-benchmark", "taskset") if not shutil.which(tool)]
    if missing:
        sys.exit(
            f"bench: missing {', '.join(missing)}; "
            "as root run: bash deploy/system-packages.sh bench"
        )


@dataclass
class Pinning:
    server: str  # taskset CPU list for a one-worker server
    server_multi: str  # for several workers
    load: str  # wrk
    text: str

    @classmethod
    def plan(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        every = ",".join(map(str, cpus))
        if len(cpus) < 2:
            return cls(every, every, every, f"not pinned ({len(cpus)} CPU)")
        first, rest = str(cpus[0]), ",".join(map(str, cpus[1:]))
        return cls(
            first,
            every,
            rest,
            f"a 1-worker server on CPU {first}; wrk and the flusher on CPU {rest}; "
            f"2 workers on CPUs {every}; Redis not pinned (it takes the CPU time the others "
            f"leave); redis-benchmark on CPU {first}",
        )


# --- processes ------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {url} did not answer within {timeout}s")
        time.sleep(0.1)


# --- wrk ------------------------------------------------------------------------------


@dataclass
class Run:
    requests: int
    seconds: float
    errors: int  # non-2xx/3xx replies and socket errors
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(
    url: str,
    script: str,
    seconds: float,
    connections: int,
    args: list[str] | None = None,
    cpus: str = "",
) -> Run:
    command = ["taskset", "-c", cpus] if cpus else []
    command += ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", script, url]
    if args:
        command += ["--", *args]
    result = subprocess.run(
        command, cwd=WRK_DIR, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRK ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed: {result.stderr or result.stdout}")
    data = json.loads(line[4:])
    kinds = ("connect", "read", "write", "status", "timeout")
    errors = sum(data[k] for k in kinds)
    if errors:
        found = ", ".join(f"{k} {data[k]}" for k in kinds if data[k])
        print(f"    wrk {script} at {connections} connections: errors: {found}", flush=True)
    return Run(
        data["requests"],
        data["duration_us"] / 1e6,
        errors,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
    )


class Phones:
    """Disjoint ranges of fresh phone numbers, one per wrk run."""

    def __init__(self) -> None:
        self.next = 13_000_000_000

    def take(self) -> str:
        start, self.next = self.next, self.next + 50_000_000
        return str(start)


# --- measurements ---------------------------------------------------------------------


@dataclass
class ServerFigures:
    workers: int
    ping: float = 0.0
    starlette: float = 0.0  # a constant reply through Starlette's router and middleware
    votes: float = 0.0
    tally: float = 0.0
    ping_p99: float = 0.0
    tally_p99: float = 0.0
    paced_rate: float = 0.0
    paced_target: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    p99_paused_flusher: float | None = None  # the same paced load, flusher stopped
    slow_commands: str = ""  # Redis commands over 2 ms during the paced run
    cpu_per_vote: float = 0.0
    server_busy: float = 0.0  # share of one CPU the server used during the vote runs
    other_cpu_per_vote: dict[str, float] = field(default_factory=dict)
    accepted: int = 0
    written: int = 0
    errors: int = 0
    runs: dict[str, list[float]] = field(default_factory=dict)
    probes: dict[str, dict[int, float]] = field(default_factory=dict)  # connections -> req/s
    connections: dict[str, int] = field(default_factory=dict)  # each endpoint's peak


def tally_total(client: redis.Redis, keys: Keys) -> int:
    pipe = client.pipeline()
    for key in keys.tallies():
        pipe.hvals(key)
    return sum(int(v) for values in pipe.execute() for v in values)


def slow_commands(client: redis.Redis) -> str:
    """The Redis commands that took over 2 ms since the last SLOWLOG RESET, by name."""
    found: dict[str, list[float]] = {}
    for entry in client.slowlog_get(128):
        words = entry["command"].split()
        name = words[0].decode() if words else "?"
        if name.upper() == "EVALSHA" and len(words) > 1:
            name = f"EVALSHA {words[1].decode()[:8]}"
        found.setdefault(name, []).append(entry["duration"] / 1000)
    client.config_set("slowlog-log-slower-than", 10000)
    return ", ".join(
        f"{name} x{len(ms)} (max {max(ms):.1f} ms)" for name, ms in sorted(found.items())
    )


def wait_flushed(client: redis.Redis, keys: Keys, timeout: float = 120) -> None:
    """Let the flusher catch up on what piled up while it was stopped (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipe = client.pipeline()
        for key in keys.streams():
            pipe.xlen(key)
        if sum(pipe.execute()) < 5000:
            return
        time.sleep(0.5)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def measure_server(
    workers: int,
    opts: argparse.Namespace,
    env: dict[str, str],
    pinning: Pinning,
    phones: Phones,
    client: redis.Redis,
    helpers: dict[str, int],
) -> ServerFigures:
    cpus = pinning.server if workers == 1 else pinning.server_multi
    command = ["taskset", "-c", cpus, str(VENV_BIN / "votesvc"), "serve"]
    command += ["--port", str(opts.port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{opts.port}"
    figures = ServerFigures(workers)
    keys = Keys(CAMPAIGN_ID, 16)
    try:
        wait_http(base + "/readyz")
        wait_http(base + "/v1/tally")
        levels: list[int] = opts.connections
        d = opts.seconds
        print(f"  {workers} worker(s): warming up", flush=True)
        wrk(base + "/healthz", "report.lua", 2, levels[0], cpus=pinning.load)
        wrk(base + "/v1/votes", "vote.lua", 2, levels[0], [phones.take(), "1"], cpus=pinning.load)

        def peak(name: str, url: str, script: str, extra: bool = False) -> int:
            """The connection count at which the endpoint serves the most, by short probes.

            Full load is each endpoint's own peak: a vote waits on Redis, so it
            takes more requests in flight than a ping to keep the server busy.
            """
            if len(levels) == 1:
                return levels[0]
            rates: dict[int, float] = {}
            for connections in levels:
                args = [phones.take(), "1"] if extra else None
                run = wrk(url, script, opts.probe_seconds, connections, args, cpus=pinning.load)
                figures.errors += run.errors
                if extra:
                    figures.accepted += run.requests - run.errors
                rates[connections] = run.rate
            figures.probes[name] = rates
            return max(rates, key=rates.__getitem__)

        def series(
            name: str, url: str, script: str, extra: bool = False, connections: int = 0
        ) -> list[Run]:
            connections = connections or peak(name, url, script, extra)
            figures.connections[name] = connections
            runs = []
            for _ in range(opts.repeats):
                args = [phones.take(), "1"] if extra else None
                runs.append(wrk(url, script, d, connections, args, cpus=pinning.load))
            figures.runs[name] = [round(r.rate) for r in runs]
            figures.errors += sum(r.errors for r in runs)
            rates = figures.runs[name]
            print(f"    {name:6} req/s {rates} at {connections} connections", flush=True)
            return runs

        ping = median_run(series("ping", base + "/healthz", "report.lua"))
        tally = median_run(series("tally", base + "/v1/tally", "report.lua"))
        starlette = median_run(series("routed", base + "/v1/nominees", "report.lua"))
        figures.starlette = starlette.rate
        written_before = tally_total(client, keys)
        vote_connections = peak("votes", base + "/v1/votes", "vote.lua", extra=True)
        pids = descendants(server.pid)
        cpu_before = cpu_seconds(pids)
        helpers_before = {name: cpu_seconds([pid]) for name, pid in helpers.items()}
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        vote_runs = series(
            "votes", base + "/v1/votes", "vote.lua", extra=True, connections=vote_connections
        )
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pids) - cpu_before
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        votes = median_run(vote_runs)
        accepted = sum(r.requests - r.errors for r in vote_runs)
        figures.accepted += accepted
        figures.cpu_per_vote = cpu / max(accepted, 1)
        figures.server_busy = cpu / elapsed
        for name, pid in helpers.items():
            used = cpu_seconds([pid]) - helpers_before[name]
            figures.other_cpu_per_vote[name] = used / max(accepted, 1)
        wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (
            wrk_before.ru_utime + wrk_before.ru_stime
        )
        figures.other_cpu_per_vote["wrk"] = wrk_cpu / max(accepted, 1)

        target = votes.rate / 2
        client.config_set("slowlog-log-slower-than", 2000)
        client.slowlog_reset()
        paced = wrk(
            base + "/v1/votes",
            "vote_paced.lua",
            opts.paced_seconds,
            opts.paced_connections,
            [phones.take(), "1", str(round(target))],
            cpus=pinning.load,
        )
        figures.errors += paced.errors
        figures.accepted += paced.requests - paced.errors
        figures.slow_commands = slow_commands(client)
        flusher = helpers.get("flusher")
        if flusher:
            # The same load with the flusher stopped, to show what its reads cost the p99.
            os.kill(flusher, signal.SIGSTOP)
            try:
                quiet = wrk(
                    base + "/v1/votes",
                    "vote_paced.lua",
                    opts.paced_seconds,
                    opts.paced_connections,
                    [phones.take(), "1", str(round(target))],
                    cpus=pinning.load,
                )
            finally:
                os.kill(flusher, signal.SIGCONT)
            figures.errors += quiet.errors
            figures.accepted += quiet.requests - quiet.errors
            figures.p99_paused_flusher = quiet.p99_ms
            wait_flushed(client, keys)
        # Replies still in flight when wrk stopped may have been written: allow for them.
        time.sleep(0.5)
        figures.written = tally_total(client, keys) - written_before
        figures.ping, figures.tally, figures.votes = ping.rate, tally.rate, votes.rate
        figures.ping_p99, figures.tally_p99 = ping.p99_ms, tally.p99_ms
        figures.paced_target, figures.paced_rate = target, paced.rate
        figures.p50, figures.p99 = paced.p50_ms, paced.p99_ms
        print(
            f"    paced  {paced.rate:.0f} req/s (target {target:.0f}): "
            f"p50 {paced.p50_ms:.2f} ms, p99 {paced.p99_ms:.2f} ms",
            flush=True,
        )
    finally:
        stop(server)
    return figures


@dataclass
class RedisFigures:
    script_rate: float = 0.0
    batch_rate: float = 0.0
    batch: int = 16
    bytes_per_phone_day: float = 0.0
    bytes_per_phone_day_usage: float = 0.0
    codes_per_phone_day: float = 0.0
    bytes_per_stream_entry: float = 0.0
    voters: int = 0


def redis_benchmark(server: EmbeddedRedis, pinning: Pinning, requests: int, batch: int) -> float:
    """Votes per second through cast_vote.lua, ``batch`` votes per EVALSHA, 16 pipelined."""
    script = load_script("cast_vote")
    client = redis.Redis(unix_socket_path=str(server.socket))
    client.script_load(script.source)
    keys = Keys("redis-bench", 16)  # not the bench campaign: the flusher leaves it alone
    accepted_before = tally_total(client, keys)
    now_ms = int(time.time() * 1000)
    # The layout of votesvc/votes.py on a single Redis: one shard's three keys, one
    # IP's two window keys (all the load comes from one address); the IP limit's
    # arguments, then one packed argument per vote. Every vote is a new phone:
    # redis-benchmark puts a fresh random number in each __rand_int__ of every call.
    script_keys = [keys.day(0, "20260101"), keys.tally(0), keys.stream(0)]
    ip_hash = "e" * 16
    window, elapsed = divmod(now_ms, 60_000)
    ip_keys = [keys.ip_window(ip_hash, window), keys.ip_window(ip_hash, window - 1)]
    args = [str(now_ms), "86400", "10", "1", "5", "10000", str(PHONE_KEY_CHARS), "0"]  # no deadline
    args += ["1000000000000", "60000", str(elapsed), "1", str(batch)]  # one IP, unlimited
    for i in range(batch):
        phone_hash = f"{i:02x}__rand_int__".ljust(64, "f")
        vote_id = f"{now_ms:012x}{'0' * 12}{i:08x}"
        nominee = i % NOMINEES
        args.append(
            f"{phone_hash} {ip_hash} {vote_id} {NOMINEE_CODES[nominee]} 0 N{nominee + 1:02d} 1"
        )
    script_keys += ip_keys
    command = ["taskset", "-c", pinning.server, "redis-benchmark", "-s", str(server.socket)]
    command += ["-n", str(requests // batch), "-c", "50", "-P", "16", "-r", "1000000000"]
    command += ["--csv", "EVALSHA", script.sha, str(len(script_keys)), *script_keys, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    rows = [ln for ln in result.stdout.splitlines() if ln.startswith('"EVALSHA')]
    if not rows:
        raise SystemExit(f"bench: redis-benchmark said: {result.stdout} {result.stderr}")
    calls_per_second = float(rows[-1].split(",")[1].strip('"'))
    # redis-benchmark counts error replies as requests: check that the votes landed.
    accepted = tally_total(client, keys) - accepted_before
    client.close()
    if accepted < 0.99 * (requests // batch) * batch:
        raise SystemExit(f"bench: only {accepted} of {requests} votes were accepted by the script")
    return calls_per_second * batch


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def redis_memory(data_dir: Path, voters: int) -> RedisFigures:
    """Load ``voters`` synthetic phone-days in the real layout into a fresh Redis."""
    figures = RedisFigures(voters=voters)
    server = EmbeddedRedis(data_dir)
    server.start()
    client = redis.Redis(unix_socket_path=str(server.socket))
    try:
        keys = Keys(CAMPAIGN_ID, 16)
        secret = SECRET.encode()
        rng = random.Random(4)
        day = "20260615"
        expire_at = int(time.time()) + 86400
        now_ms = int(time.time() * 1000)
        # Votes per phone-day: most voters cast a few, some use all ten.
        weights = [30, 20, 14, 10, 7, 5, 4, 3, 2, 5]
        counts = rng.choices(range(1, 11), weights, k=voters)
        before = used_memory(client)
        pipe = client.pipeline(transaction=False)
        shards: dict[int, list[str]] = {}
        codes_total = 0
        for n in range(voters):
            phone_hash = hash_phone(secret, f"1{3 + n % 7}{n:09d}")
            votes = counts[n]
            codes_total += votes
            # Its codes, then the times its burst window holds (see cast_vote.lua). The
            # heavy case: all its votes cast within one window, so the record keeps
            # the last BURST_LIMIT of them all day (a voter spread over the day keeps one).
            kept = min(votes, BURST_LIMIT)
            times = ",".join(str(now_ms + n - 2000 * i) for i in range(kept - 1, -1, -1))
            value = "".join(rng.sample(NOMINEE_CODES[:NOMINEES], votes)) + ":" + times
            fields = shards.setdefault(keys.shard_of(phone_hash), [])
            fields += (keys.phone_key(phone_hash), value)
            if len(fields) >= 2000:
                flush_fields(pipe, keys, day, expire_at, shards)
        flush_fields(pipe, keys, day, expire_at, shards)
        pipe.execute()
        after = used_memory(client)
        figures.bytes_per_phone_day = (after - before) / voters
        figures.codes_per_phone_day = codes_total / voters
        usage = sum(
            int(client.memory_usage(keys.day(shard, day), samples=0) or 0)
            for shard in range(keys.shards)
        )
        figures.bytes_per_phone_day_usage = usage / voters

        sample = min(voters, 100_000)
        before = used_memory(client)
        for n in range(sample):
            phone_hash = hash_phone(secret, f"1{3 + n % 7}{n:09d}")
            shard = keys.shard_of(phone_hash)
            entry = {
                "id": f"{now_ms:012x}{'ab12cd34ef56'}{n:08x}",
                "ts": str(now_ms + n // 50),
                "n": f"N{rng.randrange(NOMINEES) + 1:02d}",
                "p": phone_hash,
                "ip": "0123456789abcdef",
            }
            pipe.xadd(keys.stream(shard), entry)  # type: ignore[arg-type]
            if n % 1000 == 999:
                pipe.execute()
        pipe.execute()
        figures.bytes_per_stream_entry = (used_memory(client) - before) / sample
    finally:
        client.close()
        server.stop()
    return figures


def flush_fields(
    pipe: Any, keys: Keys, day: str, expire_at: int, shards: dict[int, list[str]]
) -> None:
    for shard, fields in shards.items():
        if fields:
            pipe.hset(keys.day(shard, day), items=fields)
            pipe.expireat(keys.day(shard, day), expire_at)
            fields.clear()
    if len(pipe) > 64:
        pipe.execute()


# --- report ---------------------------------------------------------------------------


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    version = next((w[2:] for w in redis_version if w.startswith("v=")), "?")
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_text = (wrk_version.stdout or wrk_version.stderr).split(" [")[0].strip()
    return (
        f"{os.cpu_count()} CPUs ({model}){memory}; Linux {platform.release()}; "
        f"Python {platform.python_version()}; Redis {version}; {wrk_text}"
    )


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def report(
    opts: argparse.Namespace,
    servers: list[ServerFigures],
    store: RedisFigures,
    pinning: Pinning,
    flusher: str,
    load: str,
) -> str:
    one = servers[0]
    lines = [
        f"Run on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with "
        f"`{' '.join(['.venv/bin/python loadtest/bench.py', *sys.argv[1:]])}` "
        "(`make bench`).",
        "",
        f"- Machine: {machine()}.",
        f"- Pinning (taskset): {pinning.text}.",
        f"- Load: wrk, 1 thread, {opts.seconds:g} s per run, median of {opts.repeats} runs, "
        "each endpoint at its own peak: the connection count out of "
        f"{', '.join(map(str, opts.connections))} that served it most in a "
        f"{opts.probe_seconds:g} s probe (a vote waits on Redis, so it needs more requests "
        "in flight than a ping to keep the server busy); latency at half of the vote peak with "
        f"`wrk/vote_paced.lua` (open loop, {opts.paced_connections} connections, "
        f"{opts.paced_seconds:g} s). Every vote is from a new phone.",
        "- Server: `votesvc serve --workers N`, embedded Redis "
        f"(AOF, appendfsync {opts.appendfsync}, unix socket), "
        f"its own campaign file (IP limit 10^9/min), logging at WARNING; flusher: {flusher}.",
        f"- Machine load at the start (1-minute load average): {load}.",
        "",
        "| figure | 1 worker | 2 workers | target (1 worker) | met |",
        "|---|---|---|---|---|",
    ]

    def cells(attr: str, fmt: str) -> list[str]:
        values = [format(getattr(s, attr), fmt) for s in servers]
        return values + ["-"] * (2 - len(values))

    ratio_vote = one.votes / one.ping
    ratio_tally = one.tally / one.ping
    rows = [
        ("`GET /healthz` req/s (ceiling: the raw front)", cells("ping", ",.0f"), "", ""),
        (
            "connections at peak: ping / tally / votes",
            [
                " / ".join(str(s.connections.get(n, "-")) for n in ("ping", "tally", "votes"))
                for s in servers
            ],
            "",
            "",
        ),
        (
            "`GET /v1/nominees` req/s (constant body via Starlette's router + middleware)",
            cells("starlette", ",.0f"),
            "",
            "",
        ),
        ("`POST /v1/votes` req/s (all 201)", cells("votes", ",.0f"), "", ""),
        (
            "votes / ping",
            [f"{s.votes / s.ping:.2f}" for s in servers],
            ">= 0.5 (stretch 0.7)",
            verdict(ratio_vote >= 0.5),
        ),
        (
            "votes / Starlette-routed constant (the prototype's kind of ceiling)",
            [f"{s.votes / s.starlette:.2f}" for s in servers],
            "",
            "",
        ),
        ("`GET /v1/tally` req/s", cells("tally", ",.0f"), "", ""),
        (
            "tally / ping",
            [f"{s.tally / s.ping:.2f}" for s in servers],
            ">= 0.9",
            verdict(ratio_tally >= 0.9),
        ),
        ("paced vote load, req/s", cells("paced_rate", ",.0f"), "half of peak", ""),
        ("vote p50 at that load, ms", cells("p50", ".2f"), "", ""),
        ("vote p99 at that load, ms", cells("p99", ".2f"), "<= 10", verdict(one.p99 <= 10)),
        (
            "same, flusher paused (SIGSTOP), ms",
            [
                "-" if s.p99_paused_flusher is None else f"{s.p99_paused_flusher:.2f}"
                for s in servers
            ],
            "",
            "",
        ),
        (
            "server CPU-ms per vote",
            [f"{s.cpu_per_vote * 1000:.3f}" for s in servers],
            "",
            "",
        ),
        (
            "server CPU busy during the vote runs",
            [f"{s.server_busy:.0%}" for s in servers],
            "",
            "",
        ),
        *(
            (
                f"{name} CPU-ms per vote",
                [f"{s.other_cpu_per_vote.get(name, 0) * 1000:.3f}" for s in servers],
                "",
                "",
            )
            for name in one.other_cpu_per_vote
        ),
        (
            "errors (non-2xx, socket)",
            [str(s.errors) for s in servers],
            "0",
            verdict(all(s.errors == 0 for s in servers)),
        ),
        (
            "votes written / 201s seen",
            [f"{s.written:,} / {s.accepted:,}" for s in servers],
            "equal, bar replies cut off at the end",
            "",
        ),
    ]
    for name, values, target, met in rows:
        values = values + ["-"] * (2 - len(values))
        lines.append(f"| {name} | {' | '.join(values)} | {target} | {met} |")
    lines += [
        "",
        "Redis alone (`redis-benchmark -P 16 -c 50`, EVALSHA of `votesvc/lua/cast_vote.lua`, "
        f"a new phone per vote via `__rand_int__`, appendfsync {opts.appendfsync}):",
        "",
        "| figure | value | target | met |",
        "|---|---|---|---|",
        f"| votes/s, one vote per call | {store.script_rate:,.0f} | | |",
        f"| votes/s, {store.batch} votes per call (as the server batches) "
        f"| {store.batch_rate:,.0f} | | |",
        f"| bytes per active phone-day ({store.voters:,} voters, "
        f"{store.codes_per_phone_day:.1f} votes each on average; `used_memory` delta) "
        f"| {store.bytes_per_phone_day:.1f} | <= 150 | "
        f"{verdict(store.bytes_per_phone_day <= 150)} |",
        f"| same, `MEMORY USAGE` of the day hashes | {store.bytes_per_phone_day_usage:.1f} | | |",
        f"| bytes per stream entry (trimmed after the flush) "
        f"| {store.bytes_per_stream_entry:.1f} | apart | |",
        "",
        "Redis commands over 2 ms during the paced run (SLOWLOG): "
        + "; ".join(f"{s.workers} worker(s): {s.slow_commands or 'none'}" for s in servers)
        + ".",
        "",
        "Probes, req/s by connection count: "
        + "; ".join(
            f"{s.workers} worker(s): "
            + ", ".join(
                f"{name} " + " ".join(f"{c}:{rate:,.0f}" for c, rate in rates.items())
                for name, rates in s.probes.items()
            )
            for s in servers
        )
        + ".",
        "",
        "Per-run req/s: "
        + "; ".join(
            f"{s.workers} worker(s): "
            + ", ".join(f"{name} {runs}" for name, runs in s.runs.items())
            for s in servers
        )
        + ".",
    ]
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    block = f"{SECTION_BEGIN}\n{body}\n{SECTION_END}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION_BEGIN in text and SECTION_END in text:
        head, rest = text.split(SECTION_BEGIN, 1)
        tail = rest.split(SECTION_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Vote path (`make bench`)\n\n" + block + "\n"
    path.write_text(text)


# --- main -----------------------------------------------------------------------------


def has_flush_command() -> bool:
    result = subprocess.run(
        [str(VENV_BIN / "votesvc"), "--help"], capture_output=True, text=True, check=False
    )
    return " flush" in result.stdout or "{serve,flush" in result.stdout or ",flush" in result.stdout


def measure(
    opts: argparse.Namespace, pinning: Pinning, work: Path
) -> tuple[list[ServerFigures], RedisFigures, str]:
    """Every figure: the servers, Redis alone, Redis memory; and what the flusher was."""
    campaign = work / "campaign.toml"
    campaign.write_text(campaign_toml())
    server = EmbeddedRedis(work / "data", appendfsync=opts.appendfsync)
    server.start()
    env = {
        **os.environ,
        "VOTESVC_DATA_DIR": str(work / "data"),
        "VOTESVC_CAMPAIGN": str(campaign),
        "VOTESVC_SECRET": SECRET,
        "VOTESVC_REDIS_URL": server.url,
        "VOTESVC_LOG_LEVEL": "WARNING",
        "VOTESVC_FLUSH_IN_SERVE": "false",  # the flusher runs as its own process
    }
    flusher_process = None
    flusher = "none (`votesvc flush` does not exist yet)"
    if has_flush_command():
        flusher_process = subprocess.Popen(
            ["taskset", "-c", pinning.load, str(VENV_BIN / "votesvc"), "flush"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        flusher = "`votesvc flush` in its own process"
    helpers = {"Redis": server.pid() or 0}
    if flusher_process is not None:
        helpers["flusher"] = flusher_process.pid
    client = redis.Redis(unix_socket_path=str(server.socket))
    phones = Phones()
    print(f"bench: pinning: {pinning.text}; flusher: {flusher}", flush=True)
    try:
        servers = [
            measure_server(int(n), opts, env, pinning, phones, client, helpers)
            for n in opts.workers.split(",")
        ]
        if flusher_process is not None and flusher_process.poll() is not None:
            flusher = f"`votesvc flush` (it exited early, status {flusher_process.returncode})"
        print("  Redis alone: redis-benchmark with cast_vote.lua", flush=True)
        store = RedisFigures()
        store.script_rate = redis_benchmark(server, pinning, opts.redis_requests, 1)
        store.batch_rate = redis_benchmark(server, pinning, opts.redis_requests, store.batch)
    finally:
        client.close()
        if flusher_process is not None:
            stop(flusher_process)
        server.stop()
    print(f"  Redis memory: {opts.voters:,} synthetic voters", flush=True)
    memory = redis_memory(work / "memory", opts.voters)
    store.voters = memory.voters
    store.bytes_per_phone_day = memory.bytes_per_phone_day
    store.bytes_per_phone_day_usage = memory.bytes_per_phone_day_usage
    store.codes_per_phone_day = memory.codes_per_phone_day
    store.bytes_per_stream_entry = memory.bytes_per_stream_entry
    return servers, store, flusher


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of connection counts: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("connection counts must be positive")
    return levels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per full-load run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--connections",
        type=_levels,
        default=_levels("50,100,200,400"),
        help="wrk connection counts to probe; each endpoint runs at its peak",
    )
    parser.add_argument("--probe-seconds", type=int, default=3, help="seconds per probe run")
    parser.add_argument("--paced-seconds", type=int, default=15)
    parser.add_argument("--paced-connections", type=int, default=64)
    parser.add_argument("--voters", type=int, default=1_000_000)
    parser.add_argument("--redis-requests", type=int, default=400_000)
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--appendfsync",
        choices=("always", "everysec"),
        default="always",
        help="the embedded Redis's AOF policy (default always, as `votesvc serve`)",
    )
    opts = parser.parse_args()
    need_tools()

    load = f"{os.getloadavg()[0]:.2f}"
    pinning = Pinning.plan()
    work = Path(tempfile.mkdtemp(prefix="votesvc-bench-"))
    try:
        servers, store, flusher = measure(opts, pinning, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    text = report(opts, servers, store, pinning, flusher, load)
    print()
    print(text)
    if not opts.no_write:
        write_section(opts.output, text)
        print(f"\nbench: written to {opts.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
