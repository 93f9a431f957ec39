"""Stage 7: reading a claims file, deciding verdicts, repairs, naming terms."""
