"""``GET /openapi.json``: a valid OpenAPI 3.1 document, describing every route
of the app and nothing else, and true of the running app (schemathesis).

Each kind of campaign serves its own variant (votesvc.openapi says why), so the
tests run against an unverified campaign and a verified one ("sms" and
"partner"; the route test also against "partner" alone).
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jwt
import orjson
import pytest
import schemathesis
from altcha.v1 import Challenge, solve_challenge
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from redis import Redis
from schemathesis.python.asgi import get_client, shutdown_lifespans
from starlette.applications import Starlette
from starlette.routing import Route

from tests.localhost import wait_until
from tests.sms_gateway import SmsGateway
from tests.support import (
    SECRET,
    SHANGHAI_NOON,
    FakeClock,
    Service,
    make_campaign,
    running_service,
    set_up_campaign_now,
)
from votesvc.app import create_app
from votesvc.campaign import Campaign
from votesvc.openapi import openapi_document
from votesvc.pages import ASSET_CACHE
from votesvc.phones import normalize_phone
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

PARTNER_KEY = b"p" * 32
WEBHOOK_SECRET = b"webhook-secret-of-the-gateway-0123456789"
VERIFIED: dict[str, Any] = {
    "methods": ["sms", "partner"],
    "partners": ["app12351"],
    "pow_max_number": 2000,  # cheap to solve; the flow is the same
}
PARTNER_ONLY: dict[str, Any] = {"methods": ["partner"], "partners": ["app12351"]}
KINDS = {"unverified": None, "verified": VERIFIED, "partner-only": PARTNER_ONLY}

# The app's routes the document leaves out, and why: pages and files, not the JSON API.
NOT_DOCUMENTED = {
    "/": "the campaign page (HTML)",
    "/dashboard": "the dashboard (HTML)",
    "/results": "the certified result (HTML; the JSON is GET /v1/results)",
    "/embed/vote": "the embed kit's vote card (HTML)",
    "/embed/board": "the embed kit's leaderboard (HTML)",
    "/media/{name}": "the nominees' photos (WebP)",
    "/static": "the pages' stylesheets and scripts",
    "/admin": "the organisers' console (HTML pages and forms, not the API)",
}
HTTP_METHODS = frozenset(("get", "put", "post", "delete", "options", "head", "patch", "trace"))


def campaign_of(kind: str) -> Campaign:
    return make_campaign(campaign_id=f"openapi-{kind}", verification=KINDS[kind])


def settings_of(kind: str) -> dict[str, Any]:
    """What a campaign of ``kind`` needs to start (an SMS sender, a partner's key)."""
    table = KINDS[kind]
    if table is None:
        return {}
    found: dict[str, Any] = {"partner_keys": (("app12351", PARTNER_KEY),)}
    if "sms" in table["methods"]:
        found["sms_sender"] = "log"
    return found


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in the document."""
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def routed(app: Starlette) -> set[tuple[str, str]]:
    """(METHOD, path) of every route of the app but NOT_DOCUMENTED's. ``HEAD``, which
    Starlette answers for every ``GET``, is left out as OpenAPI tools take it as implied."""
    found = set()
    for route in app.routes:
        path = getattr(route, "path", None)
        if path in NOT_DOCUMENTED:
            continue
        assert isinstance(route, Route), f"{route!r}: not a Route, and not in NOT_DOCUMENTED"
        found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


@pytest.mark.usefixtures("redis")  # a flushed Redis
@pytest.mark.parametrize("kind", KINDS)
async def test_the_document_is_valid_openapi_and_describes_every_route(
    kind: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = campaign_of(kind)
    async with running_service(
        redis_server.url, tmp_path, campaign=campaign, **settings_of(kind)
    ) as service:
        response = await service.client.get("/openapi.json")
        again = await service.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == ASSET_CACHE
    assert again.content == response.content
    document = response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert documented(document) == routed(service.app)
    # What the schemathesis tests below fuzz is what the app serves.
    verification = campaign.verification
    assert document == openapi_document(verified=verification.required, sms=verification.sms)


async def test_the_route_check_sees_a_route_or_an_operation_too_many(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    assert documented(document) == routed(service.app)
    service.app.router.routes.append(Route("/v1/extra", service.app.state.api.nominees))
    assert documented(document) ^ routed(service.app) == {("GET", "/v1/extra")}
    service.app.router.routes.pop()
    del document["paths"]["/v1/tally"]
    assert documented(document) ^ routed(service.app) == {("GET", "/v1/tally")}


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+8613800138000",
        "0086 138-0013-8000",
        "+ 86 138 0013 8000 ",
        "-19912345678-",
        "138001380001",
        "12800138000",
        "+85213800138000",
        "86 13800138000",
        "1380013800",
        "\u0661\u0663\u0668\u0660\u0660\u0661\u0663\u0668\u0660\u0660\u0660",
        "",
    ],
)
def test_the_documented_phone_rule_is_the_servers(raw: str) -> None:
    schemas = openapi_document(verified=False, sms=False)["components"]["schemas"]
    pattern = schemas["Vote"]["properties"]["phone"]["pattern"]
    assert (re.search(pattern, raw) is not None) == (normalize_phone(raw) is not None)


# --- schemathesis: the running app, fuzzed against its document ------------------------------

FUZZ_CONFIG: dict[str, Any] = {
    "seed": 17,
    # Every operation: explicit examples, the coverage phase's boundary cases, then up
    # to max-examples generated cases, positive and negative.
    "generation": {"max-examples": 100, "deterministic": True, "database": "none"},
    "request-timeout": 5,
    # Every check is on (schemathesis's default); two take one more status than their
    # default lists (as of schemathesis 4.32): a body over 1 KiB is refused whatever it
    # holds (413 payload_too_large), a limit no JSON Schema can state.
    "checks": {
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
        },
        "negative_data_rejection": {
            "expected-statuses": [
                *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                *("428", "429", "5xx"),
            ]
        },
    },
}


def fuzzing(kind: str) -> schemathesis.BaseSchema:
    """The document of a ``kind`` campaign as schemathesis tests it, but the tally
    stream (a stream never ends). The first test checks that the app serves it."""
    verification = campaign_of(kind).verification
    document = openapi_document(verified=verification.required, sms=verification.sms)
    config = schemathesis.Config.from_dict(FUZZ_CONFIG)
    return schemathesis.openapi.from_dict(document, config=config).exclude(path="/v1/tally/stream")


@contextlib.contextmanager
def fuzzed_app(
    redis_server: EmbeddedRedis, tmp_path: Path, kind: str, *, set_up: bool = True, **more: Any
) -> Iterator[Starlette]:
    """The app of a ``kind`` campaign on a flushed Redis, its lifespan started on
    schemathesis's event loop thread (where the requests run), stopped at the end.
    ``set_up=False``: the campaign is not set up, so votes wait (503)."""
    with contextlib.closing(Redis.from_url(redis_server.url)) as client:
        client.flushall()
    campaign = campaign_of(kind)
    config = Settings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        secret=SECRET,
        flush_in_serve=False,
        redis_timeout=5.0,
        **{**settings_of(kind), **more},
    )
    if set_up:
        set_up_campaign_now(config, campaign)
    app = create_app(config, campaign=campaign, clock=FakeClock())
    try:
        with get_client(cast(Any, app)):  # starts the lifespan
            # The tally's first read may trail the start by a moment: not what is tested.
            wait_until(lambda: app.state.api.board.snapshot is not None, 10.0, "the first tally")
        yield app
    finally:
        shutdown_lifespans()


@contextlib.contextmanager
def verified_app_with(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> Iterator[tuple[Starlette, SmsGateway]]:
    """A verified campaign's app whose codes go to a real HTTP server, as an SMS gateway."""
    with SmsGateway() as gateway:
        sender: dict[str, Any] = {
            "sms_sender": f"webhook:{gateway.url}",
            "sms_webhook_secret": WEBHOOK_SECRET,
        }
        with fuzzed_app(redis_server, tmp_path, "verified", **sender) as app:
            yield app, gateway


@pytest.fixture
def unverified_app(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Starlette]:
    with fuzzed_app(redis_server, tmp_path, "unverified") as app:
        yield app


@pytest.fixture
def verified_app(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Starlette]:
    with verified_app_with(redis_server, tmp_path) as (app, _):
        yield app


def call(case: schemathesis.Case[Any], app: Starlette, **checks: Any) -> schemathesis.Response:
    """Send ``case`` to ``app`` and run every check on the reply. The app is the
    schema's too: some checks send requests of their own (ignored_auth)."""
    case.operation.schema.app = app
    response: schemathesis.Response = case.call_and_validate(app=app, **checks)
    return response


unverified_api = fuzzing("unverified")
verified_api = fuzzing("verified")
# One app per operation, kept across its examples: a vote then counts toward the next
# one's limits as it would in production; the lifespan is too slow to start per example.
FUZZ_SETTINGS = settings(
    deadline=10_000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@unverified_api.parametrize()
@FUZZ_SETTINGS
def test_an_unverified_campaign_answers_as_documented(
    case: schemathesis.Case[Any], unverified_app: Starlette
) -> None:
    call(case, unverified_app)


@verified_api.parametrize()
@FUZZ_SETTINGS
def test_a_verified_campaign_answers_as_documented(
    case: schemathesis.Case[Any], verified_app: Starlette
) -> None:
    checks: dict[str, Any] = {}
    if case.meta is not None and case.meta.generation.mode.is_positive:
        as_a_client_would(case, verified_app)
        if case.operation.path == "/v1/otp/verify":
            checks["excluded_checks"] = [schemathesis.checks.positive_data_acceptance]
            checks["additional_checks"] = [refused_only_for_its_code]
    call(case, verified_app, **checks)


def as_a_client_would(case: schemathesis.Case[Any], app: Starlette) -> None:
    """Give a schema-valid request what only a real client has: a solved proof of work
    for ``POST /v1/otp``; for ``POST /v1/votes`` a token (a partner's, for the phone
    given, so that it is the token's). Schemathesis checks the request as changed."""
    body = case.body
    if not isinstance(body, dict):
        return
    if case.operation.path == "/v1/otp":
        body["pow"] = solved_pow(app)
    elif case.operation.path == "/v1/votes":
        phone = body.get("phone")
        number = normalize_phone(phone) if isinstance(phone, str) else None
        claims = {"phone_number": f"+86{number}"} if number else {}
        case.headers["Authorization"] = f"Bearer {partner_token(**claims)}"


def refused_only_for_its_code(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """``POST /v1/otp/verify`` may refuse a schema-valid request for what no schema can
    know, the code (the SMS has it); for the rest positive_data_acceptance holds."""
    if response.status_code == 400:
        code = orjson.loads(response.content)["error"]["code"]
        assert code in ("code_expired", "invalid_code"), f"a valid request refused: {code}"
        return None
    result: bool | None = schemathesis.checks.positive_data_acceptance(ctx, response, case)
    return result


def solved_pow(app: Starlette) -> str:
    """``GET /v1/pow``, solved as the ALTCHA widget does, as the base64 payload."""
    with get_client(cast(Any, app)) as client:
        challenge = client.get("/v1/pow").json()
    fields = ("algorithm", "challenge", "maxNumber", "salt", "signature")
    solution = solve_challenge(Challenge(*(challenge[name] for name in fields)))
    assert solution is not None
    payload = {name: challenge[name] for name in fields if name != "maxNumber"}
    return base64.b64encode(orjson.dumps({**payload, "number": solution.number})).decode()


def partner_token(**claims: str) -> str:
    now = int(SHANGHAI_NOON)  # the fuzzed app's FakeClock
    payload: dict[str, Any] = {
        "iss": "app12351",
        "aud": campaign_of("verified").id,
        "sub": "fuzz-user",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(payload, PARTNER_KEY, algorithm="HS256")


# --- replies the fuzzer seldom reaches, sent by hand and checked the same way ---------------

# Their 5xx are on purpose: every other check runs.
BY_HAND: dict[str, Any] = {"excluded_checks": [schemathesis.checks.not_a_server_error]}


def test_the_verified_flow_answers_as_documented(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    with verified_app_with(redis_server, tmp_path) as (app, gateway):

        def send(method: str, path: str, **request: Any) -> schemathesis.Response:
            return call(verified_api[path][method].Case(**request), app, **BY_HAND)

        number = "13900000017"
        sent = send("POST", "/v1/otp", body={"phone": number, "pow": solved_pow(app)})
        assert sent.status_code == 202
        code = gateway.last_code(number)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        refused = send("POST", "/v1/otp/verify", body={"phone": number, "code": wrong})
        assert refused.status_code == 400
        assert orjson.loads(refused.content)["error"]["attempts_left"] >= 1
        verified = send("POST", "/v1/otp/verify", body={"phone": number, "code": code})
        assert verified.status_code == 200
        bearer = {"Authorization": f"Bearer {orjson.loads(verified.content)['token']}"}
        vote = {"nominee": "N07"}
        assert send("POST", "/v1/votes", body=vote, headers=bearer).status_code == 201
        assert send("POST", "/v1/votes", body=vote, headers=bearer).status_code == 409
        wrong_phone = {**vote, "phone": "13900000018"}
        assert send("POST", "/v1/votes", body=wrong_phone, headers=bearer).status_code == 400
        assert send("POST", "/v1/votes", body=vote).status_code == 401

        gateway.status = 500
        failed = send("POST", "/v1/otp", body={"phone": "13900000019", "pow": solved_pow(app)})
        assert failed.status_code == 502


def test_a_service_not_ready_answers_as_documented(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    with fuzzed_app(redis_server, tmp_path, "unverified", set_up=False) as app:

        def send(method: str, path: str, **request: Any) -> schemathesis.Response:
            return call(unverified_api[path][method].Case(**request), app, **BY_HAND)

        assert send("GET", "/readyz").status_code == 503
        vote = {"nominee": "N07", "phone": "13900000020"}
        assert send("POST", "/v1/votes", body=vote).status_code == 503
