"""The benchmark's section of ``BENCHMARKS.md``: the conditions, the figures, the targets.

Only the block between the two markers is rewritten, so the notes around it
(what each run changed, why a target is out of reach) stay as written.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from loadtest.bench.campaign import VOTES_PER_PHONE
from loadtest.bench.metrics_cost import PAIRS, PUSH_LAG_SECONDS, WARM_UP_SECONDS, MetricsCost
from loadtest.bench.otp import CodeMemory
from loadtest.bench.processes import Pinning
from loadtest.bench.redis_side import RedisFigures
from loadtest.bench.server import ServerFigures

COMMAND = ".venv/bin/python -m loadtest.bench"
SECTION_BEGIN = "<!-- votesvc-bench:begin (written by loadtest/bench) -->"
SECTION_END = "<!-- votesvc-bench:end -->"


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
    cost: MetricsCost | None,
    store: RedisFigures,
    codes: CodeMemory | None,
    pinning: Pinning,
    flusher: str,
    load: str,
) -> str:
    one = servers[0]
    lines = [
        f"Run on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with "
        f"`{' '.join([COMMAND, *sys.argv[1:]])}` "
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
        f"{opts.paced_runs} runs of {opts.paced_seconds:g} s: the run of median p99, every "
        "run's p99 beside it). Every vote is from a new phone.",
        "- Server: `votesvc serve --workers N`, embedded Redis "
        f"(AOF, appendfsync {opts.appendfsync}, unix socket), "
        f"its own campaign file (IP limit 10^9/min), logging at WARNING; flusher: {flusher}.",
        *(
            [
                "- Verified voters: a second `votesvc serve` (port + 1, the same workers, "
                "pinning and Redis, its own `votesvc flush`) runs the bench campaign's twin "
                'under another id with `[verification] methods = ["sms"]`, no proof of work, '
                "every verification limit at 10^9 and the phone burst limit at the daily limit; "
                "its votes carry `Authorization: Bearer` tokens issued beforehand with "
                "`VoterTokens` under the bench secret, each token casting its "
                f"{VOTES_PER_PHONE} votes back to back "
                "(`wrk/vote_token.lua`), so a worker checks a token once, then finds it in its "
                f"cache. {opts.repeats} verified runs alternate with {opts.repeats} unverified "
                "ones (a new phone per vote) against the first server, at its vote peak's "
                "connection count; the ratio is of the two medians. SMS code pairs (1 worker): "
                f"{opts.otp_clients} concurrent clients (keep-alive HTTP/1.1 on asyncio streams) "
                f"for {opts.seconds:g} s, each pair a new phone, the server's webhook sender "
                "posting each code to a gateway in the clients' event loop (loopback, signature "
                "checked), on the CPU wrk uses.",
            ]
            if any(s.verified for s in servers)
            else []
        ),
        *(
            [
                f"- Metrics cost (1 worker): {PAIRS} balanced pairs of runs (off, on, on, off, "
                "then on, off, off, on: each side the mean of its two runs, so that a drift, "
                "or a cost of coming second, falls on both sides alike), each run a fresh "
                "`votesvc serve --workers 1` (the same pinning, port, Redis, campaign and "
                "flusher), metrics off (no `VOTESVC_METRICS_PORT`) and on (a free loopback "
                "port per run): a "
                f"{WARM_UP_SECONDS:g} s warm-up, then one {opts.seconds:g} s "
                "paced vote run (`wrk/vote_paced.lua` at half the 1-worker vote peak, "
                f"{cost.connections} connections: a fixed rate keeps the batch sizes alike); "
                "server CPU from `/proc` over that run per "
                "201. A pair's difference is on minus off; the figure is the median of the "
                f"{PAIRS}. It is all that metrics on adds (the count per vote, the push into "
                "the shared counters each second, the gauges sampled from Redis), not the "
                f"count alone. {PUSH_LAG_SECONDS:g} s after each on-run's last vote, one "
                'scrape of its `/metrics` reads `votesvc_votes_total{code="accepted"}`.',
            ]
            if cost is not None
            else []
        ),
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
        (
            "vote p99 at that load, ms (median run)",
            cells("p99", ".2f"),
            "<= 10",
            verdict(one.p99 <= 10),
        ),
        ("same, each run", [_joined(s.p99_runs) for s in servers], "", ""),
        (
            "same, flusher paused (SIGSTOP), ms (median run)",
            [
                "-" if s.p99_paused_flusher is None else f"{s.p99_paused_flusher:.2f}"
                for s in servers
            ],
            "",
            "",
        ),
        ("same, each run", [_joined(s.p99_paused_runs) for s in servers], "", ""),
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
    if one.verified is not None:
        rows += verified_rows(servers)
    if cost is not None:
        rows += metrics_cost_rows(cost)
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
        f"{store.codes_per_phone_day:.1f} votes each on average, each phone's in one burst, "
        "cast through `cast_vote.lua`; `used_memory` delta) "
        f"| {store.bytes_per_phone_day:.1f} | <= 150 | "
        f"{verdict(store.bytes_per_phone_day <= 150)} |",
        f"| same, `MEMORY USAGE` of the day hashes | {store.bytes_per_phone_day_usage:.1f} | | |",
        "| same, every vote with an `Idempotency-Key` (32 characters, as the campaign page "
        f"sends) | {store.bytes_per_phone_day_keyed:.1f} | shown | |",
        "| Redis calls for one batch of 16 votes, without keys / with keys "
        f"| {store.calls_per_batch} / {store.calls_per_batch_keyed} | 1 / 1 | "
        f"{verdict(store.calls_per_batch == store.calls_per_batch_keyed == 1)} |",
        f"| bytes per stream entry (trimmed after the flush) "
        f"| {store.bytes_per_stream_entry:.1f} | apart | |",
        *(
            [
                f"| bytes per pending SMS code ({codes.codes:,} codes sent through "
                "`OneTimeCodes.send()`, each to a new phone, all from one shared IP: the code "
                "hash, the resend cooldown, the phone's sends that day, and its share of the "
                f"IP's, prefix's and budget's counters; `used_memory` delta) "
                f"| {codes.bytes_per_code:.1f} | shown | |",
                "| same, the code hash alone: `MEMORY USAGE` / `used_memory` freed by deleting "
                f"them | {codes.code_hash_usage:.1f} / {codes.code_hash_delta:.1f} | | |",
            ]
            if codes is not None
            else []
        ),
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
            + (
                f", verified votes {s.verified.runs} alternated with votes "
                f"{s.verified.baseline_runs}"
                if s.verified
                else ""
            )
            for s in servers
        )
        + ".",
    ]
    return "\n".join(lines)


Row = tuple[str, list[str], str, str]


def verified_rows(servers: list[ServerFigures]) -> list[Row]:
    """The verified-voter rows of the main table (the servers measured them)."""
    verified = [s.verified for s in servers if s.verified is not None]
    one = verified[0]
    pairs = one.pairs
    rows: list[Row] = [
        (
            "verified `POST /v1/votes` req/s (Bearer token, a token's votes back to back; all 201)",
            [f"{v.votes:,.0f}" for v in verified],
            "",
            "",
        ),
        (
            "unverified `POST /v1/votes` req/s in the same alternation (a new phone per vote)",
            [f"{v.baseline:,.0f}" for v in verified],
            "",
            "",
        ),
        (
            "verified / unverified votes",
            [f"{v.ratio:.2f}" for v in verified],
            ">= 0.9",
            verdict(one.ratio >= 0.9),
        ),
        (
            "server CPU-ms per vote, verified / unverified",
            [
                f"{v.cpu_per_vote * 1000:.3f} / {v.baseline_cpu_per_vote * 1000:.3f}"
                for v in verified
            ],
            "",
            "",
        ),
        (
            "verified votes written / 201s seen",
            [f"{v.written:,} / {v.accepted:,}" for v in verified],
            "equal, bar replies cut off at the end",
            "",
        ),
    ]
    if pairs is not None:
        rows += [
            (
                "`POST /v1/otp` + `POST /v1/otp/verify` pairs/s (webhook to a loopback gateway, "
                f"{pairs.clients} concurrent clients)",
                [f"{pairs.rate:,.0f}", "-"],
                "shown",
                "",
            ),
            (
                "during the pairs: server CPU busy / clients and gateway CPU busy",
                [f"{pairs.server_busy:.0%} / {pairs.client_busy:.0%}"],
                "",
                "",
            ),
            (
                "server CPU-ms per pair",
                [f"{pairs.server_cpu / max(pairs.pairs, 1) * 1000:.3f}"],
                "",
                "",
            ),
        ]
    rows.append(
        (
            "errors in the verified runs and pairs (non-2xx, socket)",
            [str(v.errors) for v in verified],
            "0",
            verdict(all(v.errors == 0 for v in verified)),
        )
    )
    return rows


def metrics_cost_rows(cost: MetricsCost) -> list[Row]:
    """The metrics cost rows of the main table (one worker only)."""

    def per_pair(attr: str, scale: float, fmt: str) -> str:
        """``attr`` of each pair's off and on runs: ``off / on, off / on, ...``."""
        return ", ".join(
            f"{getattr(off, attr) * scale:{fmt}} / {getattr(on, attr) * scale:{fmt}}"
            for off, on in cost.pairs
        )

    ons = [on for _, on in cost.pairs]
    median = cost.median * 1e6
    return [
        (
            "server CPU µs per vote, metrics off / on, per pair (each the mean of 2 runs, "
            "a fresh server each)",
            [per_pair("cpu_per_vote", 1e6, ".1f")],
            "",
            "",
        ),
        (
            "`POST /v1/votes` req/s, metrics off / on, per pair",
            [per_pair("rate", 1, ",.0f")],
            "",
            "",
        ),
        (
            "metrics on minus off, µs of server CPU per vote, per pair",
            [", ".join(f"{d * 1e6:+.1f}" for d in cost.differences)],
            "",
            "",
        ),
        (
            f"metrics cost: median of the {len(cost.pairs)} differences, µs of server CPU per vote",
            [f"{median:+.1f}"],
            "<= 3",
            verdict(median <= 3),
        ),
        (
            '`votesvc_votes_total{code="accepted"}` scraped after each on-run / 201s it saw',
            [
                ", ".join(
                    f"{'no answer' if run.counted is None else format(run.counted, ',')} / "
                    f"{run.seen:,}"
                    for run in ons
                )
            ],
            "every 201, plus at most the replies cut off",
            verdict(cost.scrapes_agree),
        ),
        (
            "errors in the metrics cost runs (non-2xx, socket)",
            [str(cost.errors)],
            "0",
            verdict(cost.errors == 0),
        ),
    ]


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


def _joined(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) or "-"
