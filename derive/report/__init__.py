"""Stage 8: the LaTeX derivation report: printer, figures, sections."""
