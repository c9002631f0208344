"""``seq2seq translate``'s decoding controls on the command line: constraints (``--constraints FILE``, ``--avoid``),
sampling (``--sample``, ``--temperature``, ``--top-k``, ``--top-p``, ``--seed``) and diverse beam search
(``--diverse-groups``, ``--diversity-strength``).

Kept light (no torch, no sentencepiece at import) so that the command line starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from seq2seq.common.arguments import non_negative_float, non_negative_int, positive_int, probability
from seq2seq.errors import UserError

if TYPE_CHECKING:
    from seq2seq.decoding.constraints import Constraints
    from seq2seq.decoding.search_types import PolicySettings


def add_control_arguments(parser: argparse.ArgumentParser) -> None:
    """``translate``'s constraints, sampling and diverse beam search."""
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
    parser.add_argument("--diverse-groups", type=positive_int, metavar="G", help="diverse beam search (Vijayakumar et "
                        "al. 2016): split the beam into G groups, each pushed away from the pieces the groups before "
                        "it chose at the same step, for an n-best list that differs in more than its last words; G "
                        "must divide the beam size (G = beam size: the most diverse)")
    parser.add_argument("--diversity-strength", type=non_negative_float, metavar="LAMBDA", help="--diverse-groups: "
                        "how much a piece's log-probability drops for each earlier group that chose it (default 0.5, "
                        "as fairseq's; 0: each group is plain beam search)")


def policy_of(args: argparse.Namespace) -> PolicySettings | None:
    """The search policy the flags ask for: ``--sample`` (with its settings), ``--diverse-groups``, or None for beam
    search; a UserError for flags that belong to another policy."""
    from seq2seq.decoding.diverse import Diversity
    from seq2seq.decoding.sampling import Sampling

    if args.diversity_strength is not None and args.diverse_groups is None:
        raise UserError("--diversity-strength sets diverse beam search, which --diverse-groups G turns on; give both.")
    if args.sample:
        search_flags = (("--beam", args.beam), ("--constraints", args.constraints), ("--avoid", args.avoid),
                        ("--diverse-groups", args.diverse_groups))
        clashing = [flag for flag, given in search_flags if given]
        if clashing:
            raise UserError(f"--sample draws translations; {clashing[0]} belongs to search. Give one of them.")
        return Sampling(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    if args.diverse_groups is not None:
        clashing = [flag for flag, given in (("--constraints", args.constraints), ("--avoid", args.avoid)) if given]
        if clashing:
            raise UserError(f"diverse beam search does not honour constraints; give {clashing[0]} or "
                            "--diverse-groups, not both.")
        given = {} if args.diversity_strength is None else {"strength": args.diversity_strength}  # else its default
        return Diversity(groups=args.diverse_groups, **given)
    return None


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
