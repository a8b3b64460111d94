#!/usr/bin/env python3
"""Draws Loupe's icon (a small entropy heatmap: blue certain cells below, red uncertain above, one
boxed template column) as PNGs for the web app manifest, and as SVG for the favicon. Standard
library only. Run once; the outputs are committed under public/icons/."""
import struct
import zlib
from pathlib import Path

BLUE, WHITE, RED = (33, 102, 172), (247, 247, 247), (178, 24, 43)
OUT = Path(__file__).resolve().parent.parent / "public" / "icons"
GRID = 6


def mix(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def colour(row, col):
    """Entropy falls from red (top rows, early layers) to blue (bottom), with a wobble per column."""
    t = (row + 0.6 * ((col * 7) % 3) / 2) / (GRID - 1)
    t = min(max(t, 0.0), 1.0)
    return mix(RED, WHITE, t * 2) if t < 0.5 else mix(WHITE, BLUE, t * 2 - 1)


def png(size):
    cell = size / GRID
    rows = []
    for y in range(size):
        line = bytearray([0])
        for x in range(size):
            c = colour(int(y // cell), int(x // cell))
            # the boxed template column (4): a dark outline
            col, edge = int(x // cell), max(1, size // 64)
            if col == 4 and (x - 4 * cell < edge or 5 * cell - x <= edge or y < edge or size - y <= edge):
                c = (194, 94, 0)
            line += bytes(c)
        rows.append(bytes(line))
    raw = b"".join(rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def svg():
    cells = []
    for r in range(GRID):
        for c in range(GRID):
            cells.append(f'<rect x="{c * 16}" y="{r * 16}" width="16" height="16" fill="rgb{colour(r, c)}"/>')
    cells.append('<rect x="65" y="1" width="14" height="94" fill="none" stroke="#c25e00" stroke-width="2"/>')
    return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96">' + "".join(cells) + "</svg>\n"


OUT.mkdir(parents=True, exist_ok=True)
for size in (192, 512):
    (OUT / f"icon-{size}.png").write_bytes(png(size))
(OUT / "icon.svg").write_text(svg())
print("wrote", *sorted(p.name for p in OUT.iterdir()))
