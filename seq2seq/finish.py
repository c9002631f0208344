"""The end of a run: averaging the last step checkpoints, choosing the length penalty, the final scores.

All of it runs on rank 0 alone, after training: it reads checkpoints, not the state of other processes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from seq2seq.atomic import atomic_copy, atomic_write_text
from seq2seq.checkpoint import average_checkpoints, load_checkpoint, save_checkpoint, step_checkpoints
from seq2seq.config import Config, save_config
from seq2seq.dataset import Split
from seq2seq.loader import evaluation_batches
from seq2seq.model import Seq2Seq
from seq2seq.reporters import Reporter
from seq2seq.run_state import Progress
from seq2seq.tokenizer import Tokenizer
from seq2seq.validation import improved, score_split, validate

log = logging.getLogger(__name__)


def finish_run(model: Seq2Seq, model_dir: Path, splits: dict[str, Split], src_tok: Tokenizer, trg_tok: Tokenizer,
               config: Config, device: torch.device, reporter: Reporter, progress: Progress) -> dict[str, float]:
    """After the last update: average the last checkpoints, load best.pt, choose the length penalty (each when
    configured), and score valid and test; returns those scores."""
    settings = config.training
    checkpoints = model_dir / "checkpoints"
    if settings.average_last > 1:
        average_last_checkpoints(model, checkpoints, splits, src_tok, trg_tok, config, device, reporter, progress)
    model.load_state_dict(load_checkpoint(checkpoints / "best.pt")["model"])
    valid = None
    if settings.tune_length_penalty:
        valid = choose_length_penalty(model, model_dir, splits["valid"], src_tok, trg_tok, config, device, reporter,
                                      progress)
    return final_report(model, model_dir, splits, src_tok, trg_tok, config, device, reporter, progress, valid=valid)


def average_last_checkpoints(model: Seq2Seq, checkpoints: Path, splits: dict[str, Split], src_tok: Tokenizer,
                             trg_tok: Tokenizer, config: Config, device: torch.device, reporter: Reporter,
                             progress: Progress) -> bool:
    """Average the newest ``training.average_last`` step checkpoints and validate the mean; True when it beats
    best.pt on the early-stopping metric, in which case it becomes best.pt and the old one best_single.pt.

    A plain mean of the last checkpoints is as good as fancier weightings (Gao et al. 2022), and with a
    schedule that decays to zero the last checkpoints are close enough in weight space for their mean to be
    a better model than any of them. The choice uses the valid split only, like early stopping.
    """
    settings = config.training
    chosen = [path for _, path in step_checkpoints(checkpoints)][-settings.average_last:]
    if len(chosen) < 2:
        log.info("averaging skipped: %d step checkpoint(s) to average", len(chosen))
        return False
    averaged = average_checkpoints(chosen)
    model.load_state_dict(averaged["model"])
    valid = splits["valid"]
    batches = evaluation_batches(valid, valid.sizes(), batch_tokens=settings.batch_tokens)
    figures = validate(model, valid, batches, src_tok, trg_tok, config, device)
    better = improved(settings.early_stopping_metric, figures[settings.early_stopping_metric], progress.best)
    log.info("valid, average of %s: loss %.3f, ppl %.2f, BLEU %.2f (%s than best.pt's %s %.2f)",
             ", ".join(averaged["averaged"]), figures["loss"], figures["ppl"], figures["bleu"],
             "better" if better else "not better", settings.early_stopping_metric, progress.best)
    reporter.average(progress.step, checkpoints=averaged["averaged"], best=better, figures=figures)
    save_checkpoint(checkpoints / "averaged.pt", averaged)
    if better:
        atomic_copy(checkpoints / "best.pt", checkpoints / "best_single.pt")
        atomic_copy(checkpoints / "averaged.pt", checkpoints / "best.pt")
    return better


def choose_length_penalty(model: Seq2Seq, model_dir: Path, valid: Split, src_tok: Tokenizer, trg_tok: Tokenizer,
                          config: Config, device: torch.device, reporter: Reporter,
                          progress: Progress) -> tuple[float, list[str]]:
    """Beam-search valid at each of ``training.tune_length_penalty``; the best becomes decoding.length_penalty.

    Beam search prefers short hypotheses (each piece adds a negative log-probability), and the penalty that
    corrects this best differs between models: on Multi30k, en→de output at 1.0 was several percent shorter
    than the references, where a de→en model scored best at 1.0. A run can therefore choose the penalty
    itself, on valid like the checkpoint, never on test. The choice is written into the run's config.yaml, so translate, evaluate and serve use it.
    Returns the chosen penalty's valid BLEU and hypotheses (ties go to the earlier candidate).
    """
    beam, candidates = config.decoding.beam_size, config.training.tune_length_penalty
    scored = {alpha: score_split(model, valid, src_tok, trg_tok, config, device, beam_size=beam, length_penalty=alpha)
              for alpha in candidates}
    chosen = max(candidates, key=lambda alpha: scored[alpha][0])
    log.info("length penalty chosen on valid (beam %d): %s (BLEU %s)", beam, chosen,
             ", ".join(f"{alpha}: {bleu:.2f}" for alpha, (bleu, _) in scored.items()))
    reporter.length_penalty(progress.step, beam_size=beam, bleu={alpha: bleu for alpha, (bleu, _) in scored.items()},
                            chosen=chosen)
    config.decoding.length_penalty = chosen
    save_config(config, model_dir / "config.yaml")
    return scored[chosen]


def final_report(model: Seq2Seq, model_dir: Path, splits: dict[str, Split], src_tok: Tokenizer, trg_tok: Tokenizer,
                 config: Config, device: torch.device, reporter: Reporter, progress: Progress, *,
                 valid: tuple[float, list[str]] | None = None) -> dict[str, float]:
    """Score valid and test (if configured) with the model as loaded and the configured beam size.

    ``valid``: the valid BLEU and hypotheses of this model and these settings, when already computed.
    """
    beam = config.decoding.beam_size
    report = {}
    for name in ("valid", "test"):
        if name in splits:
            scored = valid if name == "valid" and valid is not None else score_split(
                model, splits[name], src_tok, trg_tok, config, device, beam_size=beam)
            report[f"{name}_bleu"], hypotheses = scored
            atomic_write_text(model_dir / f"{name}.hyp", "".join(h + "\n" for h in hypotheses))
    reporter.final(progress.step, beam_size=beam, length_penalty=config.decoding.length_penalty, scores=report)
    search_name = "greedy" if beam == 1 else f"beam {beam}"
    for key, value in report.items():
        log.info("%s (%s, best checkpoint): %.2f", key.replace("_bleu", " BLEU"), search_name, value)
    return report
