"""Nominee profiles: the campaign's photo, bio and title; photos made once, served immutable."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.localhost import free_port
from tests.support import campaign_toml, running_service
from votesvc.campaign import BIO_MAX, Campaign, load_campaign, parse_campaign
from votesvc.errors import CampaignError, ConfigError
from votesvc.media import MAX_PHOTO_BYTES, MEDIA_CACHE, SIDE, prepare_photos
from votesvc.redis_server import EmbeddedRedis

PORTRAITS = Path(__file__).resolve().parents[1] / "votesvc" / "campaigns" / "portraits"


def picture(
    path: Path, size: tuple[int, int] = (600, 800), kind: str = "JPEG", **more: object
) -> Path:
    mode = "RGBA" if kind == "PNG" else "RGB"
    image = Image.new(mode, size, (200, 60, 40, 255) if mode == "RGBA" else (200, 60, 40))
    image.save(path, kind, **more)
    return path


def with_profiles(tmp_path: Path, **fields: str) -> Path:
    """A campaign file in ``tmp_path`` whose first nominee has ``fields``."""
    lines = "".join(f'\n{key} = "{value}"' for key, value in fields.items())
    path = tmp_path / "campaign.toml"
    path.write_text(
        campaign_toml(nominees=3).replace('employer = "Works"', 'employer = "Works"' + lines, 1)
    )
    return path


def test_profiles_are_read_and_photos_start_at_the_campaign_file(tmp_path: Path) -> None:
    picture(tmp_path / "n01.jpg")
    campaign = load_campaign(
        with_profiles(tmp_path, title="高级技师", bio="  从业二十年。 ", photo="n01.jpg")
    )
    first, second = campaign.nominees[0], campaign.nominees[1]
    assert (first.title, first.bio, first.photo) == (
        "高级技师",
        "从业二十年。",
        tmp_path / "n01.jpg",
    )
    assert (second.title, second.bio, second.photo, second.photo_url) == (None, None, None, None)
    absolute = parse_campaign(
        campaign_toml(nominees=1).replace(
            'employer = "Works"', 'employer = "W"\nphoto = "/srv/p.png"'
        )
    )
    assert absolute.nominees[0].photo == Path("/srv/p.png")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"bio": "字" * (BIO_MAX + 1)},
            f"nominees[0].bio has {BIO_MAX + 1} characters, at most {BIO_MAX}",
        ),
        ({"title": "技" * 31}, "nominees[0].title has 31 characters, at most 30"),
        ({"title": " "}, "nominees[0].title must be a non-empty string"),
        ({"photo": ""}, "nominees[0].photo must be a non-empty string"),
    ],
)
def test_bad_profiles_name_the_problem(
    tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(CampaignError, match=re.escape(message)):
        load_campaign(with_profiles(tmp_path, **fields))
    assert len("字" * BIO_MAX) == BIO_MAX  # characters, not bytes: 300 of them are allowed
    load_campaign(with_profiles(tmp_path, bio="字" * BIO_MAX))


def photo_campaign(tmp_path: Path, photo: Path) -> Campaign:
    return load_campaign(with_profiles(tmp_path, photo=str(photo)))


def test_a_photo_is_made_once_into_a_square_webp_named_by_its_content(tmp_path: Path) -> None:
    source = picture(tmp_path / "tall.jpg", (600, 900))
    data = tmp_path / "data"
    photos = prepare_photos(photo_campaign(tmp_path, source), data)
    name = photos.names["N01"]
    assert re.fullmatch(r"N01-[0-9a-f]{16}\.webp", name)
    assert photos.urls == {"N01": f"/media/{name}"}
    made = data / "media" / name
    with Image.open(made) as image:
        assert (image.format, image.size) == ("WEBP", (SIDE, SIDE))
    stamp = made.stat().st_mtime_ns
    again = prepare_photos(photo_campaign(tmp_path, source), data)  # the next start finds it
    assert again.names == photos.names
    assert made.stat().st_mtime_ns == stamp

    picture(source, (600, 900), quality=40)  # a new photo: a new name
    changed = prepare_photos(photo_campaign(tmp_path, source), data)
    assert changed.names["N01"] != name
    assert sorted(p.name for p in (data / "media").iterdir()) == sorted(
        [name, changed.names["N01"]]
    )


def test_png_webp_and_transparency(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    photos = prepare_photos(photo_campaign(tmp_path, tmp_path / "clear.png"), tmp_path / "data")
    with Image.open(tmp_path / "data" / "media" / photos.names["N01"]) as image:
        assert image.convert("RGB").getpixel((10, 10)) == (255, 255, 255)  # on white
    picture(tmp_path / "p.webp", kind="WEBP")
    assert prepare_photos(photo_campaign(tmp_path, tmp_path / "p.webp"), tmp_path / "data").names


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GIF89a" + b"\0" * 100, "is not a JPEG, PNG or WebP image"),
        (b"RIFF\0\0\0\0WAVEfmt ", "is not a JPEG, PNG or WebP image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "cannot be read as an image"),
        (None, "cannot read it"),
    ],
)
def test_a_bad_photo_stops_start_up_with_one_line(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    photo = tmp_path / "photo.png"
    if content is not None:
        photo.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        prepare_photos(photo_campaign(tmp_path, photo), tmp_path / "data")
    assert str(caught.value).startswith(f"nominee N01's photo {photo}")
    assert "\n" not in str(caught.value)


def test_a_photo_over_10_mb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    photo = tmp_path / "huge.jpg"
    with photo.open("wb") as handle:
        handle.write(b"\xff\xd8\xff")
        handle.truncate(MAX_PHOTO_BYTES + 1)
    with pytest.raises(ConfigError, match=r"is 10\.0 MB: at most 10 MB"):
        prepare_photos(photo_campaign(tmp_path, photo), tmp_path / "data")


def test_serve_stops_with_one_line_on_a_bad_photo(tmp_path: Path) -> None:
    (tmp_path / "n01.png").write_text("not a picture")
    campaign = with_profiles(tmp_path, photo="n01.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env |= {"VOTESVC_CAMPAIGN": str(campaign), "VOTESVC_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "votesvc", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"votesvc: nominee N01's photo {tmp_path / 'n01.png'} is not a JPEG, PNG or WebP image"
    )
    assert not EmbeddedRedis(tmp_path / "data").ping()  # stopped before Redis started


async def test_photos_are_served_immutable_and_listed(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = photo_campaign(tmp_path, picture(tmp_path / "n01.jpg"))
    async with running_service(redis_server.url, tmp_path / "data", campaign=campaign) as service:
        nominees = (await service.client.get("/v1/nominees")).json()["nominees"]
        url = nominees[0]["photo_url"]
        assert url.startswith("/media/N01-")
        assert nominees[1]["photo_url"] is None
        response = await service.client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
        assert response.headers["cache-control"] == MEDIA_CACHE
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == (SIDE, SIDE)
        for other in ("/media/N02-0123456789abcdef.webp", "/media/secret", "/media/../secret"):
            missing = await service.client.get(other)
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"


def test_the_demo_ships_drawn_portraits(tmp_path: Path) -> None:
    demo = load_campaign(None)
    with_photos = [n for n in demo.nominees if n.photo is not None]
    assert len(with_photos) >= 5
    for nominee in with_photos:
        assert nominee.photo is not None
        assert nominee.photo.parent == PORTRAITS
        assert nominee.photo.stat().st_size < 20_000
    assert all(n.title for n in with_photos)
    assert any(n.bio and n.photo is None for n in demo.nominees)  # a story without a photo
    # The portraits are the project's drawing: the script makes them again.
    script = PORTRAITS / "draw.py"
    made = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=True
    )
    drawn = sorted(Path(line).name for line in made.stdout.split())
    assert drawn == sorted(n.photo.name for n in with_photos if n.photo is not None)
    for name in drawn:
        with Image.open(tmp_path / name) as image:
            assert image.size == (SIDE, SIDE)
