"""Stage 4: NumPy code from a derivation: the printer, the readable and fast module writers, threads."""
