"""The ``votesvc`` command line: ``votesvc serve``, ``python -m votesvc serve``.

Settings come from ``VOTESVC_*`` variables (see README); flags only choose
what a single run does. Configuration problems end the run with one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry

from votesvc import __version__
from votesvc.admin.cli import add_admin_commands
from votesvc.campaign import load_campaign
from votesvc.errors import ConfigError
from votesvc.ledger.cli import add_ledger_commands
from votesvc.ledger.clitools import check_ledger
from votesvc.ledger.setup import check_stored_meta, set_up_before_serving
from votesvc.logs import configure_logging, logging_config
from votesvc.media import prepare_photos
from votesvc.metrics import (
    WorkerCollector,
    enable_multiprocess,
    remove_multiprocess_dir,
    serve_metrics,
)
from votesvc.redis_server import EmbeddedRedis
from votesvc.redismemory import check_at_start
from votesvc.settings import Settings, database_from_env
from votesvc.verification import check_verification, warn_if_unverified

__all__ = ["main"]

Command = Callable[[argparse.Namespace, Settings], int]


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    campaign = load_campaign(settings.campaign_path)  # a bad file stops us here
    prepare_photos(campaign, settings.data_dir)  # and so does a bad photo (made once, here)
    check_verification(campaign, settings)  # and so does "sms" with no sender
    if settings.flush_in_serve:  # and so does a start the ledger's campaign refuses
        asyncio.run(check_stored_meta(settings, campaign))
    embedded = None
    supervisor_stop = threading.Event()
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir, appendfsync=settings.redis_appendfsync)
        embedded.start()
        threading.Thread(
            target=embedded.supervise, args=(supervisor_stop,), name="redis-supervisor", daemon=True
        ).start()
        # Worker processes build their settings from the environment too.
        os.environ["VOTESVC_REDIS_URL"] = embedded.url
        settings = settings.with_redis_url(embedded.url)
    try:  # a start that disagrees with the campaign stops here, with one line
        check_at_start(settings)  # so does a Redis whose policy may evict votesvc's keys
        asyncio.run(set_up_before_serving(settings, campaign))
    except ConfigError:
        supervisor_stop.set()
        if embedded is not None:
            embedded.stop()
        raise
    warn_if_unverified(campaign)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"votesvc {__version__}: campaign {campaign.id!r} ({len(campaign.nominees)} nominees)\n"
        f"  API        http://{host}:{args.port}/v1/tally\n"
        f"  vote page  http://{host}:{args.port}/\n"
        f"  dashboard  http://{host}:{args.port}/dashboard (a hall's screen: ?display=wall)\n"
        f"  console    http://{host}:{args.port}/admin (accounts: votesvc admin add-user)\n"
        f"  Redis      {'embedded, ' + embedded.url if embedded else 'VOTESVC_REDIS_URL'}",
        flush=True,
    )
    metrics_dir = None
    if settings.metrics_port is not None:  # before any worker or metric exists
        metrics_dir = enable_multiprocess(settings.data_dir)
        registry = CollectorRegistry()
        WorkerCollector(registry, metrics_dir)
        try:
            serve_metrics(registry, settings.metrics_host, settings.metrics_port)
        except ConfigError:
            supervisor_stop.set()
            if embedded is not None:
                embedded.stop()
            remove_multiprocess_dir(metrics_dir)
            raise
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; turn that into an
    # exception so the embedded Redis below is still stopped cleanly.
    signal.signal(signal.SIGTERM, _stop)
    try:
        uvicorn.run(
            "votesvc.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=False,  # X-Forwarded-For is judged by the campaign's trusted_proxies
            server_header=False,
            access_log=args.access_log,
            log_config=logging_config(
                settings.log_level,
                settings.log_format,
                campaign=campaign.id,
                secret=settings.secret,
            ),
            timeout_graceful_shutdown=10,
            lifespan="on",
        )
    except _Stopped:
        pass
    finally:
        supervisor_stop.set()
        if embedded is not None:
            embedded.stop()
        if metrics_dir is not None:
            remove_multiprocess_dir(metrics_dir)
    return 0


class _Stopped(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="votesvc", description="Public voting service (settings: VOTESVC_* variables)."
    )
    parser.add_argument("--version", action="version", version=f"votesvc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("serve", help="serve the HTTP API")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument(
        "--port", type=_bounded(1, 65535), default=8000, help="port to bind (default 8000)"
    )
    run.add_argument(
        "--workers", type=_bounded(1, 512), default=1, help="worker processes (default 1)"
    )
    run.add_argument("--access-log", action="store_true", help="log every request")
    run.set_defaults(func=serve)
    add_ledger_commands(commands)
    add_admin_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "ledger"):  # first, as Settings.from_env may create a secret
            refused = check_ledger(args.ledger, database_from_env())
            if refused is not None:
                return refused
        settings = Settings.from_env()
        configure_logging(settings.log_level, settings.log_format)
        command: Command = args.func
        return command(args, settings)
    except ConfigError as exc:
        print(f"votesvc: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
