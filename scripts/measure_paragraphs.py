"""Paragraphs in, paragraphs out: a test set sent to the live server as paragraphs of N sentences, against the
same sentences sent one per request and joined the same way.

Starts ``seq2seq serve MODEL_DIR`` on a free loopback port and, with ``--clients`` client threads each time:

- sends the test set as paragraphs of ``--per`` sentences (joined by a space) through LibreTranslate's API;
- sends the same paragraphs through the native API with ``"split_sentences": false``, each paragraph fed to the
  model whole, as every API did before the server cut texts into sentences;
- sends every sentence in a request of its own, and joins each paragraph's translations with a space.

It prints a Markdown table: BLEU of each against the paragraphs' joined references (sacrebleu), sentences in and
out (counted by the target language's segmenter, as in the references), and sentences per second. Usage:

  python scripts/measure_paragraphs.py runs/multi30k_de_en --src data/multi30k/test_2016_flickr.de \\
      --ref data/multi30k/test_2016_flickr.en [--per 5] [--clients 8] [--beam 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sacrebleu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import start_server  # noqa: E402 - the loopback server of the load test

from seq2seq.config import load_config  # noqa: E402
from seq2seq.documents.segmentation import SentenceSplitter  # noqa: E402


def post(port: int, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=600).read())


def timed(clients: int, send, items: list) -> tuple[list, float]:
    """Each item sent by one of ``clients`` threads; the answers in order and the seconds it all took."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(send, items))
    return answers, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--ref", type=Path, required=True)
    parser.add_argument("--per", type=int, default=5, help="sentences per paragraph")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--max-batch", type=int, default=64)
    args = parser.parse_args()
    config = load_config(args.model_dir / "config.yaml").data
    sources = args.src.read_text(encoding="utf-8").splitlines()
    references = args.ref.read_text(encoding="utf-8").splitlines()
    groups = [range(i, min(i + args.per, len(sources))) for i in range(0, len(sources), args.per)]
    paragraphs = [" ".join(sources[i] for i in group) for group in groups]
    joined_refs = [" ".join(references[i] for i in group) for group in groups]
    splitter = SentenceSplitter(config.trg_lang)
    process, port = start_server(args.model_dir, args)
    try:
        libre = {"source": config.src_lang, "target": config.trg_lang}
        split, split_s = timed(args.clients, lambda text: post(port, "/translate", {"q": text, **libre})[
            "translatedText"], paragraphs)
        whole, whole_s = timed(args.clients, lambda text: post(port, "/v1/translate", {
            "texts": [text], "beam": args.beam, "split_sentences": False})["results"][0]["translations"][0]["text"],
            paragraphs)
        single, single_s = timed(args.clients, lambda text: post(port, "/translate", {"q": text, **libre})[
            "translatedText"], sources)
    finally:
        process.terminate()
        process.wait(timeout=60)
    one_by_one = [" ".join(single[i] for i in group) for group in groups]
    reference_sentences = sum(len(splitter(text).spans) for text in joined_refs)
    print(f"{len(sources)} sentences as {len(paragraphs)} paragraphs of {args.per}; {args.clients} clients, beam "
          f"{args.beam}; the references hold {reference_sentences} sentences by the {config.trg_lang} segmenter\n")
    print("| sent as | BLEU (joined references) | sentences out | sentences/s |")
    print("| --- | --- | --- | --- |")
    for name, outputs, seconds in (("paragraphs, cut into sentences (now)", split, split_s),
                                   ("paragraphs, each fed whole (before)", whole, whole_s),
                                   ("one sentence per request, joined", one_by_one, single_s)):
        bleu = sacrebleu.corpus_bleu(outputs, [joined_refs]).score
        out = sum(len(splitter(text).spans) for text in outputs)
        print(f"| {name} | {bleu:.2f} | {out} | {len(sources) / seconds:.1f} |")
    # where the source segmenter missed a boundary (a line without final punctuation runs into the next), the model
    # gets two sentences as one: the same comparison on the paragraphs it cut exactly at their lines
    source_splitter = SentenceSplitter(config.src_lang)
    exact = [k for k, (text, group) in enumerate(zip(paragraphs, groups))
             if len(source_splitter(text).spans) == len(group)]
    found = sum(len(source_splitter(text).spans) for text in paragraphs)
    print(f"\nThe {config.src_lang} segmenter cut the paragraphs into {found} sentences; {len(exact)} of "
          f"{len(paragraphs)} paragraphs exactly at their lines. On those:\n")
    print("| sent as | BLEU (joined references) |")
    print("| --- | --- |")
    for name, outputs in (("paragraphs, cut into sentences (now)", split), ("one sentence per request, joined",
                                                                          one_by_one)):
        bleu = sacrebleu.corpus_bleu([outputs[k] for k in exact], [[joined_refs[k] for k in exact]]).score
        print(f"| {name} | {bleu:.2f} |")


if __name__ == "__main__":
    main()
