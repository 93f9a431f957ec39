"""Import a generated module from its source text (our own output, never user text)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType


def import_source(source: str, name: str = "derive_generated") -> ModuleType:
    """Write ``source`` to a private temporary file and import it as a module."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    module_name = f"{name}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = Path(tempfile.mkdtemp(prefix="derive-"))
    path = folder / f"{module_name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[module_name] = module
    return module
