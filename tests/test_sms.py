from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from types import TracebackType

import orjson
import pytest

from tests.localhost import free_port
from votesvc.errors import ConfigError
from votesvc.sms import (
    LogSender,
    SmsFailed,
    WebhookSender,
    build_sender,
    mask_phone,
    verify_signature,
)

SECRET = b"w" * 32
PHONE = "13800138000"
CODE = "123456"
NOW = 1_700_000_000


def clock() -> float:
    return NOW + 0.75


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Gateway:
    """An HTTP/1.1 server on 127.0.0.1 that records each request and answers
    ``status`` (with ``headers``), or never answers when ``answer`` is False."""

    def __init__(self, status: int = 200, *, answer: bool = True, headers: str = "") -> None:
        self.status = status
        self.answer = answer
        self.headers = headers
        self.requests: list[Request] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Gateway:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/sms"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        if self._handlers:
            await asyncio.wait_for(asyncio.gather(*self._handlers), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            start, *lines = head.split("\r\n")
            method, target, _ = start.split(" ")
            fields = (line.split(":", 1) for line in lines if line)
            headers = {name.strip().lower(): value.strip() for name, value in fields}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Request(method, target, headers, body))
            if not self.answer:
                await self._release.wait()
                return
            writer.write(
                f"HTTP/1.1 {self.status} Whatever\r\nContent-Length: 0\r\n"
                f"Connection: close\r\n{self.headers}\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_webhook_posts_a_signed_json_body() -> None:
    sender = WebhookSender("http://unused", SECRET, clock=clock)
    async with Gateway(200) as gateway:
        sender.url = gateway.url
        await sender.send("demo-2026", PHONE, CODE, 300)
        await sender.aclose()
    [request] = gateway.requests
    assert (request.method, request.target) == ("POST", "/sms")
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.body) == {
        "campaign": "demo-2026",
        "phone": "+8613800138000",
        "code": CODE,
        "ttl_seconds": 300,
    }
    timestamp = request.headers["x-votesvc-timestamp"]
    signature = request.headers["x-votesvc-signature"]
    assert timestamp == str(NOW)
    mac = hmac.new(SECRET, f"{NOW}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={mac}"
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert not verify_signature(b"x" * 32, timestamp, request.body, signature)
    assert not verify_signature(SECRET, str(NOW + 1), request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body + b" ", signature)
    assert not verify_signature(SECRET, timestamp, request.body, signature.upper())
    assert not verify_signature(SECRET, timestamp, request.body, "sha256=\u00e9")
    assert not verify_signature(SECRET, "\u00e9", request.body, signature)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_is_sent(status: int) -> None:
    async with Gateway(status) as gateway:
        sender = WebhookSender(gateway.url, SECRET)
        await sender.send("demo", PHONE, CODE, 300)
        await sender.send("demo", PHONE, CODE, 300)  # one client, used again
        await sender.aclose()
    assert len(gateway.requests) == 2


@pytest.mark.parametrize(
    ("status", "headers"),
    [(500, ""), (400, ""), (404, ""), (302, "Location: /elsewhere\r\n"), (100, "")],
)
async def test_anything_else_fails(status: int, headers: str) -> None:
    async with Gateway(status, headers=headers) as gateway:
        sender = WebhookSender(gateway.url, SECRET)
        with pytest.raises(SmsFailed) as failed:
            await sender.send("demo", PHONE, CODE, 300)
        await sender.aclose()
    assert len(gateway.requests) == 1  # a redirect is not followed
    if status >= 200:
        assert str(status) in str(failed.value)
    assert PHONE not in str(failed.value)
    assert CODE not in str(failed.value)


async def test_a_gateway_that_never_answers_fails_within_the_timeout() -> None:
    async with Gateway(answer=False) as gateway:
        sender = WebhookSender(gateway.url, SECRET, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(SmsFailed, match=r"no answer within 0\.3 s"):
            await sender.send("demo", PHONE, CODE, 300)
        assert time.monotonic() - started < 2.0
        await sender.aclose()
    assert len(gateway.requests) == 1


async def test_a_refused_connection_fails() -> None:
    sender = WebhookSender(f"http://127.0.0.1:{free_port()}/sms", SECRET)
    with pytest.raises(SmsFailed, match="ConnectError") as failed:
        await sender.send("demo", PHONE, CODE, 300)
    await sender.aclose()
    assert PHONE not in str(failed.value)


async def test_an_unusable_url_fails() -> None:
    sender = WebhookSender("gopher://127.0.0.1/", SECRET)
    with pytest.raises(SmsFailed, match="UnsupportedProtocol"):
        await sender.send("demo", PHONE, CODE, 300)
    await sender.aclose()


async def test_a_sender_works_again_after_aclose() -> None:
    async with Gateway(204) as gateway:
        sender = WebhookSender(gateway.url, SECRET)
        await sender.aclose()  # never used: nothing to close
        await sender.send("demo", PHONE, CODE, 300)
        await sender.aclose()
        await sender.send("demo", PHONE, CODE, 300)
        await sender.aclose()
    assert len(gateway.requests) == 2


def test_a_webhook_sender_is_made_outside_any_event_loop() -> None:
    assert WebhookSender("https://sms.example/send", SECRET).url == "https://sms.example/send"
    with pytest.raises(ValueError, match="secret"):
        WebhookSender("https://sms.example/send", b"")


async def test_log_sender_masks_the_phone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="votesvc.sms"):
        await LogSender().send("demo", PHONE, CODE, 300)
    [record] = caplog.records
    assert record.name == "votesvc.sms"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "SMS to 138****8000: 123456"
    assert PHONE not in caplog.text
    await LogSender().aclose()


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13800138000", "138****8000"), ("19912345678", "199****5678"), ("1234", "****")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_build_sender() -> None:
    assert build_sender(None, None) is None
    assert isinstance(build_sender("log", None), LogSender)
    for url in ("https://sms.example/send?x=1", "http://10.0.0.5:8080/sms"):
        sender = build_sender(f"webhook:{url}", SECRET)
        assert isinstance(sender, WebhookSender)
        assert sender.url == url


@pytest.mark.parametrize("secret", [None, b""])
def test_a_webhook_needs_a_secret(secret: bytes | None) -> None:
    with pytest.raises(ConfigError, match="VOTESVC_SMS_WEBHOOK_SECRET"):
        build_sender("webhook:https://sms.example/send", secret)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "Log",
        "smtp",
        "webhook:",
        "webhook:sms.example/send",
        "webhook:ftp://sms.example/send",
        "webhook:https://",
        "webhook:https://sms.example:port/",
        "webhook: https://sms.example/send",
        "webhook:https://sms.example/send\nX: y",
    ],
)
def test_build_sender_refuses_other_specs(spec: str) -> None:
    with pytest.raises(ConfigError, match="must be log or webhook:<http\\(s\\) URL>") as refused:
        build_sender(spec, SECRET)
    assert "\n" not in str(refused.value)
