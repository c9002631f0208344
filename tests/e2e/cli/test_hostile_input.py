"""Arbitrary Unicode and arbitrary bytes never crash translation and never lose or add a line."""

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.cli import main
from seq2seq.decoding.translator import Translator

HOSTILE = ["", " ", "\t \u3000", "\x07\x1b[31m", "e\u0301\u0301\u0301", "👩‍👩‍👧 🇩🇪", "שלום עולם", "مرحبا",
           "\u202eevil\u202c", "\ufeffbom", "a\u2028b", "\ud7ff\ue000\U0010ffff"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model_dir(trained_variant):
    """The session's plain tiny model (tests/conftest.py): the test is about robustness, not quality."""
    return trained_variant("plain")


@pytest.fixture(scope="module")
def translator(model_dir):
    return Translator.from_dir(model_dir)


def test_hand_picked_hostile_strings(translator):
    for beam in (1, 3):
        out = translator.translate(HOSTILE, translator.search_options(beam_size=beam))
        assert len(out) == len(HOSTILE) and all("\n" not in line for line in out)


@SETTINGS
@given(texts=st.lists(st.text(max_size=60), max_size=8), beam=st.sampled_from([1, 3]))
def test_api_translates_any_unicode_one_output_per_input(translator, texts, beam):
    out = translator.translate(texts, translator.search_options(beam_size=beam))
    assert len(out) == len(texts)
    assert all(isinstance(line, str) and "\n" not in line for line in out)


@settings(SETTINGS, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=6),
       final_newline=st.booleans())
def test_cli_translates_any_bytes_one_line_out_per_line_in(model_dir, lines, final_newline, capsys):
    """capsys is read (and so emptied) on every example; stdin is patched per example."""
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
        assert main(["translate", str(model_dir), "--beam", "2"]) == 0
    out = capsys.readouterr().out
    expected = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert out.count("\n") == expected


def test_a_10000_word_line_is_translated_not_dropped(model_dir, capsys):
    long_line = " ".join(["the dog sleeps"] * 3334)
    assert main(["translate", str(model_dir), "short one", long_line, ""]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 3 and "line 2" in captured.err
