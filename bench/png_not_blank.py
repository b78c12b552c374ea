#!/usr/bin/env python3
"""Checks that PNG screenshots are not blank: decodes them (8-bit RGB/RGBA, as Chromium writes
them) with the standard library only, and requires a share of non-background pixels and several
distinct colours. Usage: png_not_blank.py FILE.png [...]; exit 1 if any looks blank."""
import struct
import sys
import zlib


def pixels(path):
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    offset, idat, header = 8, b"", None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunk = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour})")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous, position = [], bytearray(stride), 0
    for _ in range(height):
        kind = raw[position]
        line = bytearray(raw[position + 1:position + 1 + stride])
        position += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + predictor) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def main():
    failed = False
    for path in sys.argv[1:]:
        width, height, channels, rows = pixels(path)
        colours, ink = set(), 0
        for row in rows[::2]:
            for x in range(0, width * channels, channels * 2):
                pixel = row[x:x + 3]
                colours.add(pixel)
                if pixel != b"\xff\xff\xff":
                    ink += 1
        sampled = (height // 2 + height % 2) * (width // 2 + width % 2)
        share = ink / sampled
        blank = share < 0.01 or len(colours) < 4
        failed |= blank
        print(f"{path}: {width}x{height}, {share:.1%} drawn, {len(colours)} colours: "
              + ("BLANK" if blank else "ok"))
    sys.exit(1 if failed else 0)


main()
