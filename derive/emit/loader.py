"""Import a generated module from its source text (our own output, never user text)."""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import linecache
import sys
from types import ModuleType


class _SourceInMemory(importlib.abc.SourceLoader):
    """An import loader whose "file" is a string: nothing is written to disk."""

    def __init__(self, source: str, filename: str):
        self.source = source
        self.filename = filename

    def get_filename(self, fullname: str) -> str:
        return self.filename

    def get_data(self, path: str) -> bytes:
        return self.source.encode("utf-8")


def import_source(source: str, name: str = "derive_generated") -> ModuleType:
    """Import ``source`` as a module through the import system, from memory.

    The text is registered with :mod:`linecache`, so tracebacks and
    debuggers show the generated lines.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    module_name = f"{name}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader = _SourceInMemory(source, f"<derive generated module {module_name}>")
    linecache.cache[loader.filename] = (len(source), None, source.splitlines(True), loader.filename)
    spec = importlib.util.spec_from_loader(module_name, loader, origin=loader.filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
