#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

corpus/idx/: small valid IDX files of every element type (plain and gzip'd)
and a few broken ones; corpus/safetensors/: small valid files (F32, F64, other
dtypes, a scalar, a zero-sized tensor, metadata) and a few broken ones. The fuzzer
mutates these, so they only need to reach the interesting code paths.
Deterministic (gzip mtime 0). Usage: python3 tests/fuzz/make_corpus.py
"""
import gzip
import json
import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus"


def write(kind, name, data):
    path = OUT / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def idx(code, fmt, dims, values):
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + struct.pack(">%d%s" % (len(values), fmt), *values)


# struct codes of some dtypes (F16 as raw 16-bit patterns).
CODES = {"F32": "f", "F64": "d", "I64": "q", "U8": "B", "F16": "H", "BF16": "H", "BOOL": "?"}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, values); laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, values in tensors:
        raw = struct.pack("<%d%s" % (len(values), CODES[dtype]), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    images = idx(0x08, "B", [3, 2, 2], list(range(0, 240, 20)))
    write("idx", "images.idx", images)
    write("idx", "images.idx.gz", gzip.compress(images, mtime=0))
    write("idx", "labels.idx", idx(0x08, "B", [4], [0, 3, 6, 9]))
    write("idx", "byte.idx", idx(0x09, "b", [3], [-128, 0, 127]))
    write("idx", "short.idx", idx(0x0B, "h", [2, 1], [-300, 1000]))
    write("idx", "int.idx", idx(0x0C, "i", [1, 2], [-70000, 2147483647]))
    write("idx", "float.idx", idx(0x0D, "f", [2, 1, 1], [-1.5, 0.25]))
    write("idx", "double.idx", idx(0x0E, "d", [1], [0.1]))
    write("idx", "zero-records.idx", idx(0x08, "B", [0, 5], []))
    write("idx", "truncated.idx", images[:-1])
    write("idx", "bad-type.idx", bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 7]))

    write("safetensors", "f32.safetensors", safetensors([("w", "F32", [2, 3], [1, -2, 0.5, 0, 3, 4])]))
    write("safetensors", "mixed.safetensors",
          safetensors([("a", "F64", [2], [0.1, -1e300]), ("b", "F32", [], [7]), ("c", "F32", [0, 3], [])],
                      {"format": "pt", "k": "v"}))
    write("safetensors", "empty.safetensors", safetensors([]))
    write("safetensors", "other-dtypes.safetensors",
          safetensors([("n", "I64", [], [20]), ("h", "F16", [2], [0x3C00, 0x7E00]), ("b", "BF16", [1], [0x3F80]),
                       ("u", "U8", [2], [0, 255]), ("q", "BOOL", [1], [True])]))
    write("safetensors", "unpadded.safetensors", safetensors([("x", "F64", [1, 1], [2.5])], pad=False))
    both_at_0 = (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                 b'"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')
    write("safetensors", "overlap.safetensors", struct.pack("<Q", len(both_at_0)) + both_at_0 + b"\0" * 4)
    write("safetensors", "unknown-dtype.safetensors",
          safetensors([("h", "F32", [1], [1])]).replace(b"F32", b"Q32"))


if __name__ == "__main__":
    main()
