#!/usr/bin/python3
"""Checks a PNG for the tests: signature, chunk CRCs, IHDR size, IEND, and that the picture is not blank.

Usage: png_check.py FILE WIDTH HEIGHT [--min-colours N] [--colour RRGGBB ...]
The chunk structure is parsed here (zlib for the CRCs); the pixels are decoded with matplotlib's
imread. --colour asks that at least 50 pixels have exactly that colour (e.g. a run's line colour).
Prints one summary line; exit 1 with the reason when a check fails.
"""
import struct
import sys
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunks(blob):
    if blob[:8] != SIGNATURE:
        raise ValueError("no PNG signature")
    pos = 8
    while pos < len(blob):
        if pos + 12 > len(blob):
            raise ValueError(f"truncated chunk at offset {pos}")
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        data = blob[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", blob[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + data) != crc:
            raise ValueError(f"chunk {kind!r} at offset {pos}: CRC mismatch")
        yield kind, data
        pos += 12 + length


def check(path, width, height, min_colours, colours):
    with open(path, "rb") as f:
        blob = f.read()
    parsed = list(chunks(blob))
    if not parsed or parsed[0][0] != b"IHDR" or parsed[-1][0] != b"IEND":
        raise ValueError("chunks do not start with IHDR and end with IEND")
    w, h, depth, colour_type = struct.unpack(">IIBB", parsed[0][1][:10])
    if (w, h) != (width, height):
        raise ValueError(f"IHDR says {w} x {h}, expected {width} x {height}")
    if not any(kind == b"IDAT" for kind, _ in parsed):
        raise ValueError("no IDAT chunk")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image
    import numpy as np
    pixels = matplotlib.image.imread(path)
    rgb = np.round(pixels[:, :, :3] * 255).astype(np.uint32)
    packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
    values, counts = np.unique(packed, return_counts=True)
    if len(values) < min_colours:
        raise ValueError(f"only {len(values)} distinct colours (expected at least {min_colours}): blank?")
    found = dict(zip(values.tolist(), counts.tolist()))
    for colour in colours:
        n = found.get(int(colour, 16), 0)
        if n < 50:
            raise ValueError(f"colour #{colour}: {n} pixels, expected at least 50")
    return f"{path}: PNG {w} x {h}, bit depth {depth}, colour type {colour_type}, {len(values)} distinct colours"


def main(argv):
    path, width, height = argv[0], int(argv[1]), int(argv[2])
    min_colours, colours, rest = 16, [], argv[3:]
    while rest:
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "--min-colours":
            min_colours = int(value)
        elif flag == "--colour":
            colours.append(value)
        else:
            raise SystemExit(f"png_check: unknown flag {flag}")
    try:
        print(check(path, width, height, min_colours, colours))
    except (OSError, ValueError) as e:
        print(f"png_check: {path}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
