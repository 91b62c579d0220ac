"""Exporting the whole ledger for auditors and the press: CSV plus its SHA-256.

The CSV holds one row per accepted vote, by accepted time then vote id. Beside
it, ``FILE.sha256`` holds the digest in ``sha256sum`` format, so anyone can
check the file with ``sha256sum -c FILE.sha256``. Both appear complete or not
at all (written to temporary ``.part`` names, then renamed; on any failure the
``.part`` files are removed). The directory must exist: a mistyped path is
refused, not created.

The phone column holds, by default, a keyed hash of the stored phone hash under
a key for one label (``phones.label_hasher``; the label defaults to the
campaign id): auditors can link one phone's votes within a file and across
files of the same label, but cannot compare them with Redis or the ledger, nor
reverse them without the secret. With ``internal`` it holds the stored hash
itself, which equals what Redis and the ledger hold: such a file must stay
inside the organisation. Nothing in the file depends on the time of the export,
so the same ledger and label give the same bytes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from votesvc.errors import ConfigError
from votesvc.ledger.store import Store
from votesvc.phones import label_hasher

__all__ = [
    "COLUMNS",
    "ExportFailed",
    "Exported",
    "PhoneColumn",
    "check_output",
    "export_ledger",
    "phone_column",
]

COLUMNS = ("vote_id", "nominee", "phone_hash", "accepted_at", "void", "void_reason", "method")


PhoneColumn = Callable[[str], str]  # stored phone hash -> what the file holds for it


def phone_column(secret: bytes, label: str | None) -> PhoneColumn:
    """The phone column: the keyed hash for ``label``, or (None) the stored hash as is."""
    if label is None:
        return _stored
    if not label.strip():
        raise ConfigError("the export label (--label) must not be empty")
    return label_hasher(secret, label)


def _stored(phone_hash: str) -> str:
    return phone_hash


class ExportFailed(ConfigError):
    """The output file cannot be written; like any bad argument, exit status 2."""


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    digest_path: Path
    rows: int
    void: int
    sha256: str


class _Hashing:
    """A text sink that writes UTF-8 to a file and hashes what it wrote."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.hash = hashlib.sha256()

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.hash.update(data)
        self.file.write(data)
        return len(text)


def check_output(out: Path) -> None:
    """Refuse an output path that cannot be a file: a directory, or in a missing one."""
    for path in (out, _digest_path(out)):
        if path.is_dir():
            raise ExportFailed(f"cannot write {path}: Is a directory")
    parent = out.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise ExportFailed(f"cannot write {out}: the directory {parent} {why}")


async def export_ledger(store: Store, campaign: str, out: Path, *, phones: PhoneColumn) -> Exported:
    """Write every ledger row of ``campaign`` to ``out`` and its digest beside it.

    ``phones`` gives the phone column's value for each stored phone hash
    (see :func:`phone_column`).

    Raises ExportFailed (and leaves no file behind) when ``out`` cannot be written.
    """
    check_output(out)
    digest_path = _digest_path(out)
    parts = (out.with_name(out.name + ".part"), digest_path.with_name(digest_path.name + ".part"))
    try:
        rows, void, digest = await _write_csv(store, campaign, parts[0], phones)
        parts[1].write_text(f"{digest}  {out.name}\n")
        parts[0].replace(out)
        parts[1].replace(digest_path)
    except OSError as exc:
        _remove(parts)
        failed = digest_path if exc.filename == str(parts[1]) else out
        raise ExportFailed(f"cannot write {failed}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove(parts)
        raise
    return Exported(out, digest_path, rows, void, digest)


async def _write_csv(
    store: Store, campaign: str, path: Path, phones: PhoneColumn
) -> tuple[int, int, str]:
    """Rows, void rows and SHA-256 of the CSV written (and fsynced) to ``path``."""
    sink = _Hashing(path)
    rows = void = 0
    with sink.file:
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(COLUMNS)
        async for chunk in store.votes(campaign):
            for vote in chunk:
                at = datetime.fromtimestamp(vote.accepted_at / 1000, UTC)
                writer.writerow(
                    (
                        vote.vote_id,
                        vote.nominee,
                        phones(vote.phone_hash),
                        at.isoformat(timespec="milliseconds"),
                        "true" if vote.void else "false",
                        vote.void_reason or "",
                        vote.method,
                    )
                )
                rows += 1
                void += vote.void
        sink.file.flush()
        os.fsync(sink.file.fileno())
    return rows, void, sink.hash.hexdigest()


def _digest_path(out: Path) -> Path:
    return out.with_name(out.name + ".sha256")


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):  # e.g. a directory of that name: not ours
            path.unlink(missing_ok=True)
