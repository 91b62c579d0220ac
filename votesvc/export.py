"""Exporting the whole ledger for auditors and the press: CSV plus its SHA-256.

The CSV holds one row per accepted vote, by accepted time then vote id. Beside
it, ``FILE.sha256`` holds the digest in ``sha256sum`` format, so anyone can
check the file with ``sha256sum -c FILE.sha256``. Both appear complete or not
at all (written to a temporary name, then renamed).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from votesvc.store import Store

__all__ = ["COLUMNS", "Exported", "export_ledger"]

COLUMNS = ("vote_id", "nominee", "phone_hash", "accepted_at", "void", "void_reason")


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


async def export_ledger(store: Store, campaign: str, out: Path) -> Exported:
    """Write every ledger row of ``campaign`` to ``out`` and its digest beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    sink = _Hashing(tmp)
    rows = void = 0
    try:
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(COLUMNS)
        async for chunk in store.votes(campaign):
            for vote in chunk:
                at = datetime.fromtimestamp(vote.accepted_at / 1000, UTC)
                writer.writerow(
                    (
                        vote.vote_id,
                        vote.nominee,
                        vote.phone_hash,
                        at.isoformat(timespec="milliseconds"),
                        "true" if vote.void else "false",
                        vote.void_reason or "",
                    )
                )
                rows += 1
                void += vote.void
        sink.file.flush()
        os.fsync(sink.file.fileno())
    except BaseException:
        sink.file.close()
        tmp.unlink(missing_ok=True)
        raise
    sink.file.close()
    digest = sink.hash.hexdigest()
    digest_path = out.with_name(out.name + ".sha256")
    digest_tmp = digest_path.with_name(digest_path.name + ".part")
    digest_tmp.write_text(f"{digest}  {out.name}\n")
    tmp.replace(out)
    digest_tmp.replace(digest_path)
    return Exported(out, digest_path, rows, void, digest)
