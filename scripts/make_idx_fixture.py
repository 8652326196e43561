#!/usr/bin/env python3
"""Writes the tiny IDX fixture files of tests/test_idx.cpp into tests/data/idx/.

The good pair is 10 images of 4 x 3 pixels and 10 labels, with values given by
formulas that the test recomputes on its own:
    pixel p (0..11) of image i (0..9) = (12 * i + p) * 255 // 119   (0 .. 255)
    label of image i                  = (3 * i) % 10                (0, 3, 6, 9, 2, ...)
Next to it: one small file per other element type, broken variants (one
problem each), and two fake Fashion-MNIST folders for the loader.

Deterministic: run it again and the files come out byte for byte the same
(gzip with mtime 0). Usage: python3 scripts/make_idx_fixture.py
"""
import gzip
import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "idx"

# IDX element type codes and their big-endian struct formats.
UBYTE, BYTE, SHORT, INT, FLOAT, DOUBLE = 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E
FORMAT = {UBYTE: "B", BYTE: "b", SHORT: "h", INT: "i", FLOAT: "f", DOUBLE: "d"}


def header(type_code, dims):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def idx(type_code, dims, values):
    return header(type_code, dims) + struct.pack(">%d%s" % (len(values), FORMAT[type_code]), *values)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def write(name, data):
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main():
    pixels = [(12 * i + p) * 255 // 119 for i in range(10) for p in range(12)]
    labels = [(3 * i) % 10 for i in range(10)]
    images_idx = idx(UBYTE, [10, 4, 3], pixels)
    labels_idx = idx(UBYTE, [10], labels)

    # The good pair, plain and gzip'd.
    write("images.idx", images_idx)
    write("images.idx.gz", gz(images_idx))
    write("labels.idx", labels_idx)
    write("labels.idx.gz", gz(labels_idx))

    # One file per other element type (values exactly representable).
    write("byte.idx", idx(BYTE, [5], [-128, -1, 0, 1, 127]))
    write("short.idx", idx(SHORT, [2, 2], [-32768, -300, 1000, 32767]))
    write("int.idx", idx(INT, [4], [-2147483648, -70000, 0, 2147483647]))
    write("float.idx", idx(FLOAT, [1, 3], [-1.5, 0.25, 1024.0]))
    write("double.idx", idx(DOUBLE, [3], [-2.5, 1e-300, 0.1]))

    # Broken variants, one problem each.
    write("empty.idx", b"")
    write("bad-magic.idx", b"\x01" + labels_idx[1:])
    write("bad-type.idx", labels_idx[:2] + b"\x0a" + labels_idx[3:])
    write("rank-zero.idx", bytes([0, 0, UBYTE, 0]))
    write("truncated-header.idx", images_idx[:4 + 5])          # rank 3 needs 12 bytes of dims, has 5
    write("truncated-data.idx", images_idx[:-1])               # 119 of 120 data bytes
    write("truncated-data.idx.gz", gz(images_idx[:-1]))        # the same, found by reading, not by size
    write("trailing-bytes.idx", labels_idx + b"\x07\x07\x07")  # 13 data bytes where 10 are promised
    write("trailing-bytes.idx.gz", gz(labels_idx + b"\x07\x07\x07"))
    write("overflow-dims.idx", header(UBYTE, [0xFFFFFFFF] * 3))
    write("absurd-dims.idx.gz", gz(header(UBYTE, [1000000, 28, 28])))
    corrupt = bytearray(gz(labels_idx))
    corrupt[-8] ^= 0xFF                                        # the CRC-32 of the gzip trailer
    write("corrupt.idx.gz", bytes(corrupt))
    whole = gz(images_idx)
    write("truncated.idx.gz", whole[: len(whole) // 2])       # gzip stream cut in the middle

    # Fake Fashion-MNIST folders: a good one (plain files: the loader falls back
    # to the uncompressed names) with 10 train and 4 test samples, and one whose
    # train labels are one short.
    write("fashion-good/train-images-idx3-ubyte", images_idx)
    write("fashion-good/train-labels-idx1-ubyte", labels_idx)
    write("fashion-good/t10k-images-idx3-ubyte", idx(UBYTE, [4, 4, 3], pixels[:48]))
    write("fashion-good/t10k-labels-idx1-ubyte", idx(UBYTE, [4], labels[:4]))
    write("fashion-mismatch/train-images-idx3-ubyte.gz", gz(images_idx))
    write("fashion-mismatch/train-labels-idx1-ubyte.gz", gz(idx(UBYTE, [9], labels[:9])))
    write("fashion-mismatch/t10k-images-idx3-ubyte.gz", gz(images_idx))
    write("fashion-mismatch/t10k-labels-idx1-ubyte.gz", gz(labels_idx))


if __name__ == "__main__":
    main()
