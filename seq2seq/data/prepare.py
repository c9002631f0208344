"""Prepare a corpus once: validate and stream it, train sentencepiece on a sample, encode with every core, and
write each split as memory-mapped token arrays (:mod:`seq2seq.data.arrays`) with a manifest.

The manifest records what the arrays were made from: each input file (path, size, mtime, a hash of its head
and tail), the tokenizer settings and the filters; and what was made: each output file's size and SHA-256, and
each array's dtype and length (:mod:`seq2seq.data.verify`). A run whose inputs still match and whose files are
intact reuses the directory in a moment; any difference or damage is named in the log and the directory is
prepared again. The new directory is built beside the old one and swapped in at the end, so a prepare killed at
any point leaves nothing that a later run would trust.

Directory layout::

    manifest.json                     what the arrays were made from, the counts, and every file below
    spm/                              src.model + trg.model, or joint.model (with .vocab files)
    SPLIT.{src,trg}.tokens.npy        every sentence's piece ids, one flat array
    SPLIT.{src,trg}.offsets.npy       [N + 1] where each sentence starts (int64)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from seq2seq.common.atomic import atomic_write_text
from seq2seq.common.model_dir import ModelDir
from seq2seq.common.textio import chunks
from seq2seq.config import Config
from seq2seq.data.arrays import OFFSET_DTYPE, TokenArrayWriter, token_dtype
from seq2seq.data.corpus import DataError, iter_parallel, split_paths
from seq2seq.data.tokenizer import Tokenizer, load_or_train
from seq2seq.data.verify import array_record, check_prepared, file_record
from seq2seq.errors import UserError

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the layout changes: older directories are then prepared again (2: files are recorded)
MANIFEST = "manifest.json"
CHUNK_PAIRS = 20_000  # pairs encoded per call: enough to keep every core busy, small enough to hold
HASH_BYTES = 1 << 20  # bytes hashed at each end of an input file


def prepared_dir(config: Config, model_dir: str | Path | None = None) -> Path:
    """``data.prepared``, else the prepared directory of ``model_dir`` (default: ``training.model_dir``; a model
    directory moved after training passes where it is now)."""
    if config.data.prepared:
        return Path(config.data.prepared)
    return ModelDir(model_dir if model_dir is not None else config.training.model_dir).prepared


def split_prefixes(config: Config) -> dict[str, str]:
    prefixes = {"train": config.data.train, "valid": config.data.valid}
    if config.data.test:
        prefixes["test"] = config.data.test
    return prefixes


def split_sources(config: Config) -> dict[str, list[tuple[Path, Path]]]:
    """The (source, target) files of each split: train's are data.train's, then data.extra_train's."""
    languages = (config.data.src_lang, config.data.trg_lang)
    sources = {name: [split_paths(prefix, *languages)] for name, prefix in split_prefixes(config).items()}
    sources["train"] += [split_paths(prefix, *languages) for prefix in config.data.extra_train]
    return sources


def iter_split(files: list[tuple[Path, Path]]) -> Iterator[tuple[str, str]]:
    """The sentence pairs of a split's files, one corpus after another."""
    for src_path, trg_path in files:
        yield from iter_parallel(src_path, trg_path)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------------------
# What prepared data depends on
# ---------------------------------------------------------------------------------------------------------


def file_identity(path: Path) -> dict[str, Any]:
    """Path, size, mtime and a SHA-256 of the first and last MiB: cheap even for a 10 GB corpus."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist.")
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(HASH_BYTES))
        if stat.st_size > HASH_BYTES:
            handle.seek(max(stat.st_size - HASH_BYTES, HASH_BYTES))
            digest.update(handle.read())
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "head_tail_sha256": digest.hexdigest()}


def fingerprint(config: Config) -> dict[str, Any]:
    """Everything the prepared arrays depend on; a difference from the manifest means preparing again."""
    inputs = {name: [file_identity(path) for pair in files for path in pair]
              for name, files in split_sources(config).items()}
    tokenizer = dataclasses.asdict(config.tokenizer)
    if not tokenizer["user_symbols"]:  # data prepared before the setting existed stays valid
        del tokenizer["user_symbols"]
    return {"format": FORMAT, "languages": [config.data.src_lang, config.data.trg_lang], "inputs": inputs,
            "tokenizer": tokenizer, "filters": {"max_length": config.data.max_length}}


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a prepared directory; None when it is missing or damaged (see :func:`load_manifest`)."""
    return load_manifest(directory)[0]


def load_manifest(directory: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest, or None and why it cannot be used (missing, not JSON, not a manifest)."""
    path = directory / MANIFEST
    if not path.is_file():
        return None, "no prepared data yet"
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, f"{path} is damaged ({error})"
    if not isinstance(manifest, dict):
        return None, f"{path} is damaged (a JSON {type(manifest).__name__}, not an object)"
    return manifest, None


def stale_reasons(manifest: dict[str, Any] | None, expected: dict[str, Any]) -> list[str]:
    """Why prepared data described by ``manifest`` does not fit ``expected`` (empty: it fits)."""
    if manifest is None:
        return ["no prepared data yet"]
    try:
        return _differences(manifest, expected)
    except (AttributeError, TypeError, KeyError):  # valid JSON with fields of the wrong shape
        return [f"{MANIFEST} is damaged (a field has the wrong type)"]


def _differences(manifest: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    if manifest.get("format") != expected["format"]:
        version = manifest.get("format")
        newer = isinstance(version, int) and version > expected["format"]
        return [f"prepared by {'a newer' if newer else 'another'} version of seq2seq (format {version}; this one "
                f"writes {expected['format']})"]
    reasons = []
    if manifest.get("languages") != expected["languages"]:
        reasons.append(f"languages changed from {manifest.get('languages')} to {expected['languages']}")
    old_inputs = manifest.get("inputs", {})
    for split, files in expected["inputs"].items():
        before = old_inputs.get(split)
        if before is None:
            reasons.append(f"the {split} split is new")
            continue
        if len(before) != len(files):
            reasons.append(f"the {split} split's files changed")
        for old, new in zip(before, files):
            changed = [key for key in ("path", "size", "mtime_ns", "head_tail_sha256") if old.get(key) != new[key]]
            if changed:
                reasons.append(f"{new['path']} changed ({', '.join(changed)})")
    reasons += [f"the {split} split is no longer configured" for split in old_inputs if split not in expected["inputs"]]
    for section in ("tokenizer", "filters"):
        old, new = manifest.get(section, {}), expected[section]
        prefix = "tokenizer" if section == "tokenizer" else "data"
        reasons += [f"{prefix}.{key} changed from {old.get(key)!r} to {value!r}" for key, value in new.items()
                    if old.get(key) != value]
    return reasons


# ---------------------------------------------------------------------------------------------------------
# Preparing
# ---------------------------------------------------------------------------------------------------------


def ensure_prepared(config: Config) -> Path:
    """The prepared directory for ``config``: reused when its manifest matches and its files are intact, prepared
    (again) otherwise; a UserError naming the damage where this process cannot write the directory."""
    directory = prepared_dir(config)
    expected = fingerprint(config)
    manifest, unusable = load_manifest(directory)
    reasons = [unusable] if unusable else stale_reasons(manifest, expected)
    if not reasons and manifest is not None:
        damage = check_prepared(directory, manifest.get("files", {}), required=array_names(config))
        if not damage:
            log.info("using the prepared data in %s", directory)
            return directory
        log.warning("the prepared data in %s is damaged: %s", directory, "; ".join(damage))
        reasons = damage
    if directory.exists() and any(directory.iterdir()) and not (directory / MANIFEST).is_file():
        raise UserError(f"{directory} exists, is not empty and holds no {MANIFEST}, so it is not a prepared-data "
                        "directory and will not be replaced. Set data.prepared to a new or empty directory.")
    if not writable(directory):
        raise UserError(f"{directory} needs preparing ({'; '.join(reasons)}), and this process cannot write it. "
                        f"Prepare it where it can be written: {rebuild_command(config)}")
    log.info("preparing %s: %s", directory, "; ".join(reasons))
    build(config, directory, expected)
    return directory


def writable(directory: Path) -> bool:
    """Whether this process can create or replace ``directory`` (the nearest existing ancestor decides)."""
    if directory.exists() and not os.access(directory, os.W_OK):  # it is moved aside, which needs this too
        return False
    existing = directory.parent.resolve()
    while not existing.exists():
        existing = existing.parent
    return os.access(existing, os.W_OK)


def verify_prepared(config: Config) -> tuple[Path, list[str]]:
    """``seq2seq prepare --verify``: the prepared directory, and everything wrong with it (stale inputs, damaged or
    changed files, with their hashes checked); rebuilds nothing."""
    directory = prepared_dir(config)
    manifest, unusable = load_manifest(directory)
    if manifest is None:
        return directory, [f"{directory}: {unusable}"]
    stale = [f"{directory}: {reason}" for reason in stale_reasons(manifest, fingerprint(config))]
    return directory, stale + check_prepared(directory, manifest.get("files", {}), hashes=True,
                                             required=array_names(config))


def require_intact(config: Config, directory: Path, config_path: Path) -> None:
    """For a process that opens prepared data it does not prepare: a UserError naming each damaged file and the
    command that prepares it again (from ``config_path``)."""
    manifest, unusable = load_manifest(directory)
    damage = [f"{directory}: {unusable}"] if manifest is None else check_prepared(
        directory, manifest.get("files", {}), required=array_names(config))
    if damage:
        raise UserError(f"the prepared data is damaged: {'; '.join(damage)}. Prepare it again: "
                        f"seq2seq prepare {config_path}")


def array_names(config: Config) -> list[str]:
    """The array files a prepared directory of ``config`` must hold."""
    return [f"{split}.{side}.{kind}.npy" for split in split_prefixes(config) for side in ("src", "trg")
            for kind in ("tokens", "offsets")]


def rebuild_command(config: Config) -> str:
    """The command that prepares ``config``'s data again (the run's saved config.yaml names the same data)."""
    saved = ModelDir(config.training.model_dir).config if config.training.model_dir else None
    return f"seq2seq prepare {saved if saved is not None and saved.is_file() else 'CONFIG'}"


def build(config: Config, directory: Path, expected: dict[str, Any]) -> None:
    """Prepare into a temporary sibling directory, then swap it in (rename is atomic)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(directory)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent))
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)  # mkdtemp makes it private; the data is shared like any other
    try:
        counts, files = write_prepared(config, work)
        threads = cpu_count()
        atomic_write_text(work / MANIFEST, json.dumps({**expected, "counts": counts, "threads": threads,
                                                       "files": files}, indent=1))
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=directory.parent))
            os.replace(directory, old / directory.name)
            os.replace(work, directory)
            shutil.rmtree(old)
        else:
            os.replace(work, directory)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def is_prepared_data(path: Path, directory: Path) -> bool:
    """Whether ``path`` is the prepared ``directory`` or a leftover of preparing it (not part of a run)."""
    name = directory.name
    return path.resolve() == directory.resolve() or (
        path.parent.resolve() == directory.parent.resolve() and path.name.startswith(f".{name}.")
        and path.name.endswith((".partial", ".old")))


def remove_leftovers(directory: Path) -> None:
    """Delete what a prepare killed earlier left beside ``directory`` (never trusted, never reused)."""
    for pattern in (f".{directory.name}.*.partial", f".{directory.name}.*.old"):
        for leftover in directory.parent.glob(pattern):
            log.info("removing %s, left by an interrupted prepare", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def write_prepared(config: Config, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate every split, train sentencepiece on a sample of train, and write the arrays; returns the counts
    and the record of every file written (:mod:`seq2seq.data.verify`)."""
    paths = split_sources(config)
    sample, lines = scan(config, paths)
    tok = config.tokenizer
    threads = cpu_count()
    log.info("training sentencepiece on %d of %d training pairs (%d threads)", len(sample), lines["train"], threads)
    src_tok, trg_tok = load_or_train(work / "spm", sample, vocab_sizes=(tok.src_vocab_size, tok.trg_vocab_size),
                                     model_type=tok.type, joint=tok.joint, character_coverage=tok.character_coverage,
                                     num_threads=threads, user_symbols=tok.user_symbols)
    del sample
    files = {str(path.relative_to(work)): file_record(path) for path in sorted((work / "spm").iterdir())}
    counts = {}
    for name, corpora in paths.items():
        max_length = config.data.max_length if name == "train" else None
        counts[name], arrays = encode_split(corpora, work / name, src_tok, trg_tok, lines=lines[name],
                                            max_length=max_length, threads=threads)
        files.update(arrays)
    train = counts["train"]
    log.info("training pairs: %d read, %d dropped as empty, %d dropped as longer than %d pieces, %d kept",
             train["read"], train["empty"], train["too_long"], config.data.max_length, train["kept"])
    if not train["kept"]:
        raise DataError(f"no training pairs are left after dropping those longer than data.max_length = "
                        f"{config.data.max_length} pieces; raise data.max_length.")
    return counts, files


def scan(config: Config, paths: dict[str, list[tuple[Path, Path]]]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Read every split once to validate it and count its lines; sample training pairs for sentencepiece.

    The sample is a reservoir sample (Vitter's algorithm R) of ``tokenizer.sample_sentences`` lines per
    model, seeded with ``tokenizer.sample_seed``: the same corpus gives the same sample, in corpus order
    when the corpus is smaller than the sample.
    """
    tok = config.tokenizer
    size = -(-tok.sample_sentences // 2) if tok.joint else tok.sample_sentences  # a joint model sees both sides
    rng = random.Random(tok.sample_seed)
    sample: list[tuple[str, str]] = []
    lines, usable = {}, 0
    for name, files in paths.items():
        count = 0
        with tqdm(desc=f"reading {name}", unit=" pairs", unit_scale=True, leave=False, disable=None) as bar:
            for count, pair in enumerate(iter_split(files), start=1):
                if count % 10_000 == 0:
                    bar.update(10_000)
                if name != "train":
                    continue
                usable += bool(pair[0].strip() and pair[1].strip())
                if count <= size:
                    sample.append(pair)
                elif (slot := rng.randrange(count)) < size:
                    sample[slot] = pair
        lines[name] = count
        if name != "train" and not count:
            raise DataError(f"the {name} split {prefix_text(config, name)} is empty; it needs at least one sentence "
                            f"pair to score (data.{name}).")
    if not usable:
        raise DataError(f"the training split {prefix_text(config, 'train')} has no pair with text on both sides; "
                        "nothing to train on.")
    return sample, lines


def prefix_text(config: Config, split: str) -> str:
    return f"{getattr(config.data, split)}.{{{config.data.src_lang},{config.data.trg_lang}}}"


def encode_split(corpora: list[tuple[Path, Path]], prefix: Path, src_tok: Tokenizer, trg_tok: Tokenizer, *,
                 lines: int, max_length: int | None, threads: int) -> tuple[dict[str, int], dict[str, Any]]:
    """Encode a split chunk by chunk into token arrays; with ``max_length`` (train) drop empty and long pairs.
    Returns the counts, and the record of each array file written."""
    writers = [TokenArrayWriter(Path(f"{prefix}.{side}"), token_dtype(tok.vocab_size))
               for side, tok in (("src", src_tok), ("trg", trg_tok))]
    counts = {"read": 0, "empty": 0, "too_long": 0, "kept": 0}
    with tqdm(total=lines, desc=f"encoding {prefix.name}", unit=" pairs", unit_scale=True, leave=False,
              disable=None) as bar:
        for chunk in chunks(iter_split(corpora), CHUNK_PAIRS):
            sources = src_tok.encode([s for s, _ in chunk], num_threads=threads)
            targets = trg_tok.encode([t for _, t in chunk], num_threads=threads)
            keep: Sequence[int] = range(len(chunk))
            if max_length is not None:
                empty = {i for i, (s, t) in enumerate(chunk) if not s.strip() or not t.strip()}
                long = {i for i in keep if i not in empty and max(len(sources[i]), len(targets[i])) > max_length}
                counts["empty"] += len(empty)
                counts["too_long"] += len(long)
                keep = [i for i in keep if i not in empty and i not in long]
            writers[0].append([sources[i] for i in keep])
            writers[1].append([targets[i] for i in keep])
            counts["read"] += len(chunk)
            counts["kept"] += len(keep)
            bar.update(len(chunk))
    files = {}
    for writer, tok in zip(writers, (src_tok, trg_tok)):
        digests = writer.close()
        for name, length, dtype, vocab in ((f"{writer.prefix.name}.tokens.npy", writer.end, writer.dtype,
                                            tok.vocab_size),
                                           (f"{writer.prefix.name}.offsets.npy", writer.count + 1, OFFSET_DTYPE, None)):
            files[name] = array_record(prefix.parent / name, digests[name], np.dtype(dtype), length, vocab)
    return counts, files

