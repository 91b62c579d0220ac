"""Exporting the whole ledger for auditors and the press: CSV plus its SHA-256.

One format, one row per vote (void ones too), by accepted time then vote id,
under the header :data:`COLUMNS`: the nominee's name and trade from the
campaign file, the accepted time in the campaign's zone with its offset
(``2026-12-01T20:15:03.120+08:00``), and no comment line. A file is UTF-8
with a byte-order mark and CRLF line ends, so Excel and WPS on a Chinese
Windows open it as it is; written to stdout there is no byte-order mark (a
pipe's reader does not want one) and the rest is the same bytes.

Beside a file, ``FILE.sha256`` holds its digest in ``sha256sum`` format, so
anyone can check it with ``sha256sum -c FILE.sha256``. Both appear complete or
not at all (written to temporary ``.part`` names, then renamed; on any failure
the ``.part`` files are removed). The directory must exist: a mistyped path is
refused, not created.

``phone_ref`` and ``prefix_ref`` hold, by default, a keyed hash of the stored
phone hash and of the stored network-prefix hash under a key for one label
(``phones.label_hasher``; the label defaults to the campaign id): auditors can
link one phone's (or one network's) votes within a file and across files of
the same label, but cannot compare them with Redis or the ledger, nor reverse
them without the secret. With ``internal`` they hold the stored hashes
themselves, which equal what Redis and the ledger hold: such a file must stay
inside the organisation. Nothing in the file depends on the time of the
export, so the same ledger and label give the same bytes: a digest certified
once (votesvc.ledger.certify) can be checked against a later export.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from votesvc.campaign import Campaign
from votesvc.errors import ConfigError
from votesvc.ledger.store import Store
from votesvc.ledger.times import local_iso
from votesvc.phones import label_hasher

__all__ = [
    "BOM",
    "COLUMNS",
    "Digest",
    "ExportFailed",
    "Exported",
    "Refs",
    "check_output",
    "digest_line",
    "export_digest",
    "export_ledger",
    "export_to",
]

COLUMNS = (
    "vote_id",
    "nominee_id",
    "nominee_name",
    "trade",
    "accepted_at",
    "phone_ref",
    "prefix_ref",
    "method",
    "void",
    "void_reason",
)
BOM = "\ufeff".encode()  # UTF-8's byte-order mark: Excel reads the file as UTF-8
_LINE_END = "\r\n"
_REFS_CACHED = 1 << 16  # phones' and prefixes' refs kept: one phone votes many times


class Refs:
    """The ``phone_ref`` and ``prefix_ref`` columns: hashes keyed for a label, or
    (``label`` None) the stored hashes as they are."""

    def __init__(self, secret: bytes, label: str | None) -> None:
        if label is not None and not label.strip():
            raise ConfigError("the export label (--label) must not be empty")
        self.label = label
        hasher: Callable[[str], str] | None = None if label is None else label_hasher(secret, label)
        self._hasher = hasher
        self._known: dict[str, str] = {"": ""}  # no prefix known (votes before migration 5)

    def __call__(self, stored: str) -> str:
        """What the file holds for a stored phone or prefix hash."""
        if self._hasher is None:
            return stored
        known = self._known.get(stored)
        if known is None:
            if len(self._known) >= _REFS_CACHED:
                self._known = {"": ""}
            known = self._known[stored] = self._hasher(stored)
        return known


class ExportFailed(ConfigError):
    """The output file cannot be written; like any bad argument, exit status 2."""


@dataclass(frozen=True, slots=True)
class Digest:
    """What an export holds: its rows, the void ones, and the SHA-256 of its bytes."""

    rows: int
    void: int
    sha256: str  # a file's: with its byte-order mark


@dataclass(frozen=True, slots=True)
class Exported(Digest):
    """An export written to ``path``, with its digest in ``digest_path``."""

    path: Path
    digest_path: Path


@dataclass(slots=True)
class _Counts:
    rows: int = 0
    void: int = 0


async def _chunks(
    store: Store, campaign: Campaign, refs: Refs, counts: _Counts | None = None
) -> AsyncIterator[bytes]:
    """The CSV, header first, in pieces (no byte-order mark: a file adds :data:`BOM`)."""
    counts = counts if counts is not None else _Counts()
    tz = campaign.timezone
    names: dict[str, tuple[str, str]] = {
        nominee.id: (nominee.name, nominee.trade) for nominee in campaign.nominees
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=_LINE_END)
    writer.writerow(COLUMNS)
    yield out.getvalue().encode("utf-8")
    async for chunk in store.votes(campaign.id):
        out.seek(0)
        out.truncate()
        for vote in chunk:
            name, trade = names.get(vote.nominee, ("", ""))
            writer.writerow(
                (
                    vote.vote_id,
                    vote.nominee,
                    name,
                    trade,
                    local_iso(vote.accepted_at, tz),
                    refs(vote.phone_hash),
                    refs(vote.prefix_hash),
                    vote.method,
                    "true" if vote.void else "false",
                    vote.void_reason or "",
                )
            )
            counts.void += vote.void
        counts.rows += len(chunk)
        yield out.getvalue().encode("utf-8")


async def export_digest(store: Store, campaign: Campaign, refs: Refs) -> Digest:
    """Rows, void rows and the SHA-256 the export file would have; nothing written."""
    digest = hashlib.sha256(BOM)
    counts = _Counts()
    async for piece in _chunks(store, campaign, refs, counts):
        digest.update(piece)
    return Digest(counts.rows, counts.void, digest.hexdigest())


async def export_to(store: Store, campaign: Campaign, sink: BinaryIO, refs: Refs) -> Digest:
    """The export written to a stream (stdout): no byte-order mark."""
    digest = hashlib.sha256()
    counts = _Counts()
    async for piece in _chunks(store, campaign, refs, counts):
        digest.update(piece)
        sink.write(piece)
    sink.flush()
    return Digest(counts.rows, counts.void, digest.hexdigest())


def digest_line(sha256: str, name: str) -> str:
    """A ``sha256sum`` line for a file called ``name``."""
    return f"{sha256}  {name}\n"


def check_output(out: Path) -> None:
    """Refuse an output path that cannot be a file: a directory, or in a missing one."""
    for path in (out, _digest_path(out)):
        if path.is_dir():
            raise ExportFailed(f"cannot write {path}: Is a directory")
    parent = out.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise ExportFailed(f"cannot write {out}: the directory {parent} {why}")


async def export_ledger(store: Store, campaign: Campaign, out: Path, *, refs: Refs) -> Exported:
    """Write every ledger row of ``campaign`` to the file ``out`` and its digest beside it.

    Raises ExportFailed (and leaves no file behind) when ``out`` cannot be written.
    """
    check_output(out)
    digest_path = _digest_path(out)
    parts = (out.with_name(out.name + ".part"), digest_path.with_name(digest_path.name + ".part"))
    try:
        rows, void, digest = await _write_file(store, campaign, parts[0], refs)
        parts[1].write_text(digest_line(digest, out.name))
        parts[0].replace(out)
        parts[1].replace(digest_path)
    except OSError as exc:
        _remove(parts)
        failed = digest_path if exc.filename == str(parts[1]) else out
        raise ExportFailed(f"cannot write {failed}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove(parts)
        raise
    return Exported(rows, void, digest, out, digest_path)


async def _write_file(
    store: Store, campaign: Campaign, path: Path, refs: Refs
) -> tuple[int, int, str]:
    """Rows, void rows and SHA-256 of the file written (and fsynced) to ``path``."""
    digest = hashlib.sha256(BOM)
    counts = _Counts()
    with path.open("wb") as file:
        file.write(BOM)
        async for piece in _chunks(store, campaign, refs, counts):
            digest.update(piece)
            file.write(piece)
        file.flush()
        os.fsync(file.fileno())
    return counts.rows, counts.void, digest.hexdigest()


def _digest_path(out: Path) -> Path:
    return out.with_name(out.name + ".sha256")


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):  # e.g. a directory of that name: not ours
            path.unlink(missing_ok=True)
