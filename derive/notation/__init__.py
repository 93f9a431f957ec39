"""Stage 1: the notation: lexer, parser, expression trees, plain-text printer."""
