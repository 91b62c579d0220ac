"""The ledger's command-line side: flush, award, export, reconcile, restore, void,
suspects, certify.

Each command parses its arguments, opens what it needs through
:mod:`votesvc.ledger.clitools` (which has already named and checked the ledger),
calls the domain module that does the work and prints the outcome.
``restore``, ``export``, ``void`` and ``certify`` write an audit row (who, when, what).
Exit status: 0 done, 1 a difference or a refusal, 2 a configuration problem
or a bad argument (including an output file that cannot be written). One
function per command and their parsers: the module is as long as the list.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO, cast

from votesvc.campaign import Campaign, load_campaign
from votesvc.days import system_clock
from votesvc.errors import ConfigError
from votesvc.keys import Keys
from votesvc.ledger import suspects
from votesvc.ledger.award import FORMATS, TIE_RULE, Award, award_caveats, rank_award, render
from votesvc.ledger.certify import CertifyRefused, certify, tie_places
from votesvc.ledger.clitools import Tools, audit, run_with_tools, with_redis
from votesvc.ledger.export import Digest, Refs, check_output, export_ledger, export_to
from votesvc.ledger.heartbeat import live_flushers
from votesvc.ledger.reconcile import Reconciliation, pending_votes, reconcile
from votesvc.ledger.restore import RestoreRefused, restore
from votesvc.ledger.runner import run_flusher
from votesvc.ledger.setup import check_stored_meta, settle_campaign
from votesvc.ledger.store import ResultCertified, StoreError, VoteSelection
from votesvc.ledger.times import local_iso
from votesvc.ledger.void import (
    LiveCountersNotUpdated,
    SelectionChanged,
    VoidPreview,
    default_actor,
    preview_void,
    void_votes,
)
from votesvc.phones import hash_phone, normalize_phone
from votesvc.redismemory import check_at_start
from votesvc.settings import Settings

__all__ = ["add_ledger_commands"]


def flush(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc flush [--once]``."""
    check_at_start(settings)  # a Redis whose policy may evict votesvc's keys: exit 2
    campaign = load_campaign(settings.campaign_path)
    asyncio.run(check_stored_meta(settings, campaign))  # before Redis is started: exit 2
    if args.once:

        async def once(tools: Tools) -> int:
            await settle_campaign(tools.store, tools.client, tools.keys, tools.campaign, settings)
            handled = await tools.flusher.catch_up()
            print(f"flushed {handled} pending votes into the {tools.store.name} ledger")
            return 0

        return run_with_tools(settings, once)
    keys = Keys(campaign.id, settings.shards)

    def forever(settings: Settings) -> int:
        asyncio.run(run_flusher(settings, keys, campaign))
        return 0

    return with_redis(settings, forever)


def award(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc award [--top N] [--format table|csv|json] [--provisional]``."""

    async def body(tools: Tools) -> int:
        now = system_clock()
        pending = len(await pending_votes(tools.client, tools.keys, tools.store))
        blockers = award_caveats(tools.campaign, now, pending)
        if blockers and not args.provisional:
            print(
                "votesvc award: refused, the result is not final: "
                + "; ".join(blocker.en for blocker in blockers)
                + ". Pass --provisional for a ranking marked provisional.",
                file=sys.stderr,
            )
            return 1
        # Only votes the vote script accepted inside the window (by Redis's clock).
        totals = await tools.store.totals(tools.campaign.id, window=tools.campaign.window_ms)
        top = args.top or tools.campaign.rules.award_seats
        result = Award(
            campaign=tools.campaign,
            placings=rank_award(tools.campaign, totals, top),
            top=top,
            provisional=bool(blockers),
            caveats=blockers,
            void_votes=await tools.store.count(tools.campaign.id, void=True),
            computed_at=now,
        )
        sys.stdout.write(render(result, args.format))
        return 0

    return run_with_tools(settings, body)


class _TextSink:
    """Bytes for a text stream without a binary buffer (a test's StringIO)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        return self.stream.write(data.decode("utf-8"))

    def flush(self) -> None:
        self.stream.flush()


def _stdout_bytes() -> BinaryIO:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        sys.stdout.flush()
        return cast(BinaryIO, buffer)
    return cast(BinaryIO, _TextSink(sys.stdout))


def export(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc export --out FILE|- [--label TEXT | --internal] [--by WHO]``."""
    out = None if args.out == "-" else Path(args.out)
    if out is not None:
        check_output(out)  # before Redis and the database: a bad path fails at once
    campaign_id = load_campaign(settings.campaign_path).id
    label = None if args.internal else (campaign_id if args.label is None else args.label)
    refs = Refs(settings.secret, label)
    actor = args.by or default_actor()
    # With the CSV on stdout, what the command says goes to stderr.
    said = sys.stdout if out is not None else sys.stderr

    async def body(tools: Tools) -> int:
        pending = len(await pending_votes(tools.client, tools.keys, tools.store))
        if out is None:
            done: Digest = await export_to(tools.store, tools.campaign, _stdout_bytes(), refs)
            where = "-"
        else:
            done = written = await export_ledger(tools.store, tools.campaign, out, refs=refs)
            where = str(written.path.absolute())
        await audit(
            tools,
            actor,
            "export",
            {
                "file": where,
                "rows": done.rows,
                "void": done.void,
                "label": label,
                "internal": label is None,
                "sha256": done.sha256,
            },
        )
        if out is None:
            print(f"{done.rows} votes ({done.void} void) written to stdout", file=said)
            print(f"sha256 {done.sha256}  (of what stdout got: no byte-order mark)", file=said)
        else:
            print(f"{done.rows} votes ({done.void} void) written to {out}", file=said)
            print(f"sha256 {done.sha256}  (in {out.name}.sha256)", file=said)
        if label is None:
            print(
                "phone_ref and prefix_ref are the stored hashes: keep this file inside the "
                "organisation",
                file=said,
            )
        else:
            print(f"phone_ref and prefix_ref are keyed for the label {label!r}", file=said)
        if pending:
            print(f"note: {pending} accepted votes are still pending in Redis", file=sys.stderr)
        return 0

    return run_with_tools(settings, body)


def suspects_cmd(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc suspects [--format table|csv|json]``: exit 0 with or without findings."""

    async def body(tools: Tools) -> int:
        await tools.flusher.catch_up()  # the votes of a moment ago count too
        found = await suspects.find_suspects(tools.store, tools.campaign)
        refs = Refs(settings.secret, tools.campaign.id)  # prefix_ref as the export's
        sys.stdout.write(suspects.render(found, tools.campaign, refs, args.format))
        return 0

    return run_with_tools(settings, body)


def certify_cmd(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc certify --by NAME``: exit 1, saying why, when it may not be done now."""
    actor = args.by.strip()
    if not actor:
        raise ConfigError("--by must name who certifies")

    async def body(tools: Tools) -> int:
        campaign = tools.campaign
        tz = campaign.timezone
        try:
            done = await certify(
                tools.client,
                tools.keys,
                tools.store,
                campaign,
                settings.secret,
                actor=actor,
                clock=system_clock,
                via="command line",
            )
        except CertifyRefused as exc:
            existing = exc.existing
            if existing is not None:
                print(
                    "votesvc certify: refused, the result was certified already, at "
                    f"{local_iso(existing.certified_at, tz)} by {existing.actor} "
                    f"(export sha256 {existing.export_sha256})",
                    file=sys.stderr,
                )
            else:
                print(f"votesvc certify: refused, not now: {exc}", file=sys.stderr)
            return 1
        cert = done.certification
        print(
            f"{campaign.title} ({campaign.id}): result CERTIFIED by {cert.actor} at "
            f"{local_iso(cert.certified_at, tz)}; the top {done.seats} receive the award"
        )
        valid = sum(p.votes for p in done.placings)
        print(
            f"ledger: {cert.votes} votes, {cert.void} of them void; {valid} valid votes "
            "in the voting window"
        )
        print("")
        print(f"{'place':>5}  {'id':<6} {'votes':>8}  name / trade")
        for placing, place in zip(done.placings, tie_places(done.placings), strict=True):
            nominee = placing.nominee
            print(
                f"{place:>5}  {nominee.id:<6} {placing.votes:>8}  {nominee.name} / {nominee.trade}"
            )
            if placing.place == done.seats and done.seats < len(done.placings):
                print(f"{'':->5}  cut line: the places above receive the award {'':->20}")
        print("")
        print(TIE_RULE)
        print("Votes can no longer be voided. Published at /results and GET /v1/results.")
        print(
            f"The export under the label {done.label!r} (`votesvc export --out FILE`) has "
            "this SHA-256:"
        )
        print(f"sha256 {cert.export_sha256}")
        return 0

    return run_with_tools(settings, body)


def _print_reconciliation(result: Reconciliation) -> None:
    live, durable, pending = (
        sum(counts.values()) for counts in (result.live, result.durable, result.pending)
    )
    if result.clean:
        print(f"clean: live {live} = ledger {durable} + pending {pending}")
        return
    print(f"DIFFERENCES: live {live}, ledger {durable}, pending {pending}")
    print(f"{'nominee':<10} {'live':>9} {'ledger':>9} {'pending':>9} {'difference':>11}")
    for nominee, delta in result.differences.items():
        print(
            f"{nominee:<10} {result.live.get(nominee, 0):>9} {result.durable.get(nominee, 0):>9}"
            f" {result.pending.get(nominee, 0):>9} {delta:>+11}"
        )


def reconcile_cmd(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc reconcile``: exit 1 and list them on any difference."""

    async def body(tools: Tools) -> int:
        result = await reconcile(
            tools.client, tools.keys, tools.store, cluster=settings.redis_cluster
        )
        _print_reconciliation(result)
        return 0 if result.clean else 1

    return run_with_tools(settings, body)


def restore_cmd(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc restore [--force] [--by WHO]``."""
    actor = args.by or default_actor()

    async def body(tools: Tools) -> int:
        within = 3 * settings.flush_interval + 2
        others = await live_flushers(
            tools.client, tools.keys, within=within, besides=tools.flusher.consumer
        )
        if others and not args.force:
            running = ", ".join(f"{name} (seen {others[name]:.1f}s ago)" for name in sorted(others))
            print(
                f"votesvc restore: refused, flushers are running: {running}. Stop them first "
                "(serve with VOTESVC_FLUSH_IN_SERVE=false, and any `votesvc flush`), or pass "
                "--force",
                file=sys.stderr,
            )
            return 1
        try:
            # Votes wait (503) from the markers' removal until Redis is rebuilt and marked again.
            done = await restore(
                tools.client,
                tools.keys,
                tools.store,
                tools.campaign,
                settings,
                tools.flusher,
                system_clock,
            )
        except RestoreRefused as exc:
            print(f"votesvc restore: refused, {exc}", file=sys.stderr)
            return 1
        await audit(
            tools,
            actor,
            "restore",
            {
                "valid_votes": done.valid_votes,
                "phones_today": done.phones_today,
                "replayed": done.replayed,
                "flushed_first": done.flushed_first,
                "running_flushers": sorted(others),  # non-empty only with --force
            },
        )
        print(
            f"restored: {done.valid_votes} valid votes from the ledger, {done.phones_today} "
            f"phones' records for today, {done.replayed} pending votes counted on top "
            f"({done.flushed_first} flushed first)"
        )
        result = await reconcile(
            tools.client, tools.keys, tools.store, cluster=settings.redis_cluster
        )
        _print_reconciliation(result)
        return 0 if result.clean else 1

    return run_with_tools(settings, body)


def _moment(text: str | None, campaign: Campaign, flag: str) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=campaign.timezone)
    return int(moment.timestamp() * 1000)


def _phone_number(args: argparse.Namespace) -> tuple[str, str] | None:
    """The number ``--phone -`` (stdin) or ``--phone-file`` gives, and where it came from.

    Never from the command line itself: ps shows it and the shell keeps it.
    """
    if args.phone_file is not None:
        source = f"the first line of {args.phone_file}"
        try:
            with Path(args.phone_file).open(encoding="utf-8") as handle:
                line = handle.readline()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"--phone-file {args.phone_file}: cannot read it ({why})") from exc
    elif args.phone is not None:
        if args.phone != "-":
            raise ConfigError(
                "--phone takes '-' and reads the number from stdin (or use --phone-file PATH): "
                "a number on the command line is seen by ps and kept in the shell's history"
            )
        source = "stdin"
        line = sys.stdin.readline()
    else:
        return None
    if not line.strip():
        raise ConfigError(f"no phone number on {source}")
    return line.strip(), source


def _selection(args: argparse.Namespace, settings: Settings, campaign: Campaign) -> VoteSelection:
    """The votes ``void``'s arguments name (a phone only as its keyed hash)."""
    phone_hash = None
    given = _phone_number(args)
    if given is not None:
        text, source = given
        number = normalize_phone(text)
        if number is None:  # not echoed: a phone number stays out of the terminal's scrollback
            raise ConfigError(f"the number on {source} is not a mainland mobile number")
        phone_hash = hash_phone(settings.secret, number)
    elif (args.since or args.until) and args.nominee is None:
        raise ConfigError("--since and --until go with --phone, --phone-file or --nominee")
    if args.nominee is not None and campaign.nominee(args.nominee) is None:
        raise ConfigError(f"--nominee {args.nominee}: the campaign has no such nominee")
    since = _moment(args.since, campaign, "--since")
    until = _moment(args.until, campaign, "--until")
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since {args.since} must be before --until {args.until}")
    try:
        return VoteSelection(
            vote_ids=tuple(args.vote_id or ()),
            phone_hash=phone_hash,
            nominee=args.nominee,
            since=since,
            until=until,
        )
    except StoreError as exc:
        raise ConfigError(str(exc)) from None


def _print_preview(preview: VoidPreview) -> None:
    print(f"would void {len(preview.votes)} votes (nothing changed: --preview)")
    for nominee, count in preview.by_nominee.items():
        print(f"  {nominee:<8} -{count}")
    if preview.leaving:
        print(
            f"the top {preview.top} would change: {', '.join(preview.leaving)} out, "
            f"{', '.join(preview.entering)} in"
        )
    elif preview.tie_before != preview.tie_after:
        print(f"the tie across the cut line after place {preview.top} would change")
    else:
        print(f"the top {preview.top} and the cut line would stay as they are")


def void(args: argparse.Namespace, settings: Settings) -> int:
    """``votesvc void --vote-id ID... | --phone - | --phone-file PATH | --nominee ID
    [--since T --until T] [--preview] --reason TEXT [--by WHO]``."""
    campaign = load_campaign(settings.campaign_path)
    if not args.preview and not (args.reason or "").strip():
        raise ConfigError("--reason must say why")
    selection = _selection(args, settings, campaign)
    reason = (args.reason or "").strip()
    actor = args.by or default_actor()

    async def body(tools: Tools) -> int:
        certified = await tools.store.certification(tools.campaign.id)
        if certified is not None and not args.preview:
            _refuse_certified(certified.certified_at, tools.campaign)
            return 1
        if args.preview:
            _print_preview(
                await preview_void(tools.store, tools.flusher, tools.campaign, selection)
            )
            return 0
        try:
            done = await void_votes(
                tools.client,
                tools.keys,
                tools.store,
                tools.flusher,
                tools.campaign,
                selection,
                reason=reason,
                actor=actor,
                clock=system_clock,
            )
        except (LiveCountersNotUpdated, SelectionChanged) as exc:
            print(f"votesvc void: {exc}", file=sys.stderr)
            return 1
        except ResultCertified:  # certified a moment ago
            certified = await tools.store.certification(tools.campaign.id)
            _refuse_certified(certified.certified_at if certified else None, tools.campaign)
            return 1
        if done.voided:
            print(f"voided {len(done.voided)} votes (reason: {reason!r}, by {actor})")
        else:
            print("0 votes voided: no valid vote matched (nothing changed, no audit row written)")
        for vote in done.voided:
            print(f"  {vote.vote_id}  {vote.nominee}")
        for vote_id in done.already_void:
            print(f"  {vote_id}  already void")
        for vote_id in done.not_found:
            print(f"  {vote_id}  not in the ledger", file=sys.stderr)
        return 1 if done.not_found else 0

    return run_with_tools(settings, body)


def _refuse_certified(at: int | None, campaign: Campaign) -> None:
    when = "" if at is None else f" at {local_iso(at, campaign.timezone)}"
    print(
        f"votesvc void: refused, the result was certified{when}: its votes can no longer "
        "be voided (nothing changed)",
        file=sys.stderr,
    )


def _places(text: str) -> int:
    """``--top``: a whole number of places, at least 1."""
    try:
        places = int(text)
    except ValueError:
        places = 0
    if places < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return places


def add_ledger_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ledger commands to the ``votesvc`` parser."""
    cmd = commands.add_parser("flush", help="run the ledger flusher (Redis streams -> database)")
    cmd.add_argument(
        "--once", action="store_true", help="flush what is in the streams now, then exit"
    )
    cmd.set_defaults(func=flush, ledger="create")

    cmd = commands.add_parser("award", help="the most popular award, from the ledger")
    cmd.add_argument(
        "--top",
        type=_places,
        default=None,
        help="places that receive the award (>= 1; default: the campaign's award_seats)",
    )
    cmd.add_argument("--format", choices=FORMATS, default="table", help="output format")
    cmd.add_argument(
        "--provisional",
        action="store_true",
        help="rank even while voting is open or votes are pending (marked provisional)",
    )
    cmd.set_defaults(func=award, ledger="existing")

    cmd = commands.add_parser("export", help="write the ledger as CSV with a SHA-256 digest")
    cmd.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="CSV file to write (UTF-8 with a byte-order mark, CRLF; FILE.sha256 beside it), "
        "or - for stdout (no byte-order mark)",
    )
    phones = cmd.add_mutually_exclusive_group()
    phones.add_argument(
        "--label",
        metavar="TEXT",
        help="key the phone_ref and prefix_ref columns for this label (default: the campaign "
        "id); files of one label link one phone's votes, other labels do not",
    )
    phones.add_argument(
        "--internal",
        action="store_true",
        help="write the stored hashes (as in Redis and the ledger): not for outside eyes",
    )
    cmd.add_argument("--by", metavar="WHO", help="who exports (audit log; default: user@host)")
    cmd.set_defaults(func=export, ledger="existing")

    cmd = commands.add_parser(
        "reconcile", help="compare live counts with the ledger plus pending votes"
    )
    cmd.set_defaults(func=reconcile_cmd, ledger="existing")

    cmd = commands.add_parser("restore", help="rebuild Redis's counters from the ledger")
    cmd.add_argument("--force", action="store_true", help="run even if flushers seem active")
    cmd.add_argument("--by", metavar="WHO", help="who restores (audit log; default: user@host)")
    cmd.set_defaults(func=restore_cmd, ledger="existing")

    cmd = commands.add_parser("void", help="void votes in the ledger and the live counts")
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--vote-id", nargs="+", metavar="ID", help="vote ids to void")
    which.add_argument(
        "--phone",
        metavar="-",
        help="void the votes of the phone whose number is the first line of stdin "
        "(never a number here: ps and the shell's history would keep it)",
    )
    which.add_argument(
        "--phone-file", metavar="PATH", help="void the votes of the phone in this file's first line"
    )
    which.add_argument("--nominee", metavar="ID", help="void the votes for this nominee")
    cmd.add_argument(
        "--since", metavar="T", help="with a phone or a nominee: from this ISO 8601 time"
    )
    cmd.add_argument(
        "--until", metavar="T", help="with a phone or a nominee: before this ISO 8601 time"
    )
    cmd.add_argument(
        "--preview",
        action="store_true",
        help="only say what would be voided, per nominee, and whether the award would change",
    )
    cmd.add_argument("--reason", help="why (kept in the audit log; required unless --preview)")
    cmd.add_argument("--by", metavar="WHO", help="who voids (default: user@host)")
    cmd.set_defaults(func=void, ledger="existing")

    cmd = commands.add_parser(
        "suspects", help="suspicious activity in the ledger (the [suspects] signals)"
    )
    cmd.add_argument("--format", choices=suspects.FORMATS, default="table", help="output format")
    cmd.set_defaults(func=suspects_cmd, ledger="existing")

    cmd = commands.add_parser(
        "certify", help="certify and publish the result (after closes_at); votes are then frozen"
    )
    cmd.add_argument("--by", required=True, metavar="NAME", help="who certifies (audit log)")
    cmd.set_defaults(func=certify_cmd, ledger="existing")
