"""Import a generated module from its source text (our own output, never user text)."""

from __future__ import annotations

import hashlib
import linecache
import sys
from types import ModuleType


def import_source(source: str, name: str = "derive_generated") -> ModuleType:
    """Compile ``source`` in memory and import it as a module; nothing is written to disk.

    The text is registered with :mod:`linecache`, so tracebacks and
    debuggers show the generated lines.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    module_name = f"{name}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    filename = f"<derive generated module {module_name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)  # derive's own output, see the docstring
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
