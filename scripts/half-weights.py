#!/usr/bin/env python3
"""Rewrites a .safetensors file with every float32 tensor stored as float16.

Usage: scripts/half-weights.py SRC.safetensors DST.safetensors

Why: the GPU check carries the model to a machine that can fetch nothing, within 64 MiB per
call; MiniLM's f32 weights are 87 MiB, its f16 weights 44 MiB. f16 keeps 11 significant bits,
far more than the bf16 arithmetic the GPU path runs in. Standard library only (struct's 'e'
format is IEEE half precision), so it runs wherever python3 does.
"""
import json
import struct
import sys
from array import array


def main(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + hlen])
    data = memoryview(blob)[8 + hlen :]
    out_header, chunks, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out_header[name] = info
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        dtype = info["dtype"]
        if dtype == "F32":
            values = array("f")
            values.frombytes(raw)
            if sys.byteorder != "little":
                values.byteswap()
            raw = struct.pack(f"<{len(values)}e", *values)
            dtype = "F16"
        chunks.append(bytes(raw))
        out_header[name] = {
            "dtype": dtype,
            "shape": info["shape"],
            "data_offsets": [offset, offset + len(raw)],
        }
        offset += len(raw)
    head = json.dumps(out_header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # data starts 8-byte aligned
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for c in chunks:
            f.write(c)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
