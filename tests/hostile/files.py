"""Fixture files for hostile cases: a small valid trace and real-tree results, and ways to break them.

Everything is built from the bundled data with numpy and zipfile alone (never through brw), so a bug in brw's
writers cannot hide a bug in its readers.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "brw" / "data"


def _load(name: str) -> dict:
    with np.load(DATA / name, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@lru_cache(maxsize=None)
def _trace() -> tuple:
    a = _load("smollm2-code.npz")
    keep = a["context"] < 2
    off = a["context_offsets"][:3]
    out = {k: a[k][keep] for k in ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass", "taken",
                                   "taken_logp", "context", "offset")}
    out.update(schema_version=a["schema_version"], format=a["format"], meta=a["meta"],
               context_tokens=a["context_tokens"][:off[-1]], context_offsets=off,
               prompt_lengths=a["prompt_lengths"][:2])
    return tuple(out.items())


def trace_arrays() -> dict:
    """A valid trace of two contexts (about 300 rows) cut from the bundled code trace: fresh copies."""
    return {k: np.array(v, copy=True) for k, v in _trace()}


@lru_cache(maxsize=None)
def _results() -> tuple:
    a = _load("realtrees-smollm2.npz")
    meta = json.loads(str(a["meta"]))
    keep = np.zeros(a["source"].shape[0], dtype=bool)
    for s in range(len(meta["sources"])):
        keep[np.flatnonzero(a["source"] == s)[:3]] = True
    out = {k: (a[k][keep] if a[k].ndim else a[k]) for k in a}
    return tuple(out.items())


def results_arrays() -> dict:
    """Valid real-tree results: three contexts of each bundled source."""
    return {k: np.array(v, copy=True) for k, v in _results()}


def npz(arrays: dict, compressed: bool = True) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=True)
    return buf.getvalue()


def npy_header(shape, descr: str = "<f8") -> bytes:
    """A version 1.0 .npy header claiming ``shape`` of ``descr``, with no data after it."""
    head = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    pad = 64 - (10 + len(head) + 1) % 64
    head += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head


def zip_members(members: list[tuple[str, bytes]], deflate: bool = False) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # a duplicate name is the point of some cases
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def zip_reads(data: bytes) -> bool:
    """Whether zipfile reads every member of an archive without complaint (CRC included)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                zf.read(info)
        return True
    except Exception:  # noqa: BLE001 - any complaint is an answer
        return False


def data_ranges(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each member's stored bytes inside a zip archive."""
    out = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            out.append((start, start + info.compress_size))
    return out


@lru_cache(maxsize=None)
def _crc(head: bytes, zeros: int) -> int:
    """CRC-32 of ``head`` followed by ``zeros`` zero bytes."""
    crc = zlib.crc32(head)
    block = bytes(1 << 24)
    while zeros:
        step = min(zeros, len(block))
        crc = zlib.crc32(memoryview(block)[:step], crc)
        zeros -= step
    return crc


def sparse_zip(members: list[tuple[str, bytes]], big_name: str, big_size: int, big_head: bytes = b""):
    """A writer of a zip archive (stored members) holding ``members`` and one member ``big_name`` of
    ``big_size`` bytes, ``big_head`` then zeros, with a correct CRC, written sparse: a few kilobytes on disk
    however large it claims to be (zip64 records, so that any size is a valid archive)."""
    def write(path: Path) -> None:
        crc_big = _crc(big_head, big_size - len(big_head))
        central = []
        with open(path, "wb") as f:
            for name, data in members:
                n = name.encode()
                crc = zlib.crc32(data)
                central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, len(data),
                                           len(data), len(n), 0, 0, 0, 0, 0, f.tell()) + n)
                f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data), len(n),
                                    0) + n + data)
            n = big_name.encode()
            at = f.tell()
            extra = struct.pack("<HHQQ", 1, 16, big_size, big_size)
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc_big, 0xFFFFFFFF, 0xFFFFFFFF,
                                len(n), len(extra)) + n + extra + big_head)
            f.seek(big_size - len(big_head), 1)
            extra = struct.pack("<HHQQQ", 1, 24, big_size, big_size, at)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc_big, 0xFFFFFFFF,
                                       0xFFFFFFFF, len(n), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + n + extra)
            cd_at = f.tell()
            cd = b"".join(central)
            f.write(cd)
            z64_at = f.tell()
            count = len(central)
            f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(cd), cd_at))
            f.write(struct.pack("<IIQI", 0x07064B50, 0, z64_at, 1))
            f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))

    return write


def sparse_file(size: int, head: bytes = b""):
    """A writer of a file of ``size`` bytes that takes no room on disk beyond ``head``."""

    def write(path: Path) -> None:
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(size)

    return write


def nested_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def chat_logprobs(positions: int = 3, k: int = 3) -> dict:
    """A valid chat-completions logprobs response (two distributions of k tokens per position)."""
    content = []
    for j in range(positions):
        tops = [{"token": f"t{i}", "logprob": -0.5 - i} for i in range(k)]
        content.append({"token": "t0", "logprob": -0.5, "top_logprobs": tops})
    return {"choices": [{"index": 0, "logprobs": {"content": content}}]}


def completion_logprobs(positions: int = 3, k: int = 3) -> dict:
    tops = [{f"t{i}": -0.5 - i for i in range(k)} for _ in range(positions)]
    return {"choices": [{"logprobs": {"tokens": ["t0"] * positions, "token_logprobs": [-0.5] * positions,
                                      "top_logprobs": tops}}]}
