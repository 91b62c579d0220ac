"""The SMS code flow: code-and-verify pairs per second, and what a pending code weighs.

Pairs: ``POST /v1/otp`` then ``POST /v1/otp/verify`` for a new phone each
time, from a fixed number of clients (one keep-alive connection each), for a
fixed time, against a ``votesvc serve`` whose webhook sender posts each code
to :class:`Gateway`, a minimal HTTP server on loopback in the same event loop
that checks each request's signature and keeps the code for the client. The
clients and the gateway share the CPU wrk has in the vote runs.

Weight: codes sent through votesvc's own :class:`~votesvc.otp.OneTimeCodes`
(the scripts, keys and expiries the service uses, nothing spelt again here)
into a fresh Redis, with an SMS sender that drops them, every phone new and
from one shared address, as the bench's load is; the resend cooldown lasts as
long as the code, so that nothing expires before the weighing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from loadtest.bench.campaign import SECRET, bench_campaign
from loadtest.bench.processes import LOOPBACK, cpu_seconds, descendants
from loadtest.bench.redis_side import SHARDS, connected_clients, used_memory, wait_for_clients
from votesvc.campaign import Campaign
from votesvc.clientip import ClientIP
from votesvc.connection import connect
from votesvc.keys import Keys
from votesvc.otp import OneTimeCodes
from votesvc.phones import PhoneHasher
from votesvc.redis_server import EmbeddedRedis
from votesvc.scripts import register_scripts
from votesvc.settings import Settings
from votesvc.sms import verify_signature

GATEWAY_SECRET = "bench-sms-webhook-secret"  # the server reads it from its environment
SENDERS = 64  # the memory fill's concurrent sends (the client's pool holds 100 connections)
NAMES_AT_ONCE = 200  # keys per weighing call: a long call leaves Redis a query buffer to weigh
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_REFUSED = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
REPLY_TIMEOUT = 10.0  # seconds a pair may take before it counts as an error


# --- pairs per second -----------------------------------------------------------------


@dataclass
class PairFigures:
    clients: int
    pairs: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU-seconds of the server's processes during the timed run
    client_cpu: float = 0.0  # of the client and the gateway (this process)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0

    @property
    def server_busy(self) -> float:
        """The share of one CPU the server used."""
        return self.server_cpu / self.seconds if self.seconds else 0.0

    @property
    def client_busy(self) -> float:
        return self.client_cpu / self.seconds if self.seconds else 0.0


class _Connection:
    """One keep-alive HTTP/1.1 connection, reading a reply's ``Content-Length`` body.

    A bench client on raw streams rather than httpx: httpx spends a few ms of
    CPU per request here, and the client would measure itself, not the server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(LOOPBACK, port))

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        """``head``: the request line and headers up to the Content-Length value."""
        self.writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        reply = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in reply.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(reply[9:12]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _post_head(port: int, path: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()


class Gateway:
    """The organiser's SMS gateway at its smallest: takes signed codes, keeps them by phone.

    HTTP/1.1 with keep-alive and a ``Content-Length`` body, which is all the
    webhook sender sends; anything else ends its connection.
    """

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.codes: dict[str, str] = {}  # phone (11 digits) -> its latest code
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.StreamWriter, asyncio.Task[None] | None] = {}

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, port)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            open_now = list(self._open.items())  # the sender keeps its connections open
            for writer, _ in open_now:
                writer.close()
            # Until each connection's task has seen its end (3.11's wait_closed() does not wait).
            await asyncio.gather(*(task for _, task in open_now if task), return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open[writer] = asyncio.current_task()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip().decode("latin-1")
                body = await reader.readexactly(int(headers.get(b"content-length", "0")))
                timestamp = headers.get(b"x-votesvc-timestamp", "")
                signature = headers.get(b"x-votesvc-signature", "")
                if verify_signature(self.secret, timestamp, body, signature):
                    sms = orjson.loads(body)
                    self.codes[sms["phone"].removeprefix("+86")] = sms["code"]
                    writer.write(_OK)
                else:
                    self.refused += 1
                    writer.write(_REFUSED)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the connection was closed
        finally:
            self._open.pop(writer, None)
            writer.close()


@contextmanager
def pinned(cpus: str) -> Iterator[None]:
    """Run this process on ``cpus`` (a taskset list) for a while."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def code_pairs(
    port: int, gateway_port: int, server_pid: int, first_phone: int, seconds: float, clients: int
) -> PairFigures:
    """Code-and-verify pairs against the server on ``port`` for ``seconds`` (after 1 s)."""
    return asyncio.run(_code_pairs(port, gateway_port, server_pid, first_phone, seconds, clients))


async def _code_pairs(
    port: int, gateway_port: int, server_pid: int, first_phone: int, seconds: float, clients: int
) -> PairFigures:
    figures = PairFigures(clients)
    errors = figures.errors
    gateway = Gateway(GATEWAY_SECRET.encode())
    await gateway.start(gateway_port)
    phones = iter(range(first_phone, first_phone + 50_000_000))
    send_head, verify_head = _post_head(port, "/v1/otp"), _post_head(port, "/v1/otp/verify")

    async def pair(connection: _Connection) -> bool:
        """One phone's code and verify; False (and the error counted) when it failed."""
        phone = str(next(phones))
        status, _ = await connection.post(send_head, b'{"phone":"%s"}' % phone.encode())
        if status != 202:
            errors[f"otp {status}"] += 1
            return False
        code = gateway.codes.pop(phone, None)
        if code is None:
            errors["otp 202, no code at the gateway"] += 1
            return False
        body = b'{"phone":"%s","code":"%s"}' % (phone.encode(), code.encode())
        status, reply = await connection.post(verify_head, body)
        if status != 200 or "token" not in orjson.loads(reply):
            errors[f"verify {status}"] += 1
            return False
        return True

    async def client(deadline: float) -> int:
        done = 0
        connection = await _Connection.open(port)
        try:
            while time.monotonic() < deadline:
                try:
                    async with asyncio.timeout(REPLY_TIMEOUT):
                        done += await pair(connection)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors[type(exc).__name__] += 1
                    connection.close()  # a reply may still be on its way: start afresh
                    connection = await _Connection.open(port)
        finally:
            connection.close()
        return done

    async def run(duration: float) -> int:
        deadline = time.monotonic() + duration
        return sum(await asyncio.gather(*(client(deadline) for _ in range(clients))))

    try:
        await run(1.0)  # warm-up: the server's connections to the gateway open
        pids = descendants(server_pid)
        server_before, client_before = cpu_seconds(pids), time.process_time()
        started = time.monotonic()
        figures.pairs = await run(seconds)
        figures.seconds = time.monotonic() - started
        figures.server_cpu = cpu_seconds(pids) - server_before
        figures.client_cpu = time.process_time() - client_before
    finally:
        await gateway.aclose()
    if gateway.refused:
        errors["gateway: bad signature"] += gateway.refused
    return figures


# --- bytes per pending code -----------------------------------------------------------


@dataclass
class CodeMemory:
    codes: int = 0
    bytes_per_code: float = 0.0  # everything the sends left, used_memory delta
    code_hash_usage: float = 0.0  # MEMORY USAGE of one code hash, on average
    code_hash_delta: float = 0.0  # used_memory freed by deleting the code hashes
    fill_seconds: float = 0.0


class _DroppedSms:
    """An SMS sender that sends nothing (and never fails)."""

    async def send(self, campaign_id: str, phone: str, code: str, ttl_seconds: int) -> None:
        pass

    async def aclose(self) -> None:
        pass


def code_memory(data_dir: Path, codes: int) -> CodeMemory:
    """Send ``codes`` codes to new phones in a fresh Redis and weigh what stays."""
    server = EmbeddedRedis(data_dir)
    server.start()
    try:
        return asyncio.run(_fill_and_weigh(server.socket, codes))
    finally:
        server.stop()


async def _send_codes(socket: Path, campaign: Campaign, phones: range) -> None:
    """Send a code to each phone (``13...``) from 127.0.0.1, as ``POST /v1/otp`` would."""
    secret = SECRET.encode()
    client_ip = ClientIP(campaign.rules.trusted_proxies, secret)
    ip_hash = client_ip.key(LOOPBACK, None)
    prefix_hash = client_ip.prefix_key(LOOPBACK, None)
    phone_hash = PhoneHasher(secret)
    settings = Settings(redis_url=f"unix://{socket}", redis_timeout=60.0)
    client = connect(settings)
    codes = OneTimeCodes(
        client, campaign, Keys(campaign.id, SHARDS), secret, _DroppedSms(), time.time
    )
    numbers = iter(phones)

    async def sender() -> None:
        for n in numbers:  # shared: each number is sent once, by whichever sender is free
            phone = f"13{n:09d}"
            await codes.send(phone, phone_hash(phone), ip_hash, prefix_hash, None)

    try:
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    finally:
        await client.aclose()


async def _fill_and_weigh(socket: Path, count: int) -> CodeMemory:
    campaign = bench_campaign(verified=True)
    rules = campaign.verification
    # The cooldown lasts as long as the code here, so that no key of a pending
    # code expires before the weighing (a key weighs the same whatever its TTL).
    rules = replace(rules, resend_seconds=rules.code_ttl_seconds)
    campaign = replace(campaign, verification=rules)
    keys = Keys(campaign.id, SHARDS)
    figures = CodeMemory(codes=count)
    # Weighed on a connection of its own, with the senders' connections closed:
    # their buffers are not the codes' weight.
    async with aioredis.Redis(unix_socket_path=str(socket), single_connection_client=True) as scale:
        await scale.config_set("appendonly", "no")
        connected = await connected_clients(scale)
        await register_scripts(scale)
        # One code first, so that the shared counters (the IP's, the prefix's,
        # the budget's, the day's stats) are there before the weighing starts.
        await _send_codes(socket, campaign, range(0, 1))
        await wait_for_clients(scale, connected)
        before = await used_memory(scale)
        started = time.monotonic()
        await _send_codes(socket, campaign, range(1, count + 1))
        figures.fill_seconds = time.monotonic() - started
        await wait_for_clients(scale, connected)
        figures.bytes_per_code = (await used_memory(scale) - before) / count
        if figures.fill_seconds >= rules.code_ttl_seconds:
            print(
                f"    the fill took {figures.fill_seconds:.0f} s: the first codes had expired "
                "when it was weighed",
                flush=True,
            )
        phone_hash = PhoneHasher(SECRET.encode())
        names = [
            keys.otp_code(keys.phone_key(phone_hash(f"13{n:09d}"))) for n in range(1, count + 1)
        ]
        usage = 0
        for first in range(0, count, NAMES_AT_ONCE):
            pipe = scale.pipeline(transaction=False)
            for name in names[first : first + NAMES_AT_ONCE]:
                pipe.memory_usage(name, samples=0)
            usage += sum(int(n or 0) for n in await pipe.execute())
        with_codes = await used_memory(scale)
        for first in range(0, count, NAMES_AT_ONCE):
            await scale.delete(*names[first : first + NAMES_AT_ONCE])
        figures.code_hash_usage = usage / count
        figures.code_hash_delta = (with_codes - await used_memory(scale)) / count
    return figures
