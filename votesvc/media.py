"""Nominees' photos: checked and made once at start-up, then served as immutable files.

A campaign names each photo by a path (beside the campaign file, or a mounted
volume). At start-up every photo is read, refused with one line if it is not
a JPEG, PNG or WebP or is over 10 MB, and made into a square WebP under
``<data dir>/media`` named ``<nominee id>-<content hash>.webp``. The hash
covers the source's bytes and the recipe below, so a replaced photo gets a new
name (browsers and proxies may keep a name forever: ``immutable``) and an
unchanged one is not made again: ``serve`` makes the files before its workers
start, and each worker finds them made. Only the current campaign's files are
served; the folder is never listed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from votesvc.campaign import Campaign
from votesvc.errors import ConfigError

__all__ = ["MAX_PHOTO_BYTES", "MEDIA_CACHE", "Photos", "prepare_photos"]

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MEDIA_CACHE = "public, max-age=31536000, immutable"
SIDE = 480  # pixels: a 160 px portrait on a phone's 3x screen
QUALITY = 80
EFFORT = 4  # WebP's method: 6 is twice as slow at start-up for files about 5 % smaller
# A new recipe gives every photo a new name, so no browser keeps the old rendering.
_RECIPE = f"webp-square-{SIDE}-q{QUALITY}-m{EFFORT}-v1".encode()
_MAX_PIXELS = 50_000_000  # a 10 MB file can claim any size: refuse a decompression bomb
# The formats taken, by their first bytes (WebP: RIFF....WEBP).
_SIGNATURES = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "WEBP": (b"RIFF",),
}
_NAME = re.compile(r"[A-Za-z0-9_-]{1,16}-[0-9a-f]{16}\.webp")


@dataclass(frozen=True, slots=True)
class Photos:
    """The campaign's photos as made: served at ``/media/<name>``."""

    folder: Path
    names: dict[str, str]  # nominee id -> file name

    @property
    def urls(self) -> dict[str, str]:
        return {nominee: f"/media/{name}" for nominee, name in self.names.items()}

    def route(self) -> Route:
        """``GET /media/<name>``: one of the campaign's photos, cacheable for ever."""
        served = frozenset(self.names.values())

        async def media(request: Request) -> Response:
            name = request.path_params["name"]
            if name not in served:
                raise HTTPException(404)
            return FileResponse(
                self.folder / name,
                media_type="image/webp",
                headers={"Cache-Control": MEDIA_CACHE},
            )

        return Route("/media/{name}", media, methods=["GET", "HEAD"], name="media")


def prepare_photos(campaign: Campaign, data_dir: Path) -> Photos:
    """Make every photo the campaign names (those not made yet) into ``data_dir/media``.

    A photo that cannot be read, is over 10 MB, or is not a JPEG, PNG or WebP
    raises ConfigError naming the nominee and the file.
    """
    folder = data_dir / "media"
    names: dict[str, str] = {}
    for nominee in campaign.nominees:
        if nominee.photo is None:
            continue
        where = f"nominee {nominee.id}'s photo {nominee.photo}"
        source = _read(nominee.photo, where)
        name = f"{nominee.id}-{hashlib.sha256(_RECIPE + source).hexdigest()[:16]}.webp"
        assert _NAME.fullmatch(name), name
        target = folder / name
        if not target.exists():
            _make(source, target, where)
        names[nominee.id] = name
    return Photos(folder, names)


def _read(path: Path, where: str) -> bytes:
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_PHOTO_BYTES:
                raise ConfigError(
                    f"{where} is {size / 1024 / 1024:.1f} MB: at most "
                    f"{MAX_PHOTO_BYTES // 1024 // 1024} MB (a portrait needs far less)"
                )
            data = handle.read(MAX_PHOTO_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from exc
    kind = _format(data)
    if kind is None or (kind == "WEBP" and data[8:12] != b"WEBP"):
        raise ConfigError(f"{where} is not a JPEG, PNG or WebP image")
    return data


def _format(data: bytes) -> str | None:
    for kind, signatures in _SIGNATURES.items():
        if data.startswith(signatures):
            return kind
    return None


def _make(source: bytes, target: Path, where: str) -> None:
    try:
        with warnings.catch_warnings():
            # Pillow warns past its own pixel limit; ours is checked below, before decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source), formats=list(_SIGNATURES)) as image:
                if image.width * image.height > _MAX_PIXELS:
                    raise ConfigError(
                        f"{where} is {image.width}x{image.height} pixels: at most "
                        f"{_MAX_PIXELS // 1_000_000} million"
                    )
                upright = ImageOps.exif_transpose(image)
                portrait = _on_paper(upright)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ConfigError(f"{where} cannot be read as an image ({exc})") from exc
    # A face sits in the upper part of a portrait: keep more of the top than the bottom.
    square = ImageOps.fit(portrait, (SIDE, SIDE), Image.Resampling.LANCZOS, centering=(0.5, 0.35))
    buffer = io.BytesIO()
    square.save(buffer, "WEBP", quality=QUALITY, method=EFFORT)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Another worker may be making the same file: each writes its own, then renames.
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        partial.write_bytes(buffer.getvalue())
        partial.replace(target)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}") from exc


def _on_paper(image: Image.Image) -> Image.Image:
    """RGB; a transparent background becomes white, as on the page's cards."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGB", rgba.size, "white")
        paper.paste(rgba, mask=rgba.getchannel("A"))
        return paper
    return image.convert("RGB")
