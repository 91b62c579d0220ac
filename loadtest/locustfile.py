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

With ``--sms-host`` (the URL of a second service running a campaign verified
by SMS) and ``--sms-codes`` (the local webhook server that receives its codes,
``loadtest/sms_webhook.py``), verified voters ask for a code, read it from the
webhook server, trade it for a token and vote with it.

With ``--record DIR`` each locust process writes what it saw when it quits
(``DIR/locust-<pid>.json``): every accepted vote id per campaign, every vote's
time and every failure; ``loadtest/check.py`` holds the ledger to it.

:class:`TVNight` drives the user count: a baseline, a 10x spike for a minute
while the campaign is on air, a decay back to the baseline, then the run stops
by itself. Options (also as ``LOCUST_*`` environment variables): see
``--baseline-users`` and the other ``--tv-*`` flags below, or
``locust -f loadtest/locustfile.py --help``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
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
OPEN, SMS = "open", "sms"  # the campaigns, as the record names them
CODE_TRIES = 5  # reads of the webhook server before a code counts as lost


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
    group.add_argument(
        "--sms-host", default="", env_var="LOCUST_SMS_HOST",
        help="URL of a service running a campaign verified by SMS (none: no verified voters)",
    )  # fmt: skip
    group.add_argument(
        "--sms-codes", default="", env_var="LOCUST_SMS_CODES",
        help="URL of the webhook server that receives that service's codes (sms_webhook.py)",
    )  # fmt: skip
    group.add_argument(
        "--max-votes", type=int, default=100_000, env_var="LOCUST_MAX_VOTES",
        help="votes one locust process sends at most; then its users idle until the shape ends",
    )  # fmt: skip
    group.add_argument(
        "--record", default="", env_var="LOCUST_RECORD",
        help="directory to write what this process saw into when it quits (check.py reads it)",
    )  # fmt: skip


class Record:
    """What this locust process saw: accepted vote ids per campaign, vote times, failures."""

    def __init__(self) -> None:
        self.accepted: dict[str, list[str]] = {OPEN: [], SMS: []}
        self.vote_ms: list[float] = []
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def request(
        self, name: str, response_time: float, response: Any, context: Any, exception: Any
    ) -> None:
        self.requests[name] += 1
        if exception is not None:
            self.errors[f"{name}: {str(exception)[:200]}"] += 1
        if not name.startswith("/v1/votes"):
            return
        self.vote_ms.append(response_time)
        if exception is None and response is not None and response.status_code == 201:
            campaign = (context or {}).get("campaign", OPEN)
            self.accepted.setdefault(campaign, []).append(str(response.json()["vote_id"]))

    def full(self, environment: Any) -> bool:
        """This process sent its ``--max-votes``: no more."""
        options = environment.parsed_options
        return options is not None and len(self.vote_ms) >= options.max_votes

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"locust-{os.getpid()}.json"
        body = {
            "accepted": self.accepted,
            "vote_ms": self.vote_ms,
            "requests": dict(self.requests),
            "errors": dict(self.errors),
        }
        path.write_text(json.dumps(body))
        return path


RECORD = Record()


@events.request.add_listener
def _on_request(
    name: str,
    response_time: float,
    response: Any = None,
    context: Any = None,
    exception: Any = None,
    **kwargs: Any,
) -> None:
    RECORD.request(name, response_time, response, context, exception)


@events.user_error.add_listener
def _on_user_error(user_instance: Any, exception: Any, tb: Any, **kwargs: Any) -> None:
    RECORD.errors[f"{type(user_instance).__name__}: {exception!r}"[:200]] += 1


@events.quitting.add_listener
def _on_quitting(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if options is not None and options.record and RECORD.requests:
        RECORD.write(Path(options.record))


@events.init.add_listener
def _on_init(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.sms_host:  # no verified campaign to vote in
        environment.user_classes[:] = [
            user for user in environment.user_classes if user is not VerifiedVoter
        ]


def new_phone(user: Any) -> str:
    """A mainland mobile number from the phone pool."""
    options = user.environment.parsed_options
    number = random.randrange(max(options.phone_pool if options else 0, 1))
    return f"1{3 + number % 7}{number // 7 % 10**9:09d}"


# Verified voters' phones: never drawn twice by one process (a phone asking for a second
# code within resend_seconds is refused, 429), in a range of their own per process.
_SMS_PHONES = itertools.count(random.randrange(1000) * 10**6)


def new_sms_phone() -> str:
    return f"19{next(_SMS_PHONES) % 10**9:09d}"


class Voter(FastHttpUser):
    """Someone who saw the programme: a few votes from one phone, then gone."""

    weight = 20
    wait_time = between(0.5, 3)
    campaign = OPEN

    def context(self) -> dict[str, str]:
        return {"campaign": self.campaign}

    def on_start(self) -> None:
        self.new_visit()

    def new_visit(self) -> None:
        self.phone = new_phone(self)
        self.votes_left = random.choice((1, 1, 2, 3, 5, 10, 12))
        # A fan votes down the list, one nominee after another, past the daily
        # limit (429 daily_limit); the others pick by popularity (some 409s).
        self.fan = self.votes_left > 10
        self.next_in_list = 0

    @task
    def vote(self) -> None:
        if RECORD.full(self.environment):
            return
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
        _vote(self, {"nominee": nominee, "phone": self.phone}, "/v1/votes")


class VerifiedVoter(FastHttpUser):
    """A voter of the campaign verified by SMS: a code, a token, then a few votes.

    Runs only with ``--sms-host``. The code is read from the webhook server the
    service sends it to (``--sms-codes``), as the voter would read the SMS.
    """

    weight = 2
    wait_time = between(0.5, 3)
    campaign = SMS

    def context(self) -> dict[str, str]:
        return {"campaign": self.campaign}

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.host = options.sms_host
        self.client.base_url = options.sms_host
        self.codes = options.sms_codes.rstrip("/")
        self.token = ""

    @task
    def visit(self) -> None:
        if RECORD.full(self.environment):
            return
        phone = new_sms_phone()
        with self.client.post(
            "/v1/otp", json={"phone": phone}, name="/v1/otp", catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(_unexpected(response))
                return
        code = self.read_code(phone)
        if code is None:
            return
        with self.client.post(
            "/v1/otp/verify",
            json={"phone": phone, "code": code},
            name="/v1/otp/verify",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(_unexpected(response))
                return
            self.token = str(response.json()["token"])
        for nominee in random.sample(NOMINEES, random.choice((1, 2, 3))):
            _vote(self, {"nominee": nominee}, "/v1/votes [sms]", self.token)

    def read_code(self, phone: str) -> str | None:
        """The code the service sent to ``phone``, from the webhook server (None: lost)."""
        for _ in range(CODE_TRIES):
            try:
                with urllib.request.urlopen(f"{self.codes}/code/{phone}", timeout=5) as reply:
                    return str(reply.read().decode())
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    break
            except OSError:
                break
            time.sleep(0.1)  # not there yet (gevent's sleep under locust: others run meanwhile)
        RECORD.errors[f"no SMS code reached the webhook server for {phone[:3]}********"] += 1
        return None


def _vote(user: Any, body: dict[str, str], name: str, token: str = "") -> None:
    """One vote; an expected refusal (409, 429) is counted under its code, not as a failure."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with user.client.post(
        "/v1/votes", json=body, headers=headers, name=name, catch_response=True
    ) as response:
        status = response.status_code
        if status in EXPECTED:
            code = _error_code(response) if status != 201 else "accepted"
            response.request_meta["name"] = f"{name} {status} {code}"
            response.success()
        else:
            response.failure(_unexpected(response))


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


def _unexpected(response: Any) -> str:
    return f"unexpected {response.status_code}: {(response.text or '')[:200]}"


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
