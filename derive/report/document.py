"""The LaTeX document a report is written into: its preamble, lines, listings, and the built result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from .latex import DISPLAY_WIDTH, ascii_fold, escape_text, math_width

PREAMBLE = r"""\documentclass[11pt]{article}
\ifdefined\pdfinfoomitdate \pdfinfoomitdate=1 \fi
\ifdefined\pdftrailerid \pdftrailerid{} \fi
\ifdefined\pdfsuppressptexinfo \pdfsuppressptexinfo=-1 \fi
\usepackage[margin=2.2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{array,booktabs,longtable}
\usepackage{xcolor}
\usepackage{listings}
\lstset{basicstyle=\ttfamily\footnotesize,columns=fullflexible,keepspaces=true,
  breaklines=true,numbers=left,numberstyle=\tiny,numbersep=6pt,showstringspaces=false,
  frame=lines,framesep=4pt}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\setlength{\emergencystretch}{3em}
\tolerance=1000
\newcommand{\verdict}[1]{\textbf{#1}}
"""


class Doc:
    """Accumulates LaTeX lines."""

    def __init__(self):
        self.lines: List[str] = []

    def add(self, *lines: str):
        self.lines.extend(lines)

    def para(self, text: str):
        self.lines += [text, ""]

    def display(self, math: str, tag: Optional[int] = None):
        if tag is None:
            self.lines += [r"\[", math, r"\]"]
        else:
            self.lines += [r"\begin{equation*}", math + r" \tag{%d}" % tag, r"\end{equation*}"]

    def display_sum(self, lhs: str, parts: List[str], tag: Optional[int] = None, relation: str = "="):
        """Display ``lhs = part_1 + part_2 ...``, broken over lines when it is too wide for the page.

        ``parts`` are the terms after the first led by ``+`` or ``-``
        (:func:`derive.report.typeset.signed`). The lines are filled
        greedily up to :data:`~derive.report.latex.DISPLAY_WIDTH`, aligned
        after the relation in a ``split``.
        """
        parts = parts or ["0"]
        lines, width = [[]], math_width(lhs) + 3
        for part in parts:
            w = math_width(part)
            if lines[-1] and width + w > DISPLAY_WIDTH:
                lines.append([])
                width = math_width(lhs) + 6
            lines[-1].append(part)
            width += w
        if len(lines) == 1 and width <= DISPLAY_WIDTH:
            self.display(f"{lhs} {relation} {' '.join(parts)}", tag)
            return
        if len(lines[0]) == 1 and width > DISPLAY_WIDTH:  # one term too wide beside the lhs: it gets a line of its own
            lines.insert(0, [])
        rows = [rf"{lhs} &{relation} {' '.join(lines[0])}"]
        rows += [r"&\quad {} " + " ".join(line) for line in lines[1:]]
        self.display("\\begin{split}\n" + " \\\\\n".join(rows) + "\n\\end{split}", tag)

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


@dataclass
class Report:
    """A built report: the ``.tex`` text and whether every check inside held."""

    tex: str
    passed: bool


def begin_document(doc: Doc, title: str, subtitle: str):
    """Open the document: preamble, title block and ``\\begin{document}``.

    Parameters
    ----------
    doc : Doc
        The empty document.
    title, subtitle : str
        LaTeX text for ``\\title`` and ``\\author``.
    """
    doc.add(PREAMBLE.rstrip("\n"), "", rf"\title{{{title}}}",
            rf"\author{{{subtitle}}}", r"\date{}", "", r"\begin{document}", r"\maketitle", "")


def listing(doc: Doc, text: str, title: str, numbers: bool = False):
    """A verbatim listing (ASCII-folded: listings takes no multibyte characters)."""
    body = ascii_fold(text).rstrip("\n")
    body = body.replace(r"\end{lstlisting}", r"\end {lstlisting}")
    opts = f"title={{{escape_text(title)}}}" + ("" if numbers else ",numbers=none")
    doc.add(rf"\begin{{lstlisting}}[{opts}]", body, r"\end{lstlisting}", "")


def say(progress, text):
    """Tell ``progress`` (a text stream, or None) what the report is doing now."""
    if progress is not None:
        print(f"derive report: {text}", file=progress)
