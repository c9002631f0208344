"""Where local attention looked: the window of each row of a translation's attention, for the pictures.

A model with local attention (``model.alignment: local-m`` or ``local-p``) attends, at output step t, within
[p_t - D, p_t + D]. The heatmaps (``translate --attention-dir``, TensorBoard, the web page) mark p_t and the window
on each row, so that a learner sees the prediction move. Search does not keep p_t; it is replayed here by teacher
forcing the translation's own pieces, which only the pictures pay for.
"""

from __future__ import annotations

import torch

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.search_types import Window
from seq2seq.model.network import Seq2Seq
from seq2seq.special_ids import BOS_ID, EOS_ID


@torch.inference_mode()
def attention_window(model: Seq2Seq | Ensemble, src_tok: Tokenizer, trg_tok: Tokenizer, src_pieces: list[str],
                     trg_pieces: list[str], rows: int) -> Window | None:
    """The window of each of the ``rows`` rows of a translation of ``src_pieces`` into ``trg_pieces``; None for
    global attention (and for ensembles, whose members each have their own)."""
    if isinstance(model, Ensemble) or not model.decoder.attention.alignment.local:
        return None
    device = next(model.parameters()).device
    src_ids = [src_tok.processor.piece_to_id(piece) for piece in src_pieces] + [EOS_ID]
    trg_ids = [BOS_ID] + [trg_tok.processor.piece_to_id(piece) for piece in trg_pieces]
    src = torch.tensor([src_ids], device=device)
    trg_in = torch.tensor([trg_ids[:rows]], device=device)
    centres = model.window_centres(src, torch.tensor([len(src_ids)]), trg_in)
    assert centres is not None
    return Window([round(float(p), 4) for p in centres[0]], model.decoder.attention.alignment.local_window)
