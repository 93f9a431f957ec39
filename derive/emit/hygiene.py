"""Hygienic names in generated modules: no user name can shadow another name.

The writers spell every name the user chose (a size, a symbol, and the
identifiers built from them, such as ``dL_dW_hh``) through a placeholder:
``__s1_V`` for the size ``V``, ``__u4_W_hh`` for the symbol ``W_hh``
(the digits are the name's length, so the placeholder reads back without
ambiguity; model names start with a letter, so no name of the notation
contains a placeholder). Every other identifier in the module's code is
the module's own: its helpers, locals, the NumPy alias, Python's keywords
and builtins. :func:`finalize` then gives each user name its own spelling
wherever it does not collide with one of those or with another user name,
and otherwise appends ``_`` until it does not (``V`` the size stays ``V``,
``V`` the parameter becomes ``V_``; a parameter ``dL_dW_hh`` beside
``W_hh`` becomes ``dL_dW_hh_``).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from typing import Dict, List, Set, Tuple

PLACEHOLDER = re.compile(r"__([su])(\d+)_")
TOKEN = re.compile(r"\b\w*__[su]\d+_\w*")


def size_placeholder(name: str) -> str:
    """The placeholder of a size's variable."""
    return f"__s{len(name)}_{name}"


def symbol_placeholder(name: str) -> str:
    """The placeholder of a symbol's variable."""
    return f"__u{len(name)}_{name}"


def _split(token: str) -> Tuple[str, Tuple[str, str], str]:
    """``dL_d__u4_W_hh`` -> (``dL_d``, (``u``, ``W_hh``), ``''``); one placeholder per token."""
    m = PLACEHOLDER.search(token)
    start = m.end()
    name = token[start:start + int(m[2])]
    rest = token[start + int(m[2]):]
    if PLACEHOLDER.search(rest):
        raise ValueError(f"two user names in one identifier: {token}")
    return token[:m.start()], (m[1], name), rest


def _names_in(node: ast.AST) -> Set[str]:
    """The variable names a piece of code binds or reads (attributes are not variables)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
    return out


def _visible_names(source: str) -> Set[str]:
    """The names a user name could collide with.

    Those of the module's top level (its globals, helper names, imports) and
    every name inside a function that holds a user name; a helper's own locals
    (``n`` in ``_onehot(classes, n)``) are out of the user names' scope.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)  # ast.get_source_segment splits the source anew at every call
    out: Set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            out.add(stmt.name)
            out |= {d.id for d in stmt.decorator_list if isinstance(d, ast.Name)}
            if PLACEHOLDER.search("".join(lines[stmt.lineno - 1:stmt.end_lineno])):
                out |= _names_in(stmt)
        else:
            out |= _names_in(stmt)
    return {n for n in out if not PLACEHOLDER.search(n)}


def finalize(source: str) -> Tuple[str, Dict[str, str]]:
    """Replace the placeholders of ``source`` by collision-free names.

    Returns
    -------
    (str, dict)
        The module's text, and the final spelling of every identifier that
        held a placeholder (``dL_d__u4_W_hh`` -> ``dL_dW_hh``), for callers
        that read the module's locals.
    """
    taken = _visible_names(source)
    taken |= set(keyword.kwlist) | set(getattr(keyword, "softkwlist", [])) | set(dir(builtins))
    templated = sorted(set(TOKEN.findall(source)))
    uses: Dict[Tuple[str, str], List[Tuple[str, str, str]]] = {}
    for token in templated:
        head, key, tail = _split(token)
        uses.setdefault(key, []).append((token, head, tail))
    final: Dict[str, str] = {}
    used = set(taken)
    for key in sorted(uses, key=lambda k: (k[0] != "s", k[1])):  # sizes keep their names first
        spelling = key[1]
        while any(head + spelling + tail in used for _, head, tail in uses[key]):
            spelling += "_"
        for token, head, tail in uses[key]:
            final[token] = head + spelling + tail
            used.add(final[token])

    return TOKEN.sub(lambda m: final[m.group()], source), final


def spelled_as(token: str) -> str:
    """A token as the user wrote it (``__u4_W_hh`` -> ``W_hh``), for sorting before :func:`finalize`."""
    return PLACEHOLDER.sub("", token)
