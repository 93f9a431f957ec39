"""Benchmarks of ``derive``: derivation cost, gradient speed, verification cost, memory.

Run ``python -m bench`` (``--quick`` for a short run); a full run rewrites
the tables of ``bench/README.md``. Nothing here is imported by the library or the tests.
"""
