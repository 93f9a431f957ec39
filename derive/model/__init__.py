"""Stage 2: building a model from statements and checking its shapes."""
