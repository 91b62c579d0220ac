"""Verified voters under load: votes that carry a voter token, against votes that do not.

A second ``votesvc serve`` (on the benchmark's port + 1, its SMS gateway on
port + 2; the same workers, pinning and Redis) runs the verified twin of the
bench campaign (``campaign.py``), with a ``votesvc flush`` of its own. Its votes come from
``wrk/vote_token.lua`` with tokens issued here by votesvc's own
:class:`~votesvc.tokens.VoterTokens` under the bench secret, a fresh file per
run; each token casts its day's votes back to back, so a worker checks it once
and then finds it in its cache, as votes from one voter's page would.

Verified runs alternate with unverified ones (``wrk/vote.lua``, a new phone
per vote) against the benchmark's own server, at the connection count of that
server's vote peak, so a change in the machine's load weighs on both alike;
the ratio is of the two medians. With one worker, the same verified server
then serves the SMS code flow (:mod:`loadtest.bench.otp`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from loadtest.bench.campaign import (
    NOMINEES,
    SECRET,
    VERIFIED_CAMPAIGN_ID,
    bench_campaign,
    campaign_toml,
)
from loadtest.bench.otp import GATEWAY_SECRET, PairFigures, code_pairs, pinned
from loadtest.bench.processes import (
    LOOPBACK,
    VENV_BIN,
    Pinning,
    cpu_seconds,
    descendants,
    stop,
    wait_http,
)
from loadtest.bench.redis_side import SHARDS, tally_total
from loadtest.bench.wrk import Phones, Run, wrk
from votesvc.keys import Keys
from votesvc.phones import PhoneHasher
from votesvc.tokens import VoterTokens

TOKEN_MARGIN = 2.0  # tokens per run: this many times what the unverified peak would use


@dataclass
class VerifiedFigures:
    workers: int
    connections: int = 0
    runs: list[float] = field(default_factory=list)  # verified votes/s, per run
    baseline_runs: list[float] = field(default_factory=list)  # unverified, alternated
    cpu_per_vote: float = 0.0  # server CPU-seconds per verified vote
    baseline_cpu_per_vote: float = 0.0
    accepted: int = 0  # 201s seen by the verified runs (warm-up included)
    written: int = 0  # votes the verified campaign's tally gained meanwhile
    errors: int = 0  # of both kinds of run
    pairs: PairFigures | None = None  # the SMS code flow (one worker only)

    @property
    def votes(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0

    @property
    def baseline(self) -> float:
        return statistics.median(self.baseline_runs) if self.baseline_runs else 0.0

    @property
    def ratio(self) -> float:
        return self.votes / self.baseline if self.baseline else 0.0


class VerifiedBench:
    """The verified campaign's server, flusher and tokens, for every worker count."""

    def __init__(
        self,
        opts: argparse.Namespace,
        env: dict[str, str],
        pinning: Pinning,
        phones: Phones,
        client: redis.Redis,
        work: Path,
    ) -> None:
        self.opts = opts
        self.pinning = pinning
        self.phones = phones
        self.client = client
        self.work = work
        self.campaign = bench_campaign(verified=True)
        self.keys = Keys(VERIFIED_CAMPAIGN_ID, SHARDS)
        self.per_token = self.campaign.rules.votes_per_phone_per_day
        self.tokens = VoterTokens(
            self.campaign.id,
            SECRET.encode(),
            ttl_seconds=self.campaign.verification.token_ttl_seconds,
            closes_at=self.campaign.closes_at.timestamp(),
            partners={},
        )
        self.hash_phone = PhoneHasher(SECRET.encode())
        self.port = opts.port + 1
        self.gateway_port = opts.port + 2  # bound only while the pairs run
        campaign_file = work / "campaign-verified.toml"
        campaign_file.write_text(campaign_toml(verified=True))
        data = work / "data-verified"  # its own ledger: two flushers, two SQLite files
        data.mkdir(exist_ok=True)
        self.env = {
            **env,
            "VOTESVC_DATA_DIR": str(data),
            "VOTESVC_CAMPAIGN": str(campaign_file),
            "VOTESVC_SMS_SENDER": f"webhook:http://{LOOPBACK}:{self.gateway_port}/sms",
            "VOTESVC_SMS_WEBHOOK_SECRET": GATEWAY_SECRET,
        }
        self.files = 0
        self.flusher: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the verified campaign's flusher (it also sets the campaign up in Redis)."""
        command = ["taskset", "-c", self.pinning.load, str(VENV_BIN / "votesvc"), "flush"]
        self.flusher = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL)

    def close(self) -> None:
        if self.flusher is not None:
            stop(self.flusher)

    def token_file(self, count: int) -> Path:
        """``count`` fresh tokens, one per line, each for a new phone."""
        first = int(self.phones.take())
        tokens = [self.tokens.issue(self.hash_phone(str(first + n)))[0] for n in range(count)]
        self.files += 1
        path = self.work / f"tokens-{self.files}.txt"
        path.write_text("\n".join(tokens) + "\n")
        return path

    def measure(
        self, workers: int, baseline_url: str, baseline_pid: int, connections: int, peak: float
    ) -> VerifiedFigures:
        """Alternate verified and unverified vote runs; with one worker, the SMS code flow too.

        ``connections`` and ``peak``: the unverified server's vote peak (the
        count of tokens each run gets follows from it).
        """
        opts, pinning = self.opts, self.pinning
        cpus = pinning.server if workers == 1 else pinning.server_multi
        port = self.port
        command = ["taskset", "-c", cpus, str(VENV_BIN / "votesvc"), "serve"]
        command += ["--port", str(port), "--workers", str(workers)]
        server = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL)
        base = f"http://{LOOPBACK}:{port}"
        figures = VerifiedFigures(workers, connections)
        tokens_per_run = int(TOKEN_MARGIN * peak * opts.seconds / self.per_token) + connections

        def verified_run(seconds: float) -> tuple[Run, float]:
            tokens = self.token_file(tokens_per_run)
            args = [str(tokens), "1", str(self.per_token), str(NOMINEES)]
            url = base + "/v1/votes"
            run, cpu = self._run(url, "vote_token.lua", seconds, connections, args, server.pid)
            tokens.unlink()
            if run.requests > tokens_per_run * self.per_token:
                print(f"    the run outlasted its {tokens_per_run:,} tokens", flush=True)
            figures.accepted += run.requests - run.errors
            figures.errors += run.errors
            return run, cpu

        try:
            wait_http(base + "/readyz")
            print(f"  {workers} worker(s), verified campaign: warming up", flush=True)
            written_before = tally_total(self.client, self.keys)
            verified_run(2)
            cpu = baseline_cpu = 0.0
            for _ in range(opts.repeats):
                args = [self.phones.take(), "1"]
                url = baseline_url + "/v1/votes"
                unverified, used = self._run(
                    url, "vote.lua", opts.seconds, connections, args, baseline_pid
                )
                figures.errors += unverified.errors
                figures.baseline_runs.append(round(unverified.rate))
                baseline_cpu += used / max(unverified.requests - unverified.errors, 1)
                run, used = verified_run(opts.seconds)
                figures.runs.append(round(run.rate))
                cpu += used / max(run.requests - run.errors, 1)
            figures.cpu_per_vote = cpu / opts.repeats
            figures.baseline_cpu_per_vote = baseline_cpu / opts.repeats
            print(
                f"    verified req/s {figures.runs}, unverified {figures.baseline_runs} "
                f"(alternated, {connections} connections): ratio {figures.ratio:.2f}",
                flush=True,
            )
            if workers == 1:
                with pinned(pinning.load):
                    pairs = code_pairs(
                        port,
                        self.gateway_port,
                        server.pid,
                        int(self.phones.take()),
                        opts.seconds,
                        opts.otp_clients,
                    )
                figures.pairs = pairs
                figures.errors += sum(pairs.errors.values())
                found = ", ".join(f"{kind} x{n}" for kind, n in pairs.errors.items())
                print(
                    f"    code + verify pairs/s {pairs.rate:,.0f} "
                    f"({pairs.clients} clients; server CPU {pairs.server_busy:.0%}, "
                    f"clients and gateway {pairs.client_busy:.0%})"
                    + (f"; errors: {found}" if found else ""),
                    flush=True,
                )
            time.sleep(0.5)  # replies still in flight when wrk stopped may have been written
            figures.written = tally_total(self.client, self.keys) - written_before
        finally:
            stop(server)
        return figures

    def _run(
        self,
        url: str,
        script: str,
        seconds: float,
        connections: int,
        args: list[str],
        server_pid: int,
    ) -> tuple[Run, float]:
        """One wrk run, and the CPU-seconds the server spent in it."""
        pids = descendants(server_pid)
        before = cpu_seconds(pids)
        run = wrk(url, script, seconds, connections, args, cpus=self.pinning.load)
        return run, cpu_seconds(pids) - before
