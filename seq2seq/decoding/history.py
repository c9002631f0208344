"""The step history of the decoding engine's slots: what each row chose at every step, to read hypotheses back.

Legend: C slots (the engine's capacity), K rows per slot, T steps, S source positions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seq2seq.decoding.search_types import Choice
from seq2seq.special_ids import EOS_ID


class History:
    """Each slot's tokens, parent rows and attention weights at every step it has taken, for reading back its
    hypotheses when it finishes; and its step count and length limit."""

    def __init__(self, capacity: int, beams: int, steps: int, width: int, device: torch.device):
        self.tokens = torch.zeros(capacity, beams, steps, dtype=torch.long, device=device)  # [C, K, T]
        self.parents = torch.zeros(capacity, beams, steps, dtype=torch.long, device=device)  # [C, K, T]
        self.alpha = torch.zeros(capacity, beams, steps, width, device=device)  # [C, K, T, S] of the row stepped
        self.steps = torch.zeros(capacity, dtype=torch.long, device=device)  # [C]
        self.limits = torch.ones(capacity, dtype=torch.long, device=device)  # [C]
        self._beam_index = torch.arange(beams, device=device).unsqueeze(0)  # [1, K]

    def reserve(self, steps: int, width: int) -> None:
        """Grow the buffers to hold ``steps`` steps of ``width`` positions."""
        capacity, beams, have_steps, have_width = self.alpha.shape
        if steps > have_steps:
            pad = steps - have_steps
            self.tokens = torch.cat([self.tokens, self.tokens.new_zeros(capacity, beams, pad)], dim=2)
            self.parents = torch.cat([self.parents, self.parents.new_zeros(capacity, beams, pad)], dim=2)
            self.alpha = torch.cat([self.alpha, self.alpha.new_zeros(capacity, beams, pad, have_width)], dim=2)
        if width > have_width:
            self.alpha = torch.cat([self.alpha, self.alpha.new_zeros(*self.alpha.shape[:3], width - have_width)],
                                   dim=3)

    def start(self, first: int, limits: list[int]) -> None:
        """Slots first..first+M begin, with these length limits."""
        stop = first + len(limits)
        self.steps[first:stop] = 0
        self.limits[first:stop] = torch.tensor(limits, dtype=torch.long)

    def record(self, choice: Choice, alpha: Tensor) -> None:
        """Store one step of the first N slots (choice [N, K], alpha [N, K, S]) and count it."""
        count, _, width = alpha.shape
        slots = torch.arange(count, device=alpha.device).unsqueeze(1)  # [N, 1]
        at = self.steps[:count].unsqueeze(1)  # [N, 1]
        self.tokens[slots, self._beam_index, at] = choice.tokens
        self.parents[slots, self._beam_index, at] = choice.parents
        self.alpha[:, :, :, :width][slots, self._beam_index, at] = alpha.float()
        self.steps[:count] += 1

    def move(self, to: Tensor, take: Tensor) -> None:
        for buffer in (self.tokens, self.parents, self.alpha, self.steps, self.limits):
            buffer[to] = buffer[take]

    def paths(self, slot: int, n_best: int, scores: list[float], lengths: list[int],
              src_length: int) -> list[tuple[list[int], float, Tensor]]:
        """The first ``n_best`` rows of a finished slot, followed back through their parents: (tokens without
        EOS, score, attention [T, S_real]) each."""
        steps = int(self.steps[slot])
        tokens = self.tokens[slot, :, :steps].tolist()  # [K][T]
        parents = self.parents[slot, :, :steps].tolist()
        alpha = self.alpha[slot, :, :steps, :src_length].cpu()  # [K, T, S_real]
        paths = []
        for rank in range(n_best):
            ids, stepped = [0] * steps, [0] * steps  # each step's token, and the row that computed it
            row = rank
            for t in range(steps - 1, -1, -1):
                ids[t], stepped[t] = tokens[row][t], parents[row][t]
                row = stepped[t]
            end = ids.index(EOS_ID) + 1 if EOS_ID in ids[:lengths[rank]] else lengths[rank]
            attention = alpha[stepped[:end], torch.arange(end)]  # [T, S_real]
            paths.append(([i for i in ids[:end] if i != EOS_ID], scores[rank], attention))
        return paths
