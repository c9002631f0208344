"""sentencepiece models: fixed special ids, trained once and reused, joint or separate, BPE or unigram."""

import threading

import numpy as np
import pytest

from seq2seq.data.batching import Example
from seq2seq.data.bpe_dropout import Resegmenter
from seq2seq.data.tokenizer import load_or_train, load_tokenizers
from seq2seq.special_ids import BOS_ID, EOS_ID, PAD_ID, UNK_ID

PAIRS = [(f"the {a} sees the {b} number {i}", f"der {a} sieht den {b} Nummer {i}")
         for i, (a, b) in enumerate([("dog", "cat"), ("man", "woman"), ("bird", "tree")] * 20)]


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_special_ids_and_round_trip(tmp_path, model_type):
    src, trg = load_or_train(tmp_path, PAIRS, vocab_sizes=(60, 70), model_type=model_type, joint=False,
                             character_coverage=1.0)
    for tok in (src, trg):
        assert tok.id_to_piece([PAD_ID, UNK_ID, BOS_ID, EOS_ID]) == ["<pad>", "<unk>", "<s>", "</s>"]
    text = "der dog sieht den woman Nummer 7"
    assert trg.decode(trg.encode([text]))[0] == text
    assert all(i > EOS_ID for i in trg.encode([text])[0])  # specials never come out of plain text


def test_models_are_trained_once_and_reused(tmp_path):
    load_or_train(tmp_path, PAIRS, vocab_sizes=(60, 60), model_type="bpe", joint=False, character_coverage=1.0)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert set(stamps) == {"src.model", "src.vocab", "trg.model", "trg.vocab"}
    load_or_train(tmp_path, [("other", "andere")] * 5, vocab_sizes=(60, 60), model_type="bpe", joint=False,
                  character_coverage=1.0)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps


def test_joint_model_is_shared(tmp_path):
    src, trg = load_or_train(tmp_path, PAIRS, vocab_sizes=(80, 10_000), model_type="bpe", joint=True,
                             character_coverage=1.0)
    assert src is trg and src.vocab_size <= 80
    assert sorted(p.name for p in tmp_path.iterdir()) == ["joint.model", "joint.vocab"]
    loaded_src, loaded_trg = load_tokenizers(tmp_path)
    assert loaded_src.encode(["the dog"]) == src.encode(["the dog"]) and loaded_src is loaded_trg


def test_requested_vocabulary_larger_than_the_corpus_allows_still_trains(tmp_path):
    src, _ = load_or_train(tmp_path, PAIRS, vocab_sizes=(5000, 5000), model_type="bpe", joint=False,
                           character_coverage=1.0)
    assert 10 < src.vocab_size < 5000


def test_bpe_dropout_resegments_the_same_text_deterministically_per_batch(tmp_path):
    src, trg = load_or_train(tmp_path, PAIRS, vocab_sizes=(60, 70), model_type="bpe", joint=False,
                             character_coverage=1.0)
    pairs = PAIRS[:12]
    examples = [Example(np.array(s, dtype=np.int32), np.array(t, dtype=np.int32))
                for s, t in zip(src.encode([s for s, _ in pairs]), trg.encode([t for _, t in pairs]))]
    resegment = Resegmenter(src, trg, p=0.5, max_length=100, seed=1)
    first = resegment(examples, epoch=0, number=3)
    assert src.decode([e.src for e in first]) == [s for s, _ in pairs]  # the same text, other pieces
    assert trg.decode([e.trg for e in first]) == [t for _, t in pairs]
    assert sum(len(e.src) for e in first) > sum(len(e.src) for e in examples)  # dropped merges: more pieces
    other = threading.Thread(target=resegment, args=(examples,), kwargs={"epoch": 5, "number": 0})
    other.start()  # sampling elsewhere in between (a prefetch thread) must not shift the stream
    other.join()
    assert resegment(examples, epoch=0, number=3) == first  # a resumed run samples the same
    assert resegment(examples, epoch=1, number=3) != first
    longest = max(len(e.src) for e in examples)
    capped = Resegmenter(src, trg, p=0.5, max_length=longest, seed=1)(examples, epoch=0, number=3)
    for old, new in zip(examples, capped):  # a sample beyond max_length keeps the prepared pieces
        assert len(new.src) <= longest and len(new.trg) <= max(longest, len(old.trg))
    with_unknown = Example(np.array([UNK_ID, *examples[0].src]), examples[0].trg)
    assert resegment([with_unknown], epoch=0, number=0) == [with_unknown]
