"""``derive check``: read a claims file, check every claim, print the listing or JSON."""

from __future__ import annotations

import json
import time
from typing import Optional, TextIO

from ..errors import InputError
from ..limits import COMMAND_SECONDS
from .limits import TIME_LIMIT
from .listing import exit_status, json_document, listing
from .read import MAX_CLAIMS, read_claims
from .verdicts import check_file


def run_check(path: str, as_json: bool, out: TextIO, err: TextIO, *, allow_model_path: bool = False,
              claim_seconds: float | None = None, seconds: float | None = COMMAND_SECONDS,
              max_claims: int = MAX_CLAIMS, debug: bool = False) -> int:
    """Check every claim of a notes file; print the listing (or JSON) to out; return 0/1/2/3.

    Parameters
    ----------
    path : str
        The claims file.
    as_json : bool
        Print one JSON document instead of the listing.
    out, err : text streams
        Results go to ``out``; input errors and progress to ``err``.
    allow_model_path : bool
        Let ``model PATH`` name a file outside the claims file's folder.
    claim_seconds : float, optional
        Time limit per claim (default :data:`derive.claims.limits.TIME_LIMIT`).
    seconds : float, optional
        Time limit of the whole command, reading the file included (None: none).
    max_claims : int
        The most claims the file may hold.
    debug : bool
        Print the traceback of an internal error.

    Returns
    -------
    int
        0 when every claim holds, 1 when any does not (a claim line that
        cannot be read counts as one that does not hold), 2 on bad input:
        the file, its model or a declaration cannot be read, or no claim can;
        3 when a bug of derive's stopped the check of a claim (the other
        claims still get their verdicts).
    """
    started = time.monotonic()
    try:
        notes = read_claims(path, allow_model_path=allow_model_path, max_claims=max_claims)
    except InputError as error:
        print(error.format(), file=err)
        return 2
    for claim in notes.claims:
        if claim.error is not None:
            print(claim.error.format(), file=err)
    results, limits = check_and_report(notes, err, claim_seconds, seconds, max_claims, started, debug)
    if as_json:
        json.dump(json_document(notes, results, limits), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(listing(notes, results))
    return exit_status(results)


def check_and_report(notes, err: TextIO, claim_seconds: Optional[float], seconds: Optional[float],
                     max_claims: int, started: float, debug: bool):
    """Check a file's claims, say on ``err`` which a bug of derive's stopped; the results and the limits used.

    Returns
    -------
    (list of Result, dict)
        The verdicts, and the limits as the JSON document states them.
    """
    results = check_file(notes, progress=err, claim_seconds=claim_seconds, seconds=seconds, started=started)
    for r in results:
        if r.internal:
            print(f"derive: internal error while checking line {r.claim.line}, please report it with the "
                  f"command line and input: {r.explanation}", file=err)
            if debug:
                print(r.internal, file=err)
    return results, limits_of(claim_seconds, seconds, max_claims)


def limits_of(claim_seconds: Optional[float], seconds: Optional[float], max_claims: int) -> dict:
    """The limits of a check as its JSON document states them (the claim limit's default filled in)."""
    return {"claim_seconds": TIME_LIMIT if claim_seconds is None else claim_seconds,
            "seconds": seconds, "max_claims": max_claims}
