"""The end of a run: averaging the last step checkpoints, choosing the length penalty and whether to decode with a
vocabulary shortlist, the final scores.

All of it runs on rank 0 alone, after training: it reads checkpoints, not the state of other processes.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from seq2seq.common.atomic import atomic_copy, atomic_write_text
from seq2seq.common.model_dir import AVERAGED, BEST_SINGLE, ModelDir
from seq2seq.config import DecodingConfig, save_config
from seq2seq.data.dataset import open_splits
from seq2seq.data.loader import evaluation_batches
from seq2seq.data.prepare import prepared_dir, require_intact
from seq2seq.decoding.search_types import SearchOptions
from seq2seq.decoding.shortlist import Shortlist, build_shortlist, union_share, worth_using
from seq2seq.errors import UserError
from seq2seq.model.checkpoint import average_checkpoints, load_checkpoint, save_checkpoint, step_checkpoints
from seq2seq.model.network import Seq2Seq
from seq2seq.training.context import RunContext
from seq2seq.training.reporters import Reporters
from seq2seq.training.run_state import Progress
from seq2seq.training.validation import score_split, validate

log = logging.getLogger(__name__)


def finish_run(model: Seq2Seq, run: RunContext) -> dict[str, float]:
    """After the last update: average the last checkpoints, load best.pt, choose the length penalty and the
    shortlist (each when configured), and score valid and test; returns those scores."""
    settings = run.config.training
    if settings.average_last > 1:
        average_last_checkpoints(model, run)
    model.load_state_dict(load_checkpoint(run.layout.best)["model"])
    decoding, valid = run.config.decoding, None
    if settings.tune_length_penalty:
        penalty, valid = choose_length_penalty(model, run)
        decoding = replace(decoding, length_penalty=penalty)
    shortlist = None
    if settings.shortlist:
        choice = choose_shortlist(model, run, decoding, valid=valid)
        shortlist, valid = (choice.shortlist, choice.listed) if choice.used else (None, choice.full)
        decoding = replace(decoding, shortlist=choice.used)
    return final_report(model, run, decoding, valid=valid, shortlist=shortlist)


def average_last_checkpoints(model: Seq2Seq, run: RunContext) -> bool:
    """Average the newest ``training.average_last`` step checkpoints and validate the mean; True when it beats
    best.pt on the early-stopping metric, in which case it becomes best.pt and the old one best_single.pt.

    A plain mean of the last checkpoints is as good as fancier weightings (Gao et al. 2022), and with a
    schedule that decays to zero the last checkpoints are close enough in weight space for their mean to be
    a better model than any of them. The choice uses the valid split only, like early stopping.
    """
    config, layout, progress = run.config, run.layout, run.progress
    settings = config.training
    chosen = [path for _, path in step_checkpoints(layout.checkpoints)][-settings.average_last:]
    if len(chosen) < 2:
        log.info("averaging skipped: %d step checkpoint(s) to average", len(chosen))
        return False
    averaged = average_checkpoints(chosen)
    model.load_state_dict(averaged["model"])
    valid = run.splits["valid"]
    batches = evaluation_batches(valid, valid.sizes(), batch_tokens=settings.batch_tokens)
    figures = validate(model, run, batches)
    better = settings.early_stopping_metric.improved(figures[settings.early_stopping_metric], progress.best)
    log.info("valid, average of %s: loss %.3f, ppl %.2f, BLEU %.2f (%s than best.pt's %s %.2f)",
             ", ".join(averaged["averaged"]), figures["loss"], figures["ppl"], figures["bleu"],
             "better" if better else "not better", settings.early_stopping_metric, progress.best)
    run.reporter.average(progress.step, checkpoints=averaged["averaged"], best=better, figures=figures)
    save_checkpoint(layout.checkpoint(AVERAGED), averaged)
    if better:
        atomic_copy(layout.best, layout.checkpoint(BEST_SINGLE))
        atomic_copy(layout.checkpoint(AVERAGED), layout.best)
    return better


def choose_length_penalty(model: Seq2Seq, run: RunContext) -> tuple[float, tuple[float, list[str]]]:
    """Beam-search valid at each of ``training.tune_length_penalty``; the best becomes decoding.length_penalty.

    Beam search prefers short hypotheses (each piece adds a negative log-probability), and the penalty that
    corrects this best differs between models: on Multi30k, en→de output at 1.0 was several percent shorter
    than the references, where a de→en model scored best at 1.0. A run can therefore choose the penalty
    itself, on valid like the checkpoint, never on test. The choice is written into the run's config.yaml, so
    translate, evaluate and serve use it.
    Returns the chosen penalty, and its valid BLEU and hypotheses (ties go to the earlier candidate).
    """
    config = run.config
    beam, candidates = config.decoding.beam_size, config.training.tune_length_penalty
    scored = {alpha: score_split(model, run, run.splits["valid"],
                                 SearchOptions.of(config.decoding, beam_size=beam, length_penalty=alpha))
              for alpha in candidates}
    chosen = max(candidates, key=lambda alpha: scored[alpha][0])
    log.info("length penalty chosen on valid (beam %d): %s (BLEU %s)", beam, chosen,
             ", ".join(f"{alpha}: {bleu:.2f}" for alpha, (bleu, _) in scored.items()))
    run.reporter.length_penalty(run.progress.step, beam_size=beam, chosen=chosen,
                                bleu={alpha: bleu for alpha, (bleu, _) in scored.items()})
    save_config(replace(config, decoding=replace(config.decoding, length_penalty=chosen)), run.layout.config)
    return chosen, scored[chosen]


class ShortlistChoice(NamedTuple):
    shortlist: Shortlist
    used: bool  # whether decoding.shortlist is now on
    full: tuple[float, list[str]]  # valid BLEU and hypotheses with the whole vocabulary
    listed: tuple[float, list[str]]  # the same with the shortlist
    share: float  # the mean share of the target pieces a batch scores with it


def choose_shortlist(model: Seq2Seq, run: RunContext, decoding: DecodingConfig, *,
                     valid: tuple[float, list[str]] | None = None) -> ShortlistChoice:
    """Learn the vocabulary shortlist from the training arrays (model_dir/shortlist.pt) and decode valid with and
    without it (``decoding``: the run's decoding settings so far); decoding.shortlist in the run's config.yaml is
    turned on when :func:`seq2seq.decoding.shortlist.worth_using` says it pays, else off. ``valid``: the full
    vocabulary's valid BLEU and hypotheses, when already computed."""
    train = run.splits["train"]
    shortlist = build_shortlist(train.src, train.trg, src_vocab_size=run.src_tok.vocab_size,
                                trg_vocab_size=run.trg_tok.vocab_size)
    shortlist.save(run.layout.shortlist)
    split, options = run.splits["valid"], SearchOptions.of(decoding)
    full = valid or score_split(model, run, split, options)
    listed = score_split(model, run, split, options, shortlist=shortlist)
    share = union_share(shortlist, [split.src[i].tolist() for i in range(len(split))], decoding.batch_size)
    used = worth_using(full[0], listed[0], share)
    log.info("vocabulary shortlist on valid (beam %d): BLEU %.2f with, %.2f without; a batch scores %.0f%% of the "
             "target pieces: %s", options.beam_size, listed[0], full[0], 100 * share, "used" if used else "not used")
    run.reporter.shortlist(run.progress.step, bleu=full[0], shortlist_bleu=listed[0], share=share, used=used)
    if used != decoding.shortlist:
        save_config(replace(run.config, decoding=replace(decoding, shortlist=used)), run.layout.config)
    return ShortlistChoice(shortlist, used, full, listed, share)


def shortlist_trained(model_dir: Path) -> ShortlistChoice:
    """``seq2seq shortlist MODEL_DIR``: :func:`choose_shortlist` for a trained model (one trained before
    shortlists existed, or with ``training.shortlist: false``), from its prepared arrays and its best.pt."""
    from seq2seq.decoding.translator import Translator

    translator = Translator.from_dir(model_dir, shortlist=False)
    config, layout = translator.config, ModelDir(model_dir)
    directory = prepared_dir(config, model_dir)
    if not (directory / "train.src.tokens.npy").is_file():
        raise UserError(f"{directory} holds no prepared training arrays to learn the shortlist from; prepare them "
                        f"with `seq2seq prepare {layout.config}` from where the model was trained.")
    require_intact(config, directory, layout.config)
    run = RunContext(config, layout, open_splits(config, directory), translator.src_tok, translator.trg_tok,
                     translator.device, Reporters([]), Progress())
    assert isinstance(translator.model, Seq2Seq)  # one checkpoint: best.pt
    return choose_shortlist(translator.model, run, config.decoding)


def final_report(model: Seq2Seq, run: RunContext, decoding: DecodingConfig, *,
                 valid: tuple[float, list[str]] | None = None, shortlist: Shortlist | None = None) -> dict[str, float]:
    """Score valid and test (if configured) with the model as loaded, the ``decoding`` settings chosen for the run
    and ``shortlist``.

    ``valid``: the valid BLEU and hypotheses of this model and these settings, when already computed.
    """
    options = SearchOptions.of(decoding)
    report = {}
    for name in ("valid", "test"):
        if name in run.splits:
            scored = valid if name == "valid" and valid is not None else score_split(
                model, run, run.splits[name], options, shortlist=shortlist)
            report[f"{name}_bleu"], hypotheses = scored
            atomic_write_text(run.layout.hypotheses(name), "".join(h + "\n" for h in hypotheses))
    beam = options.beam_size
    run.reporter.final(run.progress.step, beam_size=beam, length_penalty=options.length_penalty, scores=report)
    search_name = "greedy" if beam == 1 else f"beam {beam}"
    for key, value in report.items():
        log.info("%s (%s, best checkpoint): %.2f", key.replace("_bleu", " BLEU"), search_name, value)
    return report
