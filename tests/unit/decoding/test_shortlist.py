"""The vocabulary shortlist: IBM Model 1 against a hand computation, a shortlist of every piece changes nothing,
a shortlisted search only produces listed pieces, and the CLI builds, chooses, uses and refuses shortlists."""

import json
import shutil

import numpy as np
import pytest
import torch

from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.data.arrays import TokenArray, TokenArrayWriter
from seq2seq.decoding import shortlist as shortlist_module
from seq2seq.decoding.engine import DecodingEngine
from seq2seq.decoding.search import Beam, Greedy
from seq2seq.decoding.search_types import Sentence
from seq2seq.decoding.shortlist import Shortlist, ShortlistUnion, build_shortlist, ibm1, union_share, worth_using
from seq2seq.decoding.translator import Translator
from tests.helpers import random_model

SOURCES = [[5, 6, 7, 8], [9], [4, 10, 11, 12, 13, 14, 15], [6, 6], [12, 3, 3, 9, 9, 10, 11, 4, 5, 6, 7, 8]]


def arrays(tmp_path, pairs):
    """TokenArrays of the sources and targets of ``pairs``."""
    for side, sentences in (("src", [s for s, _ in pairs]), ("trg", [t for _, t in pairs])):
        writer = TokenArrayWriter(tmp_path / f"train.{side}", np.dtype(np.uint16))
        writer.append(sentences)
        writer.close()
    return TokenArray(tmp_path / "train.src"), TokenArray(tmp_path / "train.trg")


def test_one_em_iteration_of_ibm1_matches_the_hand_computation(tmp_path):
    # Pairs (a b → x y) and (a → x), source ids a=4, b=5, the empty word n=6; target ids x=4, y=5 (V_trg = 6).
    # From uniform t, each target piece splits its count evenly over its sentence's sources and n:
    # pair 1 gives 1/3 of x and of y to each of a, b, n; pair 2 gives 1/2 of x to a and to n. So
    # c(x|a) = 5/6, c(y|a) = 1/3 → t(x|a) = 5/7, t(y|a) = 2/7; t(x|b) = t(y|b) = 1/2; t(x|n) = 5/7.
    src, trg = arrays(tmp_path, [([4, 5], [4, 5]), ([4], [4])])
    table = ibm1(src, trg, np.arange(2), null=6, trg_vocab_size=6, iterations=1)
    got = dict(zip(table.keys.tolist(), table.probs.tolist()))
    expected = {4 * 6 + 4: 5 / 7, 4 * 6 + 5: 2 / 7, 5 * 6 + 4: 1 / 2, 5 * 6 + 5: 1 / 2, 6 * 6 + 4: 5 / 7,
                6 * 6 + 5: 2 / 7}
    assert got == pytest.approx(expected, abs=1e-12)


def test_the_table_does_not_depend_on_how_the_pairs_are_grouped(tmp_path, monkeypatch):
    """Groups of a few combinations (a pair larger than a group, empty targets, reads of 3 pairs) give the table
    of one group for everything, up to rounding."""
    rng = np.random.default_rng(5)
    pairs = [(rng.integers(4, 30, rng.integers(0, 9)).tolist(), rng.integers(4, 20, rng.integers(0, 9)).tolist())
             for _ in range(200)]
    src, trg = arrays(tmp_path, pairs)
    chosen = np.arange(0, 200, 2)
    whole = ibm1(src, trg, chosen, null=30, trg_vocab_size=20, iterations=3)
    monkeypatch.setattr(shortlist_module, "GRID_ENTRIES", 7)
    monkeypatch.setattr(shortlist_module, "READ_PAIRS", 3)
    grouped = ibm1(src, trg, chosen, null=30, trg_vocab_size=20, iterations=3)
    assert np.array_equal(whole.keys, grouped.keys)
    assert np.allclose(whole.probs, grouped.probs, rtol=1e-12, atol=0)
    co_occurring = {s * 20 + t for i in chosen for s in [*pairs[i][0], 30] for t in pairs[i][1]}
    assert set(whole.keys.tolist()) == co_occurring


def test_em_finds_the_word_that_explains_a_target_piece(tmp_path):
    # "la maison" / "the house", "la maison bleue" / "the blue house", "la fleur" / "the flower": after a few
    # iterations maison → house, bleue → blue, fleur → flower (the IBM-1 textbook example). Source ids: la 4,
    # maison 5, bleue 6, fleur 7; target ids: the 4, house 5, blue 6, flower 7; V = 8 on both sides.
    src, trg = arrays(tmp_path, [([4, 5], [4, 5]), ([4, 5, 6], [4, 6, 5]), ([4, 7], [4, 7])])
    shortlist = build_shortlist(src, trg, src_vocab_size=8, trg_vocab_size=8, candidates=1, frequent=0,
                                iterations=10)
    assert shortlist.candidates[[4, 5, 6, 7], 0].tolist() == [4, 5, 6, 7]
    assert shortlist.always.tolist() == [0, 1, 2, 3]  # the special ids are always there


def test_frequent_pieces_are_in_every_list_and_not_spent_on_candidates(tmp_path):
    src, trg = arrays(tmp_path, [([4, 5], [4, 5]), ([4, 5, 6], [4, 6, 5]), ([4, 7], [4, 7])])
    shortlist = build_shortlist(src, trg, src_vocab_size=8, trg_vocab_size=8, candidates=2, frequent=1)
    assert shortlist.always.tolist() == [0, 1, 2, 3, 4]  # "the", in every pair
    assert 4 not in shortlist.candidates.view(-1).tolist()
    assert set(shortlist.pieces([7]).tolist()) >= {0, 1, 2, 3, 4, 7}


def every_piece(vocab):
    return Shortlist(torch.full((16, 2), -1, dtype=torch.long), torch.arange(vocab), vocab)


@pytest.mark.parametrize("policy", [Greedy(), Beam(3, alpha=1.0)], ids=["greedy", "beam3"])
def test_a_shortlist_of_every_piece_changes_nothing(policy):
    model = random_model(vocab=20)
    results = {}
    for name, shortlist in (("full", None), ("listed", every_piece(20))):
        engine = DecodingEngine(model, policy, device=torch.device("cpu"), max_sentences=3, shortlist=shortlist)
        engine.add([Sentence(src, 12, 1, i) for i, src in enumerate(SOURCES)])
        results[name] = dict(engine.run())
    for tag, hypotheses in results["full"].items():
        listed = results["listed"][tag]
        assert [h.tokens for h in listed] == [h.tokens for h in hypotheses]
        assert [h.score for h in listed] == pytest.approx([h.score for h in hypotheses], abs=1e-5)


def test_a_shortlisted_search_produces_only_listed_pieces_with_scores_over_them():
    model = random_model(vocab=20)
    candidates = torch.full((16, 2), -1, dtype=torch.long)
    candidates[5:9] = torch.tensor([11, 12])  # sources 5..8 may become 11 or 12; nothing else is listed
    shortlist = Shortlist(candidates, torch.arange(4), 20)
    engine = DecodingEngine(model, Greedy(), device=torch.device("cpu"), max_sentences=1, shortlist=shortlist)
    engine.add([Sentence(SOURCES[0], 12, 1, 0)])
    ((_, (hypothesis,)),) = engine.run()
    assert set(hypothesis.tokens) <= {0, 1, 2, 11, 12} and engine.work.scored == engine.work.rows * 6
    # the score is the log-softmax over the six listed pieces, step by step: recompute it without the engine
    scored = hypothesis.tokens + ([3] if len(hypothesis.tokens) < 12 else [])  # EOS, unless it hit the limit
    vocab, total, prev = torch.tensor([0, 1, 2, 3, 11, 12]), 0.0, torch.tensor([2])
    with torch.no_grad():
        keys, state = model.search_start(torch.tensor([SOURCES[0] + [3]]), torch.tensor([5]))
        for token in scored:
            logits, state, _ = model.decoder.step(prev, state, keys)
            total += float(torch.log_softmax(logits[0, vocab], dim=-1)[vocab.tolist().index(token)])
            prev = torch.tensor([token])
    assert hypothesis.score == pytest.approx(total, abs=1e-5)


def test_the_union_counts_sentences_in_and_out():
    candidates = torch.full((16, 2), -1, dtype=torch.long)
    candidates[5], candidates[6] = torch.tensor([10, 11]), torch.tensor([11, 12])
    union = ShortlistUnion(Shortlist(candidates, torch.arange(4), 20), torch.device("cpu"))
    first, second = union.add([5]), union.add([6])
    assert union.pieces().tolist() == [0, 1, 2, 3, 10, 11, 12]
    union.remove(first)
    assert union.pieces().tolist() == [0, 1, 2, 3, 11, 12]
    union.remove(second)
    assert union.pieces().tolist() == [0, 1, 2, 3]


def test_the_rule_that_decides_whether_a_shortlist_is_used():
    assert worth_using(30.0, 29.95, 0.4) and worth_using(30.0, 30.2, 0.5)
    assert not worth_using(30.0, 29.8, 0.1)  # costs more than 0.1 BLEU
    assert not worth_using(30.0, 30.0, 0.8)  # scores most of the vocabulary anyway
    listed = Shortlist(torch.tensor([[4, 5]] * 16), torch.arange(4), 10)
    assert union_share(listed, [[1], [2], [3]], 2) == pytest.approx(0.6)


@pytest.fixture(scope="module")
def model_dir(trained_variant, tmp_path_factory):
    """A copy of the session's shortlisted model, which the tests may change."""
    copy = tmp_path_factory.mktemp("shortlisted") / "model"
    shutil.copytree(trained_variant("shortlisted"), copy)
    return copy


def test_training_learns_a_shortlist_and_reports_its_choice(model_dir):
    events = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    (choice,) = [e for e in events if e["event"] == "shortlist"]
    assert (model_dir / "shortlist.pt").is_file()
    assert choice["used"] == worth_using(choice["bleu"], choice["shortlist_bleu"], choice["share"])
    assert load_config(model_dir / "config.yaml").decoding.shortlist == choice["used"]


def test_the_shortlist_command_rebuilds_and_translate_uses_it_on_request(model_dir, capsys):
    (model_dir / "shortlist.pt").unlink()
    assert main(["shortlist", str(model_dir)]) == 0
    assert "decoding.shortlist" in capsys.readouterr().out and (model_dir / "shortlist.pt").is_file()
    translator = Translator.from_dir(model_dir, shortlist=True)
    assert translator.shortlist is not None
    assert main(["translate", str(model_dir), "The dog sleeps.", "--shortlist", "--beam", "3"]) == 0
    assert capsys.readouterr().out.strip()


def test_int8_with_a_shortlist_keeps_the_output_layer_in_float(model_dir):
    translator = Translator.from_dir(model_dir, precision="int8", shortlist=True)
    assert type(translator.model.decoder.output) is torch.nn.Linear
    assert isinstance(translator.model.decoder.lstm, torch.ao.nn.quantized.dynamic.LSTM)
    assert translator.translate(["The dog sleeps."], translator.search_options(beam_size=2))[0]


def test_a_damaged_or_missing_shortlist_is_a_clear_error(model_dir, capsys):
    path = model_dir / "shortlist.pt"
    saved = path.read_bytes()
    try:
        path.write_bytes(saved[: len(saved) // 2])
        assert main(["translate", str(model_dir), "The dog sleeps.", "--shortlist"]) == 2
        assert f"{path} is not a readable vocabulary shortlist" in capsys.readouterr().err
        path.unlink()
        assert main(["translate", str(model_dir), "The dog sleeps.", "--shortlist"]) == 2
        assert "has no vocabulary shortlist" in capsys.readouterr().err
    finally:
        path.write_bytes(saved)


def test_the_shortlist_command_needs_the_prepared_arrays(model_dir, tmp_path, capsys):
    copy = tmp_path / "moved"
    copy.mkdir()
    for name in ("config.yaml", "spm", "checkpoints"):
        (copy / name).symlink_to(model_dir / name)
    assert main(["shortlist", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "holds no prepared training arrays" in err and "seq2seq prepare" in err
