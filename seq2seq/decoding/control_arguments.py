"""``seq2seq translate``'s decoding controls on the command line: constraints (``--constraints FILE``, ``--avoid``)
and sampling (``--sample``, ``--temperature``, ``--top-k``, ``--top-p``, ``--seed``).

Kept light (no torch, no sentencepiece at import) so that the command line starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from seq2seq.common.arguments import non_negative_float, non_negative_int, probability
from seq2seq.errors import UserError

if TYPE_CHECKING:
    from seq2seq.decoding.constraints import Constraints
    from seq2seq.decoding.sampling import Sampling


def add_control_arguments(parser: argparse.ArgumentParser) -> None:
    """``translate``'s constraints and sampling."""
    parser.add_argument("--constraints", metavar="FILE", help="what each translation must include or avoid, one line "
                        'per input line: {"include": [...], "avoid": [...]} or tab-separated phrases to include')
    parser.add_argument("--avoid", action="append", default=[], metavar="PHRASE",
                        help="a phrase no translation may contain (repeat for more)")
    parser.add_argument("--sample", action="store_true", help="draw translations from the model instead of searching "
                        "for the best (back-translation); --n-best N draws N per line")
    parser.add_argument("--temperature", type=non_negative_float, default=1.0,
                        help="--sample: divide the log-probabilities by this (below 1 sharper; 0 is greedy)")
    parser.add_argument("--top-k", type=non_negative_int, default=0, metavar="K",
                        help="--sample: only from the K most probable pieces (0: all)")
    parser.add_argument("--top-p", type=probability, default=1.0, metavar="P", help="--sample: only from the "
                        "smallest set of pieces whose probability reaches P (nucleus sampling; 1: all)")
    parser.add_argument("--seed", type=int, default=1, help="--sample: the same seed draws the same translations")


def sampling_of(args: argparse.Namespace) -> Sampling | None:
    """``--sample`` and its settings; a UserError for a search option that sampling would ignore."""
    from seq2seq.decoding.sampling import Sampling

    if not args.sample:
        return None
    clashing = [flag for flag, given in (("--beam", args.beam), ("--constraints", args.constraints),
                                         ("--avoid", args.avoid)) if given]
    if clashing:
        raise UserError(f"--sample draws translations; {clashing[0]} belongs to search. Give one of them.")
    return Sampling(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)


def open_constraints(stack: contextlib.ExitStack, path: str | None) -> Iterator[Constraints] | None:
    """The constraints of each input line, read lazily from ``path`` (closed with ``stack``)."""
    from seq2seq.decoding.constraints import read_constraints

    if path is None:
        return None
    try:
        handle = stack.enter_context(open(path, encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read the constraints file {path}: {error.strerror}.") from None
    return read_constraints(handle, path)
