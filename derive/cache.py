"""An on-disk cache of results that are pure functions of their key (derivations, proofs, exact points).

The cache knows nothing of models: a caller names a kind of result and gives
the parts its result depends on (a model's canonical text, sizes, a seed);
:func:`cached` returns the stored result or computes and stores it.  Every
key also holds the package version, a hash of the package's own source
files and the versions of Python, NumPy and SymPy, so a changed ``derive``
never reads an entry an older one wrote.

Entries are pickles behind a header that names the key, the package hash
and a SHA-256 of the pickle; an entry whose header or digest does not match
is ignored (and recomputed), so a truncated, corrupt or stale file is never
unpickled.  Reading a pickle can run code, so the folder must be the user's
own: one owned by someone else, or writable by others, is not used.
Entries are written to a temporary file and renamed into place, so
concurrent writers (a class graded in parallel) never leave half an entry.
docs/cache.md says where the folder is and how to turn the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

from . import __version__

ENV_DIR = "DERIVE_CACHE_DIR"
"""Environment variable naming the cache folder (default: the platform's user cache folder)."""

ENV_OFF = "DERIVE_NO_CACHE"
"""Environment variable that turns the cache off when set to anything but ``""`` or ``0``."""

ENV_MAX_MB = "DERIVE_CACHE_MAX_MB"
"""Environment variable setting the size cap in MiB (default :data:`MAX_MB`)."""

MAX_MB = 256
"""Default cap on the folder's entries; past it the least recently used are deleted."""

PRUNE_TO = 0.75
"""Pruning deletes the least recently used entries until this fraction of the cap is left."""

ORPHAN_SECONDS = 3600.0
"""A temporary file this old was left by a writer that was killed; pruning deletes it."""

MAGIC = b"derive-cache 1\n"
SUFFIX = ".entry"

T = TypeVar("T")


class _State:
    """Process-wide switches and counters (a forked worker inherits them)."""

    def __init__(self) -> None:
        self.override: Optional[bool] = None  # None: the environment decides
        self.broken = False  # the folder proved unusable: no cache for this process
        self.hits = 0
        self.misses = 0
        self.stores = 0
        self.fingerprint: Optional[str] = None


STATE = _State()


def default_dir() -> Path:
    """The user's cache folder for ``derive`` by the platform's conventions.

    ``%LOCALAPPDATA%\\derive\\Cache`` on Windows, ``~/Library/Caches/derive``
    on macOS, ``$XDG_CACHE_HOME/derive`` (default ``~/.cache/derive``) elsewhere.
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "derive" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "derive"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "derive"


def cache_dir() -> Path:
    """The cache folder: ``DERIVE_CACHE_DIR`` if set, else :func:`default_dir`."""
    given = os.environ.get(ENV_DIR, "")
    return Path(given) if given else default_dir()


def enabled() -> bool:
    """Whether results are read from and written to the cache now."""
    if STATE.broken:
        return False
    if STATE.override is not None:
        return STATE.override
    return os.environ.get(ENV_OFF, "") in ("", "0")


def set_enabled(on: Optional[bool]) -> None:
    """Turn the cache on or off for this process (None: as ``DERIVE_NO_CACHE`` says)."""
    STATE.override = on


@contextlib.contextmanager
def using(on: bool) -> Iterator[None]:
    """Within the block the cache is on (when ``DERIVE_NO_CACHE`` allows it) or off."""
    before = STATE.override
    if not on:
        STATE.override = False
    try:
        yield
    finally:
        STATE.override = before


def package_fingerprint() -> str:
    """A hash of the version, the package's ``.py`` files and the Python, NumPy and SymPy versions."""
    if STATE.fingerprint is None:
        digest = hashlib.sha256()
        versions = [__version__, sys.version]
        for name in ("numpy", "sympy"):
            module = sys.modules.get(name)
            versions.append(f"{name} {getattr(module, '__version__', '?') if module else _version_of(name)}")
        digest.update("\n".join(versions).encode())
        root = Path(__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            digest.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
        STATE.fingerprint = digest.hexdigest()
    return STATE.fingerprint


def _version_of(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def make_key(kind: str, *parts: object) -> str:
    """The entry's name: a SHA-256 of the fingerprint, the kind and the parts' ``repr``.

    The parts must have a deterministic ``repr`` (text, numbers, tuples,
    sorted dicts); the caller canonicalises them.
    """
    text = repr((package_fingerprint(), kind, parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _header(key: str, payload: bytes) -> bytes:
    return MAGIC + f"{key} {package_fingerprint()} {hashlib.sha256(payload).hexdigest()}\n".encode()


class NotOwnFolder(OSError):
    """The cache folder belongs to someone else or others may write in it: its pickles are not read."""


def _check_own(folder: Path) -> None:
    """Raise :class:`NotOwnFolder` unless the user owns ``folder`` and no one else may write in it."""
    if os.name != "posix":
        return
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise NotOwnFolder("it is not the user's own: another owner, or writable by others")


def _usable(folder: Path) -> None:
    """Make the folder (private) if it is missing; raise OSError unless it is the user's own."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_own(folder)


def _warn(folder: Path, err: BaseException) -> None:
    if not STATE.broken:
        STATE.broken = True
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        reason = reason or type(err).__name__
        print(f"derive: cache: cannot use {folder} ({reason}); going on without a cache "
              f"(set {ENV_DIR} or --no-cache)", file=sys.stderr)


def load(key: str) -> tuple[bool, object]:
    """(True, value) when a sound entry for ``key`` is stored, else (False, None)."""
    folder = cache_dir()
    path = folder / (key + SUFFIX)
    try:
        _check_own(folder)
    except NotOwnFolder as err:
        _warn(folder, err)
        return False, None
    except OSError:  # no folder yet: nothing stored
        return False, None
    try:
        data = path.read_bytes()
    except OSError:
        return False, None
    try:
        head, payload = data[len(MAGIC):].split(b"\n", 1)
        name, fingerprint, digest = head.decode("ascii").split(" ")
        sound = (data.startswith(MAGIC) and name == key and fingerprint == package_fingerprint()
                 and hashlib.sha256(payload).hexdigest() == digest)
        if not sound:
            return False, None
        value = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - any damage is a miss; the result is recomputed
        return False, None
    with contextlib.suppress(OSError):
        os.utime(path)  # pruning deletes the least recently used
    return True, value


def store(key: str, value: object) -> None:
    """Write the entry atomically; an unusable folder turns the cache off with one line on stderr."""
    folder = cache_dir()
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a result that cannot be pickled is simply not kept
        return
    try:
        _usable(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=SUFFIX + ".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_header(key, payload))
                f.write(payload)
            os.replace(tmp, folder / (key + SUFFIX))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as err:
        _warn(folder, err)
        return
    STATE.stores += 1
    prune(folder)


def preflight() -> None:
    """Check the folder once before forking workers, so an unusable one is said once, not by each worker."""
    if enabled():
        folder = cache_dir()
        try:
            _usable(folder)
        except OSError as err:
            _warn(folder, err)


def max_bytes() -> int:
    """The size cap in bytes (``DERIVE_CACHE_MAX_MB``, default :data:`MAX_MB`)."""
    text = os.environ.get(ENV_MAX_MB, "")
    try:
        mb = float(text) if text else MAX_MB
    except ValueError:
        mb = MAX_MB
    return int(max(mb, 0.0) * 2 ** 20)


def prune(folder: Optional[Path] = None, cap: Optional[int] = None) -> int:
    """Delete the least recently used entries while the folder holds more than the cap.

    Returns the number of entries deleted.  Entries another process deletes
    at the same time are skipped; temporary files a killed writer left are
    deleted after :data:`ORPHAN_SECONDS`.
    """
    folder = cache_dir() if folder is None else folder
    cap = max_bytes() if cap is None else cap
    entries = []
    now = time.time()
    try:
        with os.scandir(folder) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                        info = entry.stat()
                        entries.append((info.st_mtime, info.st_size, entry.path))
                    elif entry.name.startswith(".tmp-") and now - entry.stat().st_mtime > ORPHAN_SECONDS:
                        os.unlink(entry.path)  # a writer killed mid-write (a worker past its time limit)
    except OSError:
        return 0
    total = sum(size for _, size, _ in entries)
    if total <= cap:
        return 0
    deleted = 0
    for _, size, path in sorted(entries):
        if total <= cap * PRUNE_TO:
            break
        with contextlib.suppress(OSError):
            os.unlink(path)
            deleted += 1
        total -= size
    return deleted


def cached(kind: str, parts: tuple, compute: Callable[[], T], keep: Optional[Callable[[T], bool]] = None) -> T:
    """``compute()``, or its stored result for (``kind``, ``parts``) when there is a sound one.

    Parameters
    ----------
    kind : str
        What is computed (``"prove"``), so different results never share a key.
    parts : tuple
        Everything the result depends on besides the package, with a
        deterministic ``repr``.
    compute : callable
        Computes the result when it is not stored.
    keep : callable, optional
        Whether a computed result may be stored (default: every one).

    Returns
    -------
    object
        The result, stored for the next run when the cache is on.
    """
    if not enabled():
        return compute()
    try:
        key = make_key(kind, *parts)
    except OSError as err:  # the package's own files cannot be read: no key, no cache
        _warn(Path(__file__).parent, err)
        return compute()
    found, value = load(key)
    if found:
        STATE.hits += 1
        return value  # type: ignore[return-value]
    STATE.misses += 1
    value = compute()
    if keep is None or keep(value):
        store(key, value)
    return value
