"""Stage 6: numeric verification of a generated module, and the rule that decides its verdict."""
