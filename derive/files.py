"""Writing output files whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError


def publish(tmp: str, target) -> None:
    """Move a finished temporary file into place with ordinary permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private (0600)
    os.replace(tmp, target)


def write_atomically(path: str, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` via a temporary file, so nothing half-written is left."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file name", path)
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: there is no folder {folder}", path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8")) as f:
            f.write(text)
        publish(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
