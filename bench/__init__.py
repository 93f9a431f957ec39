"""Benchmarks of ``derive``: derivation cost, gradient speed, verification cost, memory.

Run ``python -m bench`` (``--quick`` for a short run); it rewrites
``bench/results.md``. Nothing here is imported by the library or the tests.
"""
