"""translate and evaluate on a tiny trained model: beam, n-best, alignments, heatmaps, JSON, bad input."""

import json
import subprocess
import sys

import pytest
import torch

from seq2seq.cli import build_parser, chosen_checkpoints, main
from seq2seq.config import load_config
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.precision import bf16_supported
from seq2seq.decoding.translator import Translator
from seq2seq.decoding.word_alignment import align_words, pharaoh, word_ids
from seq2seq.errors import UserError
from tests.helpers import ROOT, train_tiny, write_slice

SENTENCES = ["The dog sleeps.", "A cat reads the book.", "Because the man reads, the woman sleeps."]


@pytest.fixture(scope="module")
def model_dir(trained_variant):
    """The session's plain tiny model (read-only), with step checkpoints from two validations for the ensembles."""
    return trained_variant("plain")


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_beam_1_output_equals_greedy_output_of_the_api(model_dir, capsys):
    translator = Translator.from_dir(model_dir)
    greedy = translator.translate(SENTENCES, translator.search_options(beam_size=1))
    code, out, _ = run(capsys, "translate", model_dir, *SENTENCES, "--beam", 1)
    assert code == 0 and out.splitlines() == greedy


def test_n_best_lines_are_indexed_sorted_and_distinct(model_dir, capsys):
    code, out, _ = run(capsys, "translate", model_dir, SENTENCES[0], "", SENTENCES[1], "--beam", 4, "--n-best", 3)
    assert code == 0
    rows = [line.split(" ||| ") for line in out.splitlines()]
    assert [r[0] for r in rows] == ["0", "0", "0", "1", "2", "2", "2"]  # the empty line gives one empty entry
    assert rows[3][1] == ""
    for index in ("0", "2"):
        texts = [r[1] for r in rows if r[0] == index]
        assert len(set(texts)) == 3


def test_align_prints_pharaoh_pairs_within_sentence_bounds(model_dir, capsys):
    code, out, _ = run(capsys, "translate", model_dir, *SENTENCES, "--align")
    assert code == 0
    for sentence, line in zip(SENTENCES, out.splitlines()):
        text, alignment = line.split(" ||| ")
        pairs = [tuple(map(int, p.split("-"))) for p in alignment.split()]
        assert len(pairs) == len(text.split())  # every output word is aligned once
        assert all(0 <= s < len(sentence.split()) for s, _ in pairs)
        assert [t for _, t in pairs] == list(range(len(text.split())))


def test_attention_dir_gets_one_valid_png_per_sentence(model_dir, tmp_path, capsys):
    from PIL import Image

    code, _, _ = run(capsys, "translate", model_dir, SENTENCES[0], "", SENTENCES[1], "--attention-dir", tmp_path)
    assert code == 0
    pngs = sorted(p.name for p in tmp_path.iterdir())
    assert pngs == ["line-000001.png", "line-000003.png"]  # none for the empty line
    with Image.open(tmp_path / "line-000003.png") as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 200 and image.size[1] > 100


def test_overlong_line_is_cut_at_word_boundaries_with_a_warning_not_truncated(model_dir, capsys):
    translator = Translator.from_dir(model_dir)
    long_line = ", ".join(["the big dog"] * 30)
    code, out, err = run(capsys, "translate", model_dir, SENTENCES[0], long_line, "--beam", 1)
    assert code == 0 and len(out.splitlines()) == 2
    assert "line 2 is longer than the model's data.max_length (20 pieces): translated in" in err
    parts = translator.segmenter(split_sentences=False)(long_line)
    assert len(parts.spans) > 1 and all(sentence.endswith("dog,") or sentence.endswith("dog")
                                        for sentence in parts.sentences)  # cut after the commas
    greedy = translator.search_options(beam_size=1)
    assert out.splitlines()[1] == " ".join(translator.translate(parts.sentences, greedy))


PARAGRAPH = "The dog sleeps.  A cat reads the book.\tBecause the man reads, the woman sleeps."


def test_split_sentences_translates_each_sentence_as_its_own_and_keeps_the_spacing(model_dir, capsys):
    translator = Translator.from_dir(model_dir)
    beam_2 = translator.search_options(beam_size=2)
    one_by_one = translator.translate(SENTENCES, beam_2)
    code, out, err = run(capsys, "translate", model_dir, PARAGRAPH, "", SENTENCES[0], "--beam", 2,
                         "--split-sentences")
    assert code == 0 and "--split-sentences" not in err
    assert out.split("\n") == [f"{one_by_one[0]}  {one_by_one[1]}\t{one_by_one[2]}", "", one_by_one[0], ""]
    assert translator.translate([PARAGRAPH, " Two. \n\n"], beam_2, split_sentences=True)[0] == out.split("\n")[0]


def test_without_split_sentences_a_line_of_several_gets_one_warning_naming_the_flag(model_dir, capsys):
    code, out, err = run(capsys, "translate", model_dir, PARAGRAPH, PARAGRAPH, SENTENCES[0], "--beam", 1)
    assert code == 0 and len(out.splitlines()) == 3
    assert err.count("--split-sentences") == 1 and "line 1 holds several sentences" in err


def test_a_paragraph_s_n_best_are_the_best_combinations_of_its_sentences(model_dir):
    translator = Translator.from_dir(model_dir)
    texts = SENTENCES[:2]
    options = translator.search_options(beam_size=3, n_best=3)
    each = translator.translate_n_best(texts, options)
    combined = translator.translate_n_best([" ".join(texts)], options, split_sentences=True)[0]
    assert combined[0].text == f"{each[0][0].text} {each[1][0].text}"
    assert combined[0].score == pytest.approx(each[0][0].score + each[1][0].score)
    scores = sorted((a.score + b.score for a in each[0] for b in each[1]), reverse=True)
    if all(n[i].score >= n[i + 1].score for n in each for i in range(2)):  # when the length penalty kept the order
        assert [t.score for t in combined] == pytest.approx(scores[:3])
    for translation in combined:
        assert [part.translation.text for part in translation.parts] in (
            [a.text, b.text] for a in each[0] for b in each[1])
        assert [translation.text[slice(*part.target)] for part in translation.parts] == \
            [part.translation.text for part in translation.parts]


def test_include_constraints_need_a_sentence_to_belong_to(model_dir):
    translator = Translator.from_dir(model_dir)
    with pytest.raises(UserError, match="line 1 has 2 sentences"):
        translator.translate([" ".join(SENTENCES[:2])], constraints=[["Hund"]], split_sentences=True)
    avoided = translator.translate([" ".join(SENTENCES[:2])], constraints=[{"avoid": ["der"]}], split_sentences=True)
    assert " der " not in f" {avoided[0]} "


def test_align_and_heatmaps_of_a_paragraph_are_per_sentence(model_dir, tmp_path, capsys):
    translator = Translator.from_dir(model_dir)
    code, out, _ = run(capsys, "translate", model_dir, " ".join(SENTENCES[:2]), "--split-sentences", "--align",
                       "--attention-dir", tmp_path)
    assert code == 0
    text, alignment = out.rstrip("\n").split(" ||| ")
    pairs = [tuple(map(int, p.split("-"))) for p in alignment.split()]
    first = translator.translate_with_details(SENTENCES[:1])[0]
    first_words = (len(first.text.split()), len(SENTENCES[0].split()))
    second = [(s, t) for s, t in pairs if t >= first_words[0]]
    assert second and all(s >= first_words[1] for s, _ in second)  # the second sentence aligns inside itself
    assert [t for _, t in pairs] == list(range(len(text.split())))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line-000001-s1.png", "line-000001-s2.png"]


def test_invalid_utf8_and_nul_in_input_are_replaced_with_a_warning(model_dir, tmp_path, capsys):
    source = tmp_path / "bad.en"
    source.write_bytes(b"The dog sleeps.\nThe \xff cat.\nA\x00B\n\n")
    code, out, err = run(capsys, "translate", model_dir, "-i", source)
    assert code == 0 and len(out.split("\n")) == 5 and out.split("\n")[3] == ""
    assert "line 2: invalid UTF-8" in err and "line 3: NUL character" in err
    expected = Translator.from_dir(model_dir).translate(["The dog sleeps.", "The \ufffd cat.", "A\ufffdB"])
    assert out.split("\n")[:3] == expected  # each bad byte became U+FFFD, and the line was translated with it


def test_a_damaged_checkpoint_given_to_translate_is_exit_2_naming_it(model_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    best = copy / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:500])  # cut short, as by a full disk
    code, out, err = run(capsys, "translate", copy, "The dog sleeps.")
    assert code == 2 and not out and str(best) in err and "Traceback" not in err


def test_evaluate_prints_bleu_and_chrf_with_signatures(model_dir, tmp_path, capsys):
    src, ref = ROOT / "data" / "toy" / "test.en", ROOT / "data" / "toy" / "test.de"
    tmp = tmp_path
    (tmp / "t.en").write_text("".join(src.read_text(encoding="utf-8").splitlines(True)[:20]), encoding="utf-8")
    (tmp / "t.de").write_text("".join(ref.read_text(encoding="utf-8").splitlines(True)[:20]), encoding="utf-8")
    code, out, _ = run(capsys, "evaluate", model_dir, "--src", tmp / "t.en", "--ref", tmp / "t.de", "--beam", 2)
    assert code == 0 and "BLEU = " in out and "chrF = " in out and "nrefs:1|case:mixed" in out
    code, out, _ = run(capsys, "evaluate", model_dir, "--src", tmp / "t.en", "--ref", tmp / "t.de", "--json")
    result = json.loads(out)
    beam = load_config(model_dir / "config.yaml").decoding.beam_size
    assert code == 0 and result["sentences"] == 20 and result["beam"] == beam
    assert 0 <= result["bleu"] <= 100 and 0 <= result["chrf"] <= 100 and "tok:13a" in result["bleu_signature"]


def test_training_chooses_the_length_penalty_on_valid_and_evaluate_uses_it(tmp_path, capsys):
    """training.tune_length_penalty: each candidate's valid BLEU is what `evaluate --length-penalty` measures,
    the best becomes decoding.length_penalty in config.yaml, and evaluate uses it by default."""
    candidates = [0.0, 1.0, 5.0]
    overrides = ["training.max_steps=30", "training.validate_every=30", "training.batch_tokens=800",
                 "model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
                 "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "data.max_length=20",
                 "decoding.beam_size=3", "decoding.length_penalty=0.3", f"training.tune_length_penalty={candidates}"]
    model = train_tiny(tmp_path, overrides, train_lines=600, valid_lines=30)
    records = [json.loads(line) for line in (model / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    (tuned,) = [r for r in records if r["event"] == "length_penalty"]
    (final,) = [r for r in records if r["event"] == "final"]
    assert tuned["length_penalties"] == candidates and tuned["beam_size"] == 3

    def evaluate(*options) -> dict:
        code, out, _ = run(capsys, "evaluate", model, "--src", tmp_path / "valid.en", "--ref", tmp_path / "valid.de",
                           "--json", *options)
        assert code == 0
        return json.loads(out)

    measured = [evaluate("--length-penalty", alpha) for alpha in candidates]
    assert [(r["bleu"], r["length_penalty"], r["beam"]) for r in measured] == [
        (round(bleu, 2), alpha, 3) for bleu, alpha in zip(tuned["bleu"], candidates)]
    best = max(tuned["bleu"])
    assert tuned["chosen"] == candidates[tuned["bleu"].index(best)]
    assert (final["valid_bleu"], final["length_penalty"]) == (best, tuned["chosen"])
    assert load_config(model / "config.yaml").decoding.length_penalty == tuned["chosen"]
    assert evaluate()["length_penalty"] == tuned["chosen"]
    with pytest.raises(SystemExit) as exited:  # argparse rejects the value itself
        main(["evaluate", str(model), "--src", "x", "--ref", "y", "--length-penalty", "-1"])
    assert exited.value.code == 2 and "expected a finite number ≥ 0" in capsys.readouterr().err


def test_evaluate_bad_inputs_exit_2_with_a_clear_message(model_dir, tmp_path, capsys):
    (tmp_path / "a.en").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "b.de").write_text("eins\n", encoding="utf-8")
    code, _, err = run(capsys, "evaluate", model_dir, "--src", tmp_path / "a.en", "--ref", tmp_path / "b.de")
    assert code == 2 and "has 2 lines" in err and "has 1 lines" in err and "Traceback" not in err
    code, _, err = run(capsys, "evaluate", model_dir, "--src", tmp_path / "missing.en", "--ref", tmp_path / "b.de")
    assert code == 2 and "missing.en does not exist" in err
    code, _, err = run(capsys, "evaluate", tmp_path, "--src", tmp_path / "a.en", "--ref", tmp_path / "b.de")
    assert code == 2 and "not a model directory" in err


def test_n_best_larger_than_beam_is_a_usage_error(model_dir, capsys):
    code, _, err = run(capsys, "translate", model_dir, "x", "--beam", 2, "--n-best", 3)
    assert code == 2 and "larger than the beam size" in err


def test_readme_python_example_runs(model_dir, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "Translator.from_dir(" in code
    exec(compile(code.replace('"runs/toy"', repr(str(model_dir))), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("[") and printed.count("\n") >= 1


def test_importing_the_package_is_cheap():
    code = "import sys, seq2seq; print('torch' in sys.modules, seq2seq.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.split()[0] == "False"


def test_word_ids_and_alignment_by_hand():
    import torch

    assert word_ids(["▁Der", "▁Ha", "us", "."]) == [0, 1, 1, 1]
    src = ["▁the", "▁house", "s"]  # 2 source words: "the" "houses"
    trg = ["▁die", "▁Häuser"]
    weights = torch.tensor([[0.7, 0.2, 0.0, 0.1],  # "die" → the
                            [0.1, 0.3, 0.5, 0.1],  # "Häuser" → houses (0.3 + 0.5 over its two pieces)
                            [0.0, 0.0, 0.0, 1.0]])  # EOS row and column are ignored
    assert pharaoh(align_words(weights, src, trg)) == "0-0 1-1"


def test_unusable_outputs_and_inputs_exit_2(model_dir, tmp_path, capsys):
    code, _, err = run(capsys, "translate", model_dir, "x", "-o", tmp_path / "missing" / "out.txt")
    assert code == 2 and "cannot write the output file" in err
    (tmp_path / "file").write_text("")
    code, _, err = run(capsys, "translate", model_dir, "x", "--attention-dir", tmp_path / "file")
    assert code == 2 and "is not a directory" in err
    code, _, err = run(capsys, "translate", model_dir, "-i", tmp_path)
    assert code == 2 and "is not a file" in err


def test_invalid_utf8_in_an_argument_is_replaced_not_fatal(model_dir, capsys):
    argument = b"The \xff dog sleeps.".decode("utf-8", errors="surrogateescape")  # as Python passes argv
    code, out, err = run(capsys, "translate", model_dir, argument)
    assert code == 0 and len(out.splitlines()) == 1 and "line 1: invalid UTF-8" in err


def test_broken_model_directories_exit_2(model_dir, tmp_path, capsys):
    import shutil

    broken = tmp_path / "no_spm"
    shutil.copytree(model_dir, broken)
    shutil.rmtree(broken / "spm")
    code, _, err = run(capsys, "translate", broken, "x")
    assert code == 2 and "src.model is missing" in err

    edited = tmp_path / "edited"
    shutil.copytree(model_dir, edited)
    config = (edited / "config.yaml").read_text()
    (edited / "config.yaml").write_text(config.replace("decoder_hidden: 32", "decoder_hidden: 48")
                                        .replace("attention: dot", "attention: general"))
    code, _, err = run(capsys, "translate", edited, "x")
    assert code == 2 and "does not fit the model" in err and "Traceback" not in err


def test_checkpoint_option_selects_the_file(model_dir, capsys):
    code, out, _ = run(capsys, "translate", model_dir, SENTENCES[0], "--checkpoint", "last.pt", "--beam", 1)
    assert code == 0 and len(out.splitlines()) == 1
    code, _, err = run(capsys, "translate", model_dir, SENTENCES[0], "--checkpoint", "nope.pt")
    assert code == 2 and "nope.pt does not exist" in err


def test_repeated_checkpoints_decode_as_an_ensemble(model_dir, tmp_path, capsys):
    steps = sorted(path.name for path in (model_dir / "checkpoints").glob("step_*.pt"))
    assert len(steps) >= 2
    for options, expected in ([["--checkpoint", "last.pt", "--checkpoint", steps[0]], ["last.pt", steps[0]]],
                              [["--ensemble-last", "2"], steps[-2:]], [[], ["best.pt"]]):
        args = build_parser().parse_args(["translate", str(model_dir), "x", *options])
        assert chosen_checkpoints(args) == expected
    _, single, _ = run(capsys, "translate", model_dir, *SENTENCES, "--beam", 3)
    code, copies, _ = run(capsys, "translate", model_dir, *SENTENCES, "--beam", 3, "--checkpoint", "best.pt",
                          "--checkpoint", "best.pt")
    assert code == 0 and copies == single  # an ensemble of copies of a model translates as the model
    named = Translator.from_dir(model_dir, checkpoint=steps[-2:])
    assert isinstance(named.model, Ensemble) and len(named.model.members) == 2
    int8 = Translator.from_dir(model_dir, checkpoint=steps[-2:], quantize="int8")
    assert all(isinstance(m.decoder.output, torch.ao.nn.quantized.dynamic.Linear) for m in int8.model.members)
    assert len(int8.translate(SENTENCES, int8.search_options(beam_size=2))) == 3
    code, newest, _ = run(capsys, "translate", model_dir, *SENTENCES, "--ensemble-last", 2, "--beam", 1)
    assert code == 0 and newest.splitlines() == named.translate(SENTENCES, named.search_options(beam_size=1))
    src, ref = write_slice(tmp_path, "valid", 30) + ".en", str(tmp_path / "valid.de")
    code, out, _ = run(capsys, "evaluate", model_dir, "--src", src, "--ref", ref, "--ensemble-last", 2, "--json")
    assert code == 0 and json.loads(out)["sentences"] == 30


def test_ensemble_options_that_cannot_work_exit_2(model_dir, tmp_path, capsys):
    code, _, err = run(capsys, "translate", model_dir, "x", "--ensemble-last", 99)
    assert code == 2 and "fewer than --ensemble-last 99" in err and "Traceback" not in err
    code, _, err = run(capsys, "translate", model_dir, "x", "--checkpoint", "best.pt", "--checkpoint", "nope.pt")
    assert code == 2 and "nope.pt does not exist" in err
    code, _, err = run(capsys, "translate", tmp_path, "x", "--ensemble-last", 2)
    assert code == 2 and "not a model directory" in err
    with pytest.raises(UserError, match="no checkpoint"):
        Translator.from_dir(model_dir, checkpoint=[])
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", str(model_dir), "x", "--checkpoint", "best.pt", "--ensemble-last", "2"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_int8_quantized_translation_matches_fp32_on_most_sentences(model_dir, capsys):
    translator = Translator.from_dir(model_dir)
    fp32 = translator.translate(SENTENCES * 3, translator.search_options(beam_size=1))
    int8 = Translator.from_dir(model_dir, quantize="int8")
    assert isinstance(int8.model.decoder.output, torch.ao.nn.quantized.dynamic.Linear)
    assert sum(a == b for a, b in zip(fp32, int8.translate(SENTENCES * 3, int8.search_options(beam_size=1)))) >= 6
    code, out, _ = run(capsys, "translate", model_dir, *SENTENCES, "--quantize", "int8")
    assert code == 0 and len(out.splitlines()) == 3


@pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no bfloat16 LSTM kernel (needs AVX-512)")
def test_bf16_translation_matches_fp32_on_most_sentences_and_keeps_float32_scores(model_dir, capsys):
    translator = Translator.from_dir(model_dir)
    fp32 = translator.translate_n_best(SENTENCES * 3, translator.search_options(beam_size=3))
    bf16 = Translator.from_dir(model_dir, precision="bf16")
    assert bf16.model.decoder.output.weight.dtype == torch.bfloat16
    half = bf16.translate_n_best(SENTENCES * 3, bf16.search_options(beam_size=3))
    assert sum(a[0].text == b[0].text for a, b in zip(fp32, half)) >= 6
    assert all(isinstance(n_best[0].score, float) and n_best[0].attention.dtype == torch.float32 for n_best in half)
    code, out, _ = run(capsys, "translate", model_dir, *SENTENCES, "--precision", "bf16", "--beam", 1)
    assert code == 0 and out.splitlines() == bf16.translate(SENTENCES, bf16.search_options(beam_size=1))


def test_two_number_formats_at_once_are_refused(model_dir, capsys):
    code, _, err = run(capsys, "translate", model_dir, "x", "--quantize", "int8", "--precision", "bf16")
    assert code == 2 and "two number formats" in err
    code, out, _ = run(capsys, "translate", model_dir, *SENTENCES, "--quantize", "int8", "--precision", "int8")
    assert code == 0 and len(out.splitlines()) == 3
    with pytest.raises(UserError, match="unknown precision"):
        Translator.from_dir(model_dir, precision="fp8")


def test_the_parameter_count_is_the_models_in_every_precision(model_dir):
    fp32 = Translator.from_dir(model_dir)
    assert fp32.parameters == sum(p.numel() for p in fp32.model.parameters()) > 0
    assert Translator.from_dir(model_dir, precision="int8").parameters == fp32.parameters  # int8 hides its weights


@pytest.mark.parametrize(("attention", "alignment"), [("location", "global"), ("general", "local-p")])
def test_luong_attention_variants_train_and_translate_in_every_precision(tmp_path, attention, alignment):
    """The location score (a parameter row per source position, data.max_length + 1) and local-p attention end to
    end: trained with input feeding (the fused loop), decoded in fp32, int8 and (where supported) bf16, alone and
    as an ensemble."""
    overrides = ["training.max_steps=20", "training.validate_every=10", "training.batch_tokens=800",
                 "model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
                 "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "data.max_length=20",
                 f"model.attention={attention}", f"model.alignment={alignment}", "model.local_window=3",
                 "model.input_feeding=true", "training.keep_last=2", "training.shortlist=false"]
    model = train_tiny(tmp_path, overrides, train_lines=300, valid_lines=10)
    fp32 = Translator.from_dir(model)
    if attention == "location":
        assert fp32.model.decoder.attention.position_proj.weight.shape == (21, 32)
    sentences = ["The dog sleeps.", "A cat reads the book because the old man sleeps in the small house."]
    # the second sentence is longer than data.max_length: it is cut into parts, each with its own attention
    greedy = fp32.search_options(beam_size=1)
    details = [part.translation for d in fp32.translate_with_details(sentences, greedy) for part in d.sentences]
    assert len(details) > 2 and all(d.attention.shape[1] == len(d.src_pieces) + 1 for d in details)
    for translation in details:
        window = fp32.with_window(translation).window
        if alignment == "global":
            assert window is None
            continue
        assert window.radius == 3 and len(window.centres) == translation.attention.size(0)
        for row, centre in enumerate(window.centres):  # the replayed centre frames every weighted position
            weighted = (translation.attention[row] > 1e-6).nonzero().view(-1).tolist()
            assert weighted and all(abs(j - centre) <= 3 + 1e-3 for j in weighted)
        picture = tmp_path / "heatmaps"
        assert main(["translate", str(model), "--beam", "1", "--attention-dir", str(picture), sentences[1]]) == 0
        assert (picture / "line-000001-s1.png").read_bytes()[:4] == b"\x89PNG"
    assert fp32.translate(sentences, greedy) == [n[0].text for n in fp32.translate_n_best(sentences, greedy)]
    beam_2 = fp32.search_options(beam_size=2)
    precisions = ["int8"] + (["bf16"] if bf16_supported("cpu") else [])
    for precision in precisions:
        assert len(Translator.from_dir(model, precision=precision).translate(sentences, beam_2)) == 2
    steps = sorted(path.name for path in (model / "checkpoints").glob("step_*.pt"))
    assert len(Translator.from_dir(model, checkpoint=steps[-2:]).translate(sentences, beam_2)) == 2
    testclient = pytest.importorskip("fastapi.testclient", reason="the serve extra")
    from seq2seq.serve.app import create_app
    from seq2seq.serve.models import load_models
    from seq2seq.serve.state import ServeState

    with testclient.TestClient(create_app(ServeState(load_models([model])))) as client:
        result = client.post("/v1/translate", json={"texts": sentences[:1], "beam": 1, "attention": True}).json()
    translation = result["results"][0]["translations"][0]
    assert ("window" in translation) == (alignment != "global")  # the page marks it on the heatmap
    if alignment != "global":
        assert translation["window"]["radius"] == 3 and len(translation["window"]["centres"]) == len(
            translation["attention"])
