"""A replay written to disk at a clean stop and restored by `--resume`: one file format for both replays.

The file holds every shared array of the replay (items, frame ring, keys, the sum and min trees, the
insert and frame cursors), so a restored replay samples exactly as the saved one did and learning goes
on without a refill. Layout:

    16 bytes    b"ASYNCRL-REPLAY" and the format version (uint16, little-endian)
    raw arrays  each array's bytes, C order, starting at a 64-byte-aligned offset
    footer      JSON: format version, the replay's class and config, and per array its name, dtype,
                shape, offset, byte count and CRC-32
    16 bytes    the footer's length (uint64, little-endian) and b"RPLY-END"

Arrays are streamed straight from shared memory to the file, and back into shared memory, in
`CHUNK_BYTES` pieces: no second copy of the replay is built in memory. The footer comes last because
it holds the checksums, known only once the arrays are written; a file cut short loses it and is
refused before anything is read into the replay. The file is written under a temporary name and
renamed, so a run killed while saving leaves the previous file (or none), never half of one.

In a run directory the file is `replay-<env steps>.bin`, beside `ckpt-<env steps>.pt`: the replay of
that checkpoint (`common/checkpoint.py` names and prunes them; `common/recipe.py` TrainRun saves one
with the final checkpoint of a clean stop and restores it on --resume).
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # base.py's ReplayBase.save and .load call this module
    from common.replay.base import ReplayBase

FORMAT_VERSION = 4  # 4: this file format (3 was an .npz of the same arrays)
MAGIC = b"ASYNCRL-REPLAY"
HEADER = MAGIC + struct.pack("<H", FORMAT_VERSION)
END = b"RPLY-END"
TRAILER_BYTES = 16
ALIGN_BYTES = 64
CHUNK_BYTES = 64 << 20
PROGRESS_AFTER_SECONDS = 3.0  # a save or load that takes longer prints a progress line every so often
_NOT_SAVED = ("lock_holder",)  # which process holds the lock is this process's business, not the file's


def _config_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))  # tuples as lists, as the file has them


def _saved_arrays(replay: "ReplayBase") -> list[tuple[str, np.ndarray]]:
    return [(name, array) for name, array in replay.storage.arrays.arrays.items() if name not in _NOT_SAVED]


def _bytes_of(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1).view(np.uint8)  # shared arrays are C-contiguous: a view, not a copy


class _Progress:
    """Prints `verb ... N%` lines on stdout while a save or load runs for more than a few seconds."""

    def __init__(self, verb: str, path: Path, total_bytes: int, say: Callable[[str], None]):
        self.verb, self.path, self.total, self.say = verb, path, max(total_bytes, 1), say
        self.done = 0
        self.start = self.last = time.monotonic()

    def advance(self, num_bytes: int) -> None:
        self.done += num_bytes
        now = time.monotonic()
        if now - self.start >= PROGRESS_AFTER_SECONDS and now - self.last >= PROGRESS_AFTER_SECONDS:
            self.last = now
            self.say(f"{self.verb} {self.path}: {100 * self.done / self.total:.0f}% of {self.total / 2**30:.2f} GiB")

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.start


def save_replay(replay: "ReplayBase", path: Path | str, say: Callable[[str], None] = print) -> float:
    """Writes `replay` to `path` (atomically, streamed); returns the seconds it took.

    Writers wait on the replay's lock meanwhile; at a clean stop there are none left."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    arrays = _saved_arrays(replay)
    progress = _Progress("saving the replay to", path, sum(a.nbytes for _, a in arrays), say)
    entries = []
    try:
        with replay.storage.lock, open(tmp, "wb") as f:
            f.write(HEADER)
            for name, array in arrays:
                f.write(bytes(-f.tell() % ALIGN_BYTES))
                offset, crc, flat = f.tell(), 0, _bytes_of(array)
                for start in range(0, flat.size, CHUNK_BYTES):
                    chunk = flat[start:start + CHUNK_BYTES]
                    f.write(chunk)
                    crc = zlib.crc32(chunk, crc)
                    progress.advance(chunk.size)
                entries.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                                "offset": offset, "nbytes": int(flat.size), "crc32": crc})
            footer = json.dumps({"format_version": FORMAT_VERSION, "kind": type(replay).__name__,
                                 "config": _config_dict(replay.config), "arrays": entries}).encode()
            f.write(footer)
            f.write(struct.pack("<Q", len(footer)) + END)
        os.replace(tmp, path)
    except BaseException:  # a full disk, a second Ctrl-C: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        raise
    return progress.seconds


def _read_footer(f: Any, path: Path) -> dict[str, Any]:
    size = os.fstat(f.fileno()).st_size
    if f.read(len(HEADER)) != HEADER:
        raise ValueError(f"{path} is not an asyncrl replay file of format version {FORMAT_VERSION}")
    if size < len(HEADER) + TRAILER_BYTES:
        raise ValueError(f"{path} is truncated")
    f.seek(size - TRAILER_BYTES)
    length_bytes, end = f.read(8), f.read(8)
    length = struct.unpack("<Q", length_bytes)[0]
    if end != END or length > size - len(HEADER) - TRAILER_BYTES:
        raise ValueError(f"{path} is truncated or corrupt (no end marker)")
    f.seek(size - TRAILER_BYTES - length)
    try:
        footer = json.loads(f.read(length))
        arrays_end = max((e["offset"] + e["nbytes"] for e in footer["arrays"]), default=0)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is corrupt (unreadable footer: {type(err).__name__})") from None
    if arrays_end > size - TRAILER_BYTES - length:
        raise ValueError(f"{path} is truncated or corrupt (its arrays overrun the file)")
    return footer


def _check_layout(footer: dict[str, Any], replay: "ReplayBase", path: Path) -> None:
    """The file must describe this replay's arrays exactly; ValueError naming the first difference."""
    if footer.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {footer.get('format_version')}, expected {FORMAT_VERSION}")
    if footer.get("kind") != type(replay).__name__:
        raise ValueError(f"{path} holds a {footer.get('kind')}, not a {type(replay).__name__}")
    saved, ours = footer.get("config"), _config_dict(replay.config)
    if saved != ours:
        saved = saved if isinstance(saved, dict) else {}
        differences = ", ".join(f"{key} {saved.get(key)} (this run {value})" for key, value in ours.items()
                                if saved.get(key) != value)
        raise ValueError(f"{path} was saved by a replay of another config: {differences or saved}")
    expected = [(name, array.dtype.str, list(array.shape)) for name, array in _saved_arrays(replay)]
    found = [(e.get("name"), e.get("dtype"), e.get("shape")) for e in footer["arrays"]]
    if found != expected:
        raise ValueError(f"{path}: arrays {found} differ from this replay's {expected}")


def load_replay(replay: "ReplayBase", path: Path | str, say: Callable[[str], None] = print) -> float:
    """Replaces the contents, priorities, keys and cursors of `replay` with a `save_replay` file of
    a replay of the same class and config; returns the seconds it took.

    Raises ValueError for a file that is truncated, corrupt, of another format, class or config: a
    mismatch found before reading leaves the replay untouched; a checksum failure, found while reading,
    leaves it empty (as new). FileNotFoundError if there is no file."""
    path = Path(path)
    with open(path, "rb") as f:
        footer = _read_footer(f, path)
        _check_layout(footer, replay, path)
        arrays = dict(_saved_arrays(replay))
        progress = _Progress("restoring the replay from", path, sum(e["nbytes"] for e in footer["arrays"]), say)
        with replay.storage.lock:
            for entry in footer["arrays"]:
                f.seek(entry["offset"])
                flat, crc = _bytes_of(arrays[entry["name"]]), 0
                for start in range(0, flat.size, CHUNK_BYTES):
                    chunk = flat[start:start + CHUNK_BYTES]
                    if f.readinto(memoryview(chunk)) != chunk.size:
                        replay.clear()
                        raise ValueError(f"{path} is truncated")
                    crc = zlib.crc32(chunk, crc)
                    progress.advance(chunk.size)
                if crc != entry["crc32"]:
                    replay.clear()
                    raise ValueError(f"{path} is corrupt (checksum of {entry['name']} differs)")
    return progress.seconds
