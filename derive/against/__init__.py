"""Checking a user's own backward pass against the derivation: compare, localise, name the slip (``derive against``)."""
