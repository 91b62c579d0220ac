"""Campaign night for locust: voters, dashboard pollers and a TV-night load shape.

    loadtest/run.sh                     # bounded headless run on loopback, CSV + HTML report
    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000   # web UI

Voters come from a large pool of phones and pick nominees with a skewed
(Zipf-like) popularity. A voter casts a few votes a visit, some too fast, so
the service answers ``201``, ``409`` (already voted for this nominee today) and
``429`` (``rate_limited`` or ``daily_limit``): all expected, each counted under
its own name in the statistics, none a failure. Anything else (``5xx``, a
``400``, a timeout) is a failure. Dashboard pollers ``GET /v1/tally`` every
second with ``If-None-Match``, as the dashboard does (``200`` and ``304`` are
counted apart).

:class:`TVNight` drives the user count: a baseline, a 10x spike for a minute
while the campaign is on air, a decay back to the baseline, then the run stops
by itself. Options (also as ``LOCUST_*`` environment variables): see
``--baseline-users`` and the other ``--tv-*`` flags below, or
``locust -f loadtest/locustfile.py --help``.
"""

from __future__ import annotations

import random
from typing import Any

# locust is the `load` extra, not installed where mypy usually runs; where it is,
# its event hooks and LoadTestShape.get_run_time are untyped.
# mypy: disable-error-code="import-not-found"
# mypy: allow-subclassing-any, allow-untyped-decorators, allow-untyped-calls
from locust import LoadTestShape, between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser

NOMINEES = [f"N{n:02d}" for n in range(1, 31)]
# Zipf-like popularity: the k-th favourite is chosen in proportion to 1 / k^s.
ZIPF_S = 1.1
POPULARITY = [1 / (rank**ZIPF_S) for rank in range(1, len(NOMINEES) + 1)]
EXPECTED = {201, 409, 429}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("votesvc campaign night")
    group.add_argument(
        "--baseline-users", type=int, default=20, env_var="LOCUST_BASELINE_USERS",
        help="users before and after the spike (the spike is 10x)",
    )  # fmt: skip
    group.add_argument(
        "--phone-pool", type=int, default=2_000_000, env_var="LOCUST_PHONE_POOL",
        help="distinct phones voters are drawn from",
    )  # fmt: skip
    group.add_argument(
        "--tv-baseline", type=float, default=30, env_var="LOCUST_TV_BASELINE",
        help="seconds of baseline before the spike",
    )  # fmt: skip
    group.add_argument(
        "--tv-spike", type=float, default=60, env_var="LOCUST_TV_SPIKE",
        help="seconds at 10x (the programme on air)",
    )  # fmt: skip
    group.add_argument(
        "--tv-decay", type=float, default=30, env_var="LOCUST_TV_DECAY",
        help="seconds from 10x back down to the baseline",
    )  # fmt: skip
    group.add_argument(
        "--tv-tail", type=float, default=15, env_var="LOCUST_TV_TAIL",
        help="seconds of baseline after the decay; then the run stops",
    )  # fmt: skip


class Voter(FastHttpUser):
    """Someone who saw the programme: a few votes from one phone, then gone."""

    weight = 20
    wait_time = between(0.5, 3)

    def on_start(self) -> None:
        self.new_visit()

    def new_visit(self) -> None:
        pool = self.environment.parsed_options.phone_pool if self.environment.parsed_options else 0
        number = random.randrange(max(pool, 1))
        self.phone = f"1{3 + number % 7}{number // 7 % 10**9:09d}"
        self.votes_left = random.choice((1, 1, 2, 3, 5, 10, 12))
        # A fan votes down the list, one nominee after another, past the daily
        # limit (429 daily_limit); the others pick by popularity (some 409s).
        self.fan = self.votes_left > 10
        self.next_in_list = 0

    @task
    def vote(self) -> None:
        if self.fan:
            nominee = NOMINEES[self.next_in_list % len(NOMINEES)]
            self.next_in_list += 1
        else:
            nominee = random.choices(NOMINEES, POPULARITY)[0]
        self.post(nominee)
        self.votes_left -= 1
        if self.votes_left > 0 and random.random() < 0.1:
            self.post(nominee)  # a double click: 409, or 429 when too fast
        if self.votes_left <= 0:
            self.new_visit()

    def post(self, nominee: str) -> None:
        with self.client.post(
            "/v1/votes",
            json={"nominee": nominee, "phone": self.phone},
            name="/v1/votes",
            catch_response=True,
        ) as response:
            status = response.status_code
            if status in EXPECTED:
                code = _error_code(response) if status != 201 else "accepted"
                response.request_meta["name"] = f"/v1/votes {status} {code}"
                response.success()
            else:
                response.failure(f"unexpected {status}: {(response.text or '')[:200]}")


class DashboardPoller(FastHttpUser):
    """A dashboard open in a browser: the tally every second, revalidated by ETag."""

    weight = 1
    wait_time = constant(1)
    etag: str | None = None

    @task
    def tally(self) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        with self.client.get(
            "/v1/tally", headers=headers, name="/v1/tally", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.etag = response.headers.get("ETag")
                response.request_meta["name"] = "/v1/tally 200"
                response.success()
            elif response.status_code == 304:
                response.request_meta["name"] = "/v1/tally 304"
                response.success()
            else:
                response.failure(f"unexpected {response.status_code}")


def _error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


class TVNight(LoadTestShape):
    """Baseline, a 10x spike for the programme, a decay, a short tail; then stop."""

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        base = getattr(options, "baseline_users", 20)
        baseline = getattr(options, "tv_baseline", 30.0)
        spike = getattr(options, "tv_spike", 60.0)
        decay = getattr(options, "tv_decay", 30.0)
        tail = getattr(options, "tv_tail", 15.0)
        peak = 10 * base
        t = self.get_run_time()
        if t < baseline:
            return base, base
        t -= baseline
        if t < spike:
            return peak, peak / 5  # the programme starts: the crowd arrives within seconds
        t -= spike
        if t < decay:
            users = round(peak - (peak - base) * t / decay)
            return users, peak / 5
        t -= decay
        if t < tail:
            return base, peak / 5
        return None
