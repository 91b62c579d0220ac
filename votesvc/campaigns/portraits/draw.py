"""Draws the demo campaign's placeholder portraits (the PNG files beside this one).

The demo's nominees are fictional, so their photos are drawn, not taken: a
flat head-and-shoulders figure in the clothes of the trade, on a warm
background. Run it again after a change: ``python votesvc/campaigns/portraits/draw.py``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

SIDE = 480  # pixels of the files; drawn four times larger, then scaled down (smooth edges)
SCALE = 4
COLOURS = 48  # a flat picture needs few: the files stay small


@dataclass(frozen=True)
class Figure:
    nominee: str
    background: tuple[str, str]  # the ground, the halo behind the head
    skin: str
    hair: str
    clothes: str
    long_hair: bool = False
    hat: str | None = None  # "helmet", "cap" or None
    hat_colour: str = "#f4f4f0"
    collar: str = "#ffffff"


FIGURES = [
    Figure("N01", ("#e9a868", "#f6d2a2"), "#f1c9a5", "#2b2420", "#2f5d8a"),
    Figure("N02", ("#d98b83", "#f3c4bc"), "#f3cfb1", "#1f1a17", "#3d6b5a", long_hair=True),
    Figure(
        "N04",
        ("#7fa6cc", "#c4d8ec"),
        "#e2b48e",
        "#2a221d",
        "#40546e",
        hat="helmet",
        hat_colour="#f2b632",
    ),
    Figure("N07", ("#d8b45c", "#f1dfae"), "#efc39c", "#8d8881", "#5b6d7d", collar="#d9dde2"),
    Figure(
        "N11",
        ("#94c08a", "#d3e8cc"),
        "#f4d2b4",
        "#1d1815",
        "#f7f7f2",
        long_hair=True,
        hat="cap",
        collar="#e5efe6",
    ),
    Figure("N25", ("#b98a5d", "#e6cdb2"), "#dcae87", "#4a3c33", "#7a5a3a", collar="#efe4d6"),
]


def draw(figure: Figure) -> Image.Image:
    size = SIDE * SCALE
    back, halo = figure.background
    image = Image.new("RGB", (size, size), back)
    pen = ImageDraw.Draw(image)

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * size, y0 * size, x1 * size, y1 * size]

    pen.ellipse(box(0.10, 0.08, 0.90, 0.88), fill=halo)
    if figure.long_hair:  # behind the shoulders
        pen.rounded_rectangle(box(0.30, 0.28, 0.70, 0.76), radius=0.14 * size, fill=figure.hair)
    elif figure.hat is None:
        pen.ellipse(box(0.315, 0.215, 0.685, 0.60), fill=figure.hair)
    pen.rounded_rectangle(box(0.14, 0.74, 0.86, 1.20), radius=0.20 * size, fill=figure.clothes)
    pen.polygon(  # the collar's V
        [(0.40 * size, 0.75 * size), (0.50 * size, 0.87 * size), (0.60 * size, 0.75 * size)],
        fill=figure.collar,
    )
    pen.rounded_rectangle(box(0.43, 0.58, 0.57, 0.80), radius=0.05 * size, fill=figure.skin)
    pen.ellipse(box(0.305, 0.43, 0.36, 0.53), fill=figure.skin)  # ears
    pen.ellipse(box(0.64, 0.43, 0.695, 0.53), fill=figure.skin)
    pen.ellipse(box(0.335, 0.26, 0.665, 0.68), fill=figure.skin)  # the face
    if figure.hat == "helmet":
        pen.chord(box(0.30, 0.17, 0.70, 0.55), 180, 360, fill=figure.hat_colour)
        pen.rounded_rectangle(
            box(0.27, 0.345, 0.73, 0.385), radius=0.02 * size, fill=figure.hat_colour
        )
        pen.rectangle(box(0.485, 0.19, 0.515, 0.35), fill="#d4961c")  # the ridge
    elif figure.hat == "cap":
        pen.rounded_rectangle(
            box(0.32, 0.20, 0.68, 0.37), radius=0.06 * size, fill=figure.hat_colour
        )
    else:  # the fringe, parted on one side
        pen.chord(box(0.325, 0.22, 0.675, 0.50), 180, 360, fill=figure.hair)
        pen.pieslice(box(0.34, 0.25, 0.62, 0.52), 180, 250, fill=figure.hair)
    return image.resize((SIDE, SIDE), Image.Resampling.LANCZOS).quantize(COLOURS)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def main(folder: Path) -> list[Path]:
    written = []
    for figure in FIGURES:
        path = folder / f"{figure.nominee}.png"
        draw(figure).save(path, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        sys.stdout.write(f"{path}\n")  # the script's report: the files it drew
