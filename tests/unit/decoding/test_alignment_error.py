"""Och & Ney's AER, precision and recall, checked against hand computations."""

import pytest

from seq2seq.decoding.alignment_error import GoldLinks, alignment_scores, parse_links
from seq2seq.errors import UserError


def test_a_gold_line_reads_sure_and_possible_links_and_sure_ones_are_possible_too():
    gold = parse_links("0-0 1-1 2p1", where="gold.txt:1")
    assert gold == GoldLinks(sure=frozenset({(0, 0), (1, 1)}), possible=frozenset({(0, 0), (1, 1), (2, 1)}))
    assert parse_links("", where="gold.txt:2") == GoldLinks(frozenset(), frozenset())


@pytest.mark.parametrize("bad", ["0-", "a-1", "0:1", "1-2-3"])
def test_a_malformed_link_names_the_file_line_and_form(bad):
    with pytest.raises(UserError, match=f"gold.txt:7: {bad!r} is not a link; expected i-j"):
        parse_links(f"0-0 {bad}", where="gold.txt:7")


def test_scores_of_one_pair_by_hand():
    """A = {0-0, 2-1, 2-2}; S = {0-0, 1-1}, P = S + {2-1}: |A ∩ S| = 1, |A ∩ P| = 2, so precision 2/3, recall 1/2,
    AER = 1 - (1 + 2) / (3 + 2) = 0.4."""
    scores = alignment_scores([[(0, 0), (2, 1), (2, 2)]], [parse_links("0-0 1-1 2p1", where="gold")])
    assert (scores.precision, scores.recall, scores.aer) == pytest.approx((2 / 3, 1 / 2, 0.4))


def test_counts_are_summed_over_the_corpus_before_dividing():
    """A second pair with one sure link and no prediction: |A| = 3, |S| = 3, hits 1 and 2 → AER 1 - 3/6."""
    gold = [parse_links("0-0 1-1 2p1", where="gold"), parse_links("0-0", where="gold")]
    scores = alignment_scores([[(0, 0), (2, 1), (2, 2)], []], gold)
    assert (scores.precision, scores.recall, scores.aer) == pytest.approx((2 / 3, 1 / 3, 0.5))


def test_perfect_links_score_zero_and_repeated_links_count_once():
    gold = [parse_links("0-0 1-2 2p1", where="gold")]
    assert alignment_scores([[(0, 0), (1, 2), (1, 2)]], gold).aer == 0.0
    assert alignment_scores([[(0, 0), (1, 2), (2, 1)]], gold).aer == 0.0  # a possible link costs nothing


def test_different_numbers_of_pairs_are_refused():
    with pytest.raises(UserError, match="2 predicted alignments for 1 gold ones"):
        alignment_scores([[], []], [parse_links("0-0", where="gold")])


def test_the_script_reads_translate_align_output_and_prints_the_hand_figures(tmp_path):
    """The same two pairs as above, the predictions as `translate --align` writes them."""
    import json
    import subprocess
    import sys

    from tests.helpers import ROOT

    gold, predicted = tmp_path / "gold.txt", tmp_path / "predicted.txt"
    gold.write_text("0-0 1-1 2p1\n0-0\n", encoding="utf-8")
    predicted.write_text("Der Hund ||| 0-0 2-1 2-2\nJa |||\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "alignment_error.py"), str(gold), str(predicted)],
                          capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)
    assert json.loads(done.stdout) == {"pairs": 2, "precision": 0.6667, "recall": 0.3333, "aer": 0.5}
