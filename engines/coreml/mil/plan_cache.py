"""The load cache of a package: its lowered functions as JSON and memory-mapped ``.npy`` arrays.

It lives next to the package, in ``<folder>/.anechat-cache/<package stem>-<fingerprint>/``
(``plan.json`` + ``arrays/<n>.npy``), so a second load reads no protobuf, imports no
coremltools and dequantizes nothing: the weights come back from memory-mapped files of
the values the first load computed. fp32 arrays whose values are all fp16 numbers (every
weight of an fp16 or LUT package) are stored in fp16, half the size, and widened once
as they are read back; other arrays come back as read-only memory maps. The fingerprint covers the package's contents
(the model spec's bytes in full; each weight file's size, modification time and sampled
blocks), so a changed package misses the cache and replaces it. A cache that cannot be
read or written (read-only folder, full disk, a damaged file) is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

CACHE_DIR = ".anechat-cache"
#: bump when the record format or what the kernels expect of it changes
FORMAT = 2
_SAMPLES = 16
_SAMPLE_BYTES = 1 << 16


def fingerprint(package: Path) -> str:
    """A hash of the package's contents: every file's path and size, the spec's bytes, and
    for large files their modification time and ``_SAMPLES`` blocks spread over them."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"anechat-mil-cache {FORMAT}".encode())
    for path in sorted(p for p in package.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(package).as_posix()}\0{st.st_size}\0".encode())
        with open(path, "rb") as f:
            if st.st_size <= _SAMPLES * _SAMPLE_BYTES:
                h.update(f.read())
                continue
            h.update(str(st.st_mtime_ns).encode())
            for i in range(_SAMPLES):
                f.seek((st.st_size - _SAMPLE_BYTES) * i // (_SAMPLES - 1))
                h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()


class PlanCache:
    """The cache entry of one package (it may not exist yet)."""

    def __init__(self, package: Path) -> None:
        self.package = Path(package)
        self.root = self.package.parent / CACHE_DIR
        self.dir = self.root / f"{self.package.stem}-{fingerprint(self.package)}"

    def load(self) -> tuple[dict, list[np.ndarray]] | None:
        """(records by function name, arrays memory-mapped read-only), or None on a miss."""
        try:
            plan = json.loads((self.dir / "plan.json").read_text(encoding="utf-8"))
            if plan.get("format") != FORMAT:
                return None
            narrow = set(plan["fp16"])
            arrays = []
            for i in range(int(plan["arrays"])):
                a = np.load(self.dir / "arrays" / f"{i}.npy", mmap_mode="r", allow_pickle=False)
                arrays.append(_widen(a) if i in narrow else a)
            return dict(plan["functions"]), arrays
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, records: dict[str, dict], arrays: list[np.ndarray]) -> bool:
        """Write the entry (replacing older entries of this package); False when it cannot."""
        tmp = None
        try:
            self.root.mkdir(exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.dir.name}.", dir=self.root))
            (tmp / "arrays").mkdir()
            narrow = []
            for i, a in enumerate(arrays):
                a = np.ascontiguousarray(a)
                half = _narrowed(a)
                if half is not None:
                    a = half
                    narrow.append(i)
                np.save(tmp / "arrays" / f"{i}.npy", a, allow_pickle=False)
            plan = {"format": FORMAT, "arrays": len(arrays), "fp16": narrow, "functions": records}
            (tmp / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
            for old in self.root.glob(f"{self.package.stem}-*"):
                if old.is_dir() and old.name.rsplit("-", 1)[0] == self.package.stem:
                    shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, self.dir)
            return True
        except OSError:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            return False


#: arrays smaller than this stay as they are (not worth a conversion on every load)
_NARROW_MIN_SIZE = 1024


def _narrowed(a: np.ndarray) -> np.ndarray | None:
    """``a`` in fp16 when it is a large fp32 array of fp16 numbers only, else None."""
    if a.dtype != np.float32 or a.size < _NARROW_MIN_SIZE:
        return None
    with np.errstate(over="ignore"):
        half = a.astype(np.float16)
    return half if np.array_equal(half.astype(np.float32), a) else None


def _widen(a: np.ndarray) -> np.ndarray:
    out = a.astype(np.float32)
    out.flags.writeable = False  # like the memory maps: shared by functions, never written
    return out


class ArrayStore:
    """Collects the arrays of the records being written, each array object once."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self._index: dict[int, int] = {}

    def __call__(self, array: np.ndarray) -> int:
        if id(array) not in self._index:
            self._index[id(array)] = len(self.arrays)
            self.arrays.append(array)
        return self._index[id(array)]
