"""Stage 3: VJP rules, the matrix reverse sweep, the exact elementwise sweep, the simplifier and the prover."""
