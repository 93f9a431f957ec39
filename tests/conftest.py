"""Test-wide settings: the on-disk cache of derivations and proofs is off, and never the user's own.

Every test computes its derivations and proofs afresh (``DERIVE_NO_CACHE=1``),
so a slower derive still shows as slower tests and no test reads a result
another test, or an earlier run, stored.  The cache folder is a temporary
folder of the session all the same, so nothing can reach the user's cache;
``tests/test_cache.py`` turns the cache on in folders of its own.
"""

import os
import shutil
import tempfile

_SESSION_CACHE = tempfile.mkdtemp(prefix="derive-test-cache-")
os.environ["DERIVE_CACHE_DIR"] = _SESSION_CACHE
os.environ["DERIVE_NO_CACHE"] = "1"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
