"""The search policies by name: the registry from which every decoding (``translate``, ``evaluate``, validation,
``serve``) builds its policy out of its :class:`~seq2seq.decoding.search_types.SearchOptions`.

A policy lives in a module of its own, with its settings (a frozen dataclass naming the policy, which
``SearchOptions.policy`` carries) and its builder; adding one is that module and its line here. Beam search has no
settings of its own beyond the decoding section (``policy=None``).
"""

from __future__ import annotations

from collections.abc import Callable

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.constrained import constrained_search
from seq2seq.decoding.diverse import Diversity, diverse_beam_policy
from seq2seq.decoding.sampling import Sampling, sample_policy
from seq2seq.decoding.search_types import SearchOptions, SearchPolicy

# options, and the target tokenizer (for a policy that reads target pieces' spelling, as constraints do) → the policy
PolicyBuilder = Callable[[SearchOptions, Tokenizer | None], SearchPolicy]

POLICIES: dict[str, PolicyBuilder] = {
    SearchOptions.BEAM: constrained_search,  # greedy at beam size 1; honours constraints
    Sampling.name: sample_policy,
    Diversity.name: diverse_beam_policy,
}


def search_policy(options: SearchOptions, trg_tok: Tokenizer | None = None) -> SearchPolicy:
    """The policy ``options`` name, built from them."""
    return POLICIES[options.policy_name](options, trg_tok)
