"""Constraints, glossaries, sampling and diverse beam search on a trained toy model, from the Python API, the command
line, the server and the back-translation script: what a user asks for is what the output holds."""

import io
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.cli import main
from seq2seq.decoding.constraints import Constraints, read_constraints
from seq2seq.decoding.diverse import Diversity
from seq2seq.decoding.glossary import Glossary
from seq2seq.decoding.precision import bf16_supported
from seq2seq.decoding.sampling import Sampling
from seq2seq.decoding.translator import Translator
from seq2seq.errors import UserError
from tests.conftest import VARIANT_BASE
from tests.helpers import ROOT, TOY, train_tiny

SOURCES = (TOY / "test.en").read_text(encoding="utf-8").splitlines()[:6]


@pytest.fixture(scope="module")
def model_dir(trained_variant):
    return trained_variant("fluent")  # the session's (read-only)


@pytest.fixture(scope="module")
def translator(model_dir):
    return Translator.from_dir(model_dir)


@pytest.fixture(scope="module")
def target_words(translator):
    """German words of the toy corpus: single pieces and words the target model cuts into several."""
    words = sorted({w for line in (TOY / "train.de").read_text(encoding="utf-8").split() for w in [line.strip(".,")]
                    if w.isalpha()})
    pieces = {w: len(translator.trg_tok.encode([w])[0]) for w in words}
    return [w for w in words if pieces[w] == 1][:40], [w for w in words if pieces[w] > 1][:40]


def occurrences(text: str, phrase: str) -> int:
    """Where ``phrase`` stands as whole words (a constraint met inside a longer word does not count)."""
    return len(re.findall(rf"(?<!\w){re.escape(phrase)}(?!\w)", text))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_constraint_appears_in_every_output(translator, target_words, data):
    single, multi = target_words
    word = st.sampled_from(single + multi)
    phrases = data.draw(st.lists(st.one_of(word, st.builds(lambda a, b: f"{a} {b}", word, word)), min_size=1,
                                 max_size=3))
    phrases += data.draw(st.sampled_from([[], [phrases[0]]]))  # sometimes a repeated constraint
    phrases.append(data.draw(st.sampled_from(multi)))  # always one that cuts across pieces
    free = [w for w in single if not any(w.lower() in p.lower() for p in phrases)]  # no part of a phrase to include
    avoid = data.draw(st.lists(st.sampled_from(free), max_size=2, unique=True))
    beam = data.draw(st.sampled_from([1, 2, 4]))
    outputs = translator.translate(SOURCES, translator.search_options(beam_size=beam),
                                   constraints=[{"include": phrases, "avoid": avoid}] * len(SOURCES))
    for output in outputs:
        for phrase in set(phrases):
            assert occurrences(output, phrase) >= phrases.count(phrase), (output, phrases)
        assert not any(occurrences(output, word) for word in avoid), (output, avoid)


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_constraints_hold_in_every_number_format(model_dir, target_words, precision):
    if precision == "bf16" and not bf16_supported("cpu"):
        pytest.skip("this CPU has no bfloat16 LSTM kernel: bf16 would decode in fp32")
    single, multi = target_words
    avoided = next(w for w in single[5:] if not multi[2].startswith(w))  # not a piece of a phrase to include
    wanted = {"include": [multi[2], f"{single[3]} {single[4]}"], "avoid": [avoided]}
    translator = Translator.from_dir(model_dir, precision=precision)  # bf16 falls back to fp32 without support
    for output in translator.translate(SOURCES, constraints=[wanted] * len(SOURCES)):
        assert multi[2] in output and f"{single[3]} {single[4]}" in output, output
        assert not re.search(rf"(?<!\w){avoided}(?!\w)", output), output


def test_avoided_phrases_never_appear_and_no_constraints_changes_nothing(translator):
    plain = translator.translate(SOURCES)
    assert translator.translate(SOURCES, constraints=[None] * len(SOURCES)) == plain
    assert translator.translate(SOURCES, constraints=[Constraints()] * len(SOURCES)) == plain
    for sentence, output in zip(SOURCES, plain):
        avoided = [w for w in output.rstrip(".").split() if len(w) > 3][:2]
        if not avoided:
            continue
        changed, = translator.translate([sentence], constraints=[{"avoid": avoided}])
        assert not any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", changed) for w in avoided), (changed, avoided)


def test_placed_spans_point_at_each_constraint(translator, target_words):
    phrase = target_words[1][0]
    translation = translator.translate_with_details(SOURCES[:1], constraints=[[phrase]])[0]
    (start, end), = translation.placed
    assert "".join(translation.trg_pieces[start:end]).replace("\u2581", " ").strip() == phrase


def test_sampling_from_the_api_is_seeded_and_top_k_1_is_greedy(translator):
    first = translator.translate_n_best(SOURCES, translator.search_options(n_best=3, policy=Sampling(), seed=7,
                                                                           batch_size=2))
    again = translator.translate_n_best(SOURCES, translator.search_options(n_best=3, policy=Sampling(), seed=7,
                                                                           batch_size=6))
    assert [[t.text for t in n] for n in first] == [[t.text for t in n] for n in again]
    top_1 = translator.search_options(policy=Sampling(top_k=1))
    assert translator.translate(SOURCES, top_1) == translator.translate(SOURCES, translator.search_options(beam_size=1))


def test_translate_cli_reads_a_constraints_file_line_by_line(model_dir, tmp_path, capsys, target_words):
    source = tmp_path / "in.en"
    source.write_text("\n".join(SOURCES[:3]) + "\n", encoding="utf-8")
    single, multi = target_words
    constraints = tmp_path / "constraints.jsonl"
    constraints.write_text(json.dumps({"include": [multi[0]], "avoid": [single[0]]}) + "\n\n"
                           + f"{single[1]}\t{multi[1]}\n", encoding="utf-8")
    assert main(["translate", str(model_dir), "-i", str(source), "--constraints", str(constraints)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert multi[0] in lines[0] and not re.search(rf"(?<!\w){single[0]}(?!\w)", lines[0])
    assert single[1] in lines[2] and multi[1] in lines[2]
    assert main(["translate", str(model_dir), "-i", str(source)]) == 0
    assert capsys.readouterr().out.splitlines()[1] == lines[1]  # its empty line constrains nothing
    constraints.write_text("{}\n", encoding="utf-8")
    assert main(["translate", str(model_dir), "-i", str(source), "--constraints", str(constraints)]) == 2
    assert "ends before input line 2" in capsys.readouterr().err
    constraints.write_text("\n\n\n\n\n", encoding="utf-8")  # empty lines after the last input line are fine
    assert main(["translate", str(model_dir), "-i", str(source), "--constraints", str(constraints)]) == 0
    constraints.write_text("\n\n\n\nHund\n", encoding="utf-8")
    assert main(["translate", str(model_dir), "-i", str(source), "--constraints", str(constraints)]) == 2
    assert "more lines than the input" in capsys.readouterr().err


def test_translate_cli_samples_reproducibly(model_dir, capsys):
    args = ["translate", str(model_dir), *SOURCES[:2], "--sample", "--n-best", "3", "--top-p", "0.9", "--seed", "4"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main([*args, "--batch-size", "1"]) == 0
    assert capsys.readouterr().out == first and len(first.splitlines()) == 6
    assert main([*args, "--beam", "2"]) == 2
    assert "--beam belongs to search" in capsys.readouterr().err


def test_translate_cli_avoid_temperature_and_top_k_equal_the_python_api(model_dir, translator, capsys):
    plain = translator.translate(SOURCES[:3])
    avoided = sorted({w for line in plain for w in line.rstrip(".").split() if len(w) > 3})[:2]
    args = ["translate", str(model_dir), *SOURCES[:3]]
    assert main([*args, *(x for word in avoided for x in ("--avoid", word))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == translator.translate(SOURCES[:3], constraints=[{"avoid": avoided}] * 3)
    assert not any(occurrences(line, word) for line in lines for word in avoided) and lines != plain
    assert main([*args, "--sample", "--temperature", "0.7", "--top-k", "5", "--seed", "11", "--n-best", "2"]) == 0
    drawn = [line.split(" ||| ")[1] for line in capsys.readouterr().out.splitlines()]
    expected = translator.translate_n_best(SOURCES[:3], translator.search_options(
        n_best=2, policy=Sampling(temperature=0.7, top_k=5), seed=11))
    assert drawn == [t.text for n_best in expected for t in n_best]


def test_the_server_draws_what_the_cli_draws_for_the_same_seed(model_dir, capsys):
    from fastapi.testclient import TestClient

    from seq2seq.serve.app import create_app
    from seq2seq.serve.models import load_models
    from seq2seq.serve.state import ServeState

    assert main(["translate", str(model_dir), *SOURCES[:4], "--sample", "--top-p", "0.8", "--seed", "5"]) == 0
    cli = capsys.readouterr().out.splitlines()
    with TestClient(create_app(ServeState(load_models([model_dir])))) as client:
        body = client.post("/v1/translate", json={"texts": SOURCES[:4], "sample": True, "top_p": 0.8, "seed": 5,
                                                  "split_sentences": False}).json()
    assert [result["translations"][0]["text"] for result in body["results"]] == cli


def n_best_lines(out: str) -> dict[int, list[str]]:
    """The translations of each input line of ``--n-best`` output (INDEX ||| text ||| score)."""
    lines: dict[int, list[str]] = {}
    for row in out.splitlines():
        index, text, _ = row.split(" ||| ")
        lines.setdefault(int(index), []).append(text)
    return lines


def test_translate_cli_diverse_groups_give_n_best_lists_of_more_distinct_words(model_dir, translator, capsys):
    args = ["translate", str(model_dir), *SOURCES[:4], "--beam", "4", "--n-best", "4"]
    assert main(args) == 0
    plain = n_best_lines(capsys.readouterr().out)
    assert main([*args, "--diverse-groups", "4", "--diversity-strength", "1.0"]) == 0
    diverse = n_best_lines(capsys.readouterr().out)
    options = translator.search_options(beam_size=4, n_best=4, policy=Diversity(groups=4, strength=1.0))
    expected = translator.translate_n_best(SOURCES[:4], options)
    assert diverse == {i: [t.text for t in n_best] for i, n_best in enumerate(expected)}  # the CLI is the API

    def words(lists: dict[int, list[str]]) -> int:  # distinct words of each n-best list, summed
        return sum(len({word for text in texts for word in text.split()}) for texts in lists.values())

    assert words(diverse) > words(plain)


def test_diverse_beam_search_through_the_server_and_its_refusals(model_dir, translator, capsys):
    from fastapi.testclient import TestClient

    from seq2seq.serve.app import create_app
    from seq2seq.serve.models import load_models
    from seq2seq.serve.state import ServeState

    for flags, message in ((["--beam", "4", "--diverse-groups", "3"], "3 groups do not divide the beam size 4"),
                           (["--diversity-strength", "0.3"], "--diverse-groups G turns on"),
                           (["--diverse-groups", "2", "--sample"], "--diverse-groups belongs to search"),
                           (["--diverse-groups", "2", "--avoid", "Hund"], "does not honour constraints")):
        assert main(["translate", str(model_dir), SOURCES[0], *flags]) == 2
        assert message in capsys.readouterr().err
    request = {"texts": SOURCES[:3], "beam": 4, "n_best": 4, "diverse_groups": 2, "diversity_strength": 0.8,
               "split_sentences": False}
    options = translator.search_options(beam_size=4, n_best=4, policy=Diversity(groups=2, strength=0.8))
    expected = [[t.text for t in n_best] for n_best in translator.translate_n_best(SOURCES[:3], options)]
    with TestClient(create_app(ServeState(load_models([model_dir])))) as client:
        body = client.post("/v1/translate", json=request).json()
        assert [[t["text"] for t in result["translations"]] for result in body["results"]] == expected
        for bad, message in (({"diverse_groups": 3}, "3 groups do not divide the beam size 4"),
                             ({"diversity_strength": -1.0}, "diversity_strength: Input should be greater than or"),
                             ({"diverse_groups": 0}, "diverse_groups: Input should be greater than or equal to 1"),
                             ({"sample": True}, "give one of them"),
                             ({"constraints": [{"avoid": ["Hund"]}] * 3}, "constraints need beam or greedy")):
            response = client.post("/v1/translate", json={**request, **bad})
            assert response.status_code == 400 and message in response.json()["error"], response.json()


def test_constraint_lines_parse_or_name_the_line():
    lines = ['{"include": ["roter Ball"], "avoid": ["Katze"]}', "", "Hund\tKatze im Haus", '["Hund"]']
    parsed = list(read_constraints(lines, "c.txt"))
    assert parsed == [Constraints(("roter Ball",), ("Katze",)), Constraints(), Constraints(("Hund", "Katze im Haus")),
                      Constraints(("Hund",))]
    for bad, message in (('{"include": "Hund"}', "expected a list of phrases"), ('{"must": []}', "unknown key"),
                         ('{"include": [""]}', "a phrase is empty"), ("{broken", "not valid JSON")):
        with pytest.raises(UserError, match=f"c.txt, line 2.*{message}"):
            list(read_constraints(["", bad], "c.txt"))


def test_a_phrase_to_include_that_holds_an_avoided_one_or_has_no_pieces_is_refused(translator):
    with pytest.raises(UserError, match="must appear but contains"):
        translator.translate(SOURCES[:1], constraints=[{"include": ["der Hund"], "avoid": ["Hund"]}])
    for invisible in ({"avoid": ["\u200b"]}, {"include": ["\ufeff"]}):
        with pytest.raises(UserError, match="has no pieces"):
            translator.translate(SOURCES[:1], constraints=[invisible])


def test_glossary_terms_become_constraints_as_whole_words(tmp_path):
    path = tmp_path / "glossary.tsv"
    path.write_text("# term\ttranslation\nold man\tGreis\nman\tMensch\nStraße\troad\n", encoding="utf-8")
    glossary = Glossary.load(path)
    assert glossary.constraints("The OLD MAN and the man, a manly man.") == Constraints(("Greis", "Mensch"))
    assert glossary.constraints("Eine straße.") == Constraints(("road",))
    assert glossary.constraints("mankind") == Constraints()
    path.write_text("dog\tHund\ncat\n", encoding="utf-8")
    with pytest.raises(UserError, match="glossary.tsv, line 2: expected 'source term<TAB>target term'"):
        Glossary.load(path)


def test_the_tag_writer_tags_each_line_once_however_it_is_written(script):
    out = io.StringIO()
    tagged = script("backtranslate").Tagged(out, "<BT>")
    for part in ("Ein Hund\n\nZwei", " Katzen\nDrei\n"):
        tagged.write(part)
    assert out.getvalue() == "<BT> Ein Hund\n\n<BT> Zwei Katzen\n<BT> Drei\n"


def test_backtranslation_writes_a_tagged_corpus_that_trains_beside_the_real_one(model_dir, tmp_path, script):
    monolingual = tmp_path / "mono.en"
    lines = (TOY / "train.en").read_text(encoding="utf-8").splitlines()[1000:1040]
    monolingual.write_text("\n".join(lines) + "\n", encoding="utf-8")
    backtranslate = script("backtranslate")
    assert backtranslate.main([str(model_dir), "--input", str(monolingual), "--output", str(tmp_path / "bt" / "syn"),
                               "--tag", "<BT>", "--seed", "3"]) == 0
    synthetic = (tmp_path / "bt" / "syn.de").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "bt" / "syn.en").read_text(encoding="utf-8").splitlines() == lines
    assert len(synthetic) == len(lines) and all(s.startswith("<BT> ") for s in synthetic if s)  # '' stays untagged
    assert not list((tmp_path / "bt").glob("*.partial"))
    backtranslate.main([str(model_dir), "--input", str(monolingual), "--output", str(tmp_path / "again"),
                        "--tag", "<BT>", "--seed", "3"])
    assert (tmp_path / "again.de").read_text(encoding="utf-8").splitlines() == synthetic  # seeded
    # de→en on the real pairs and the synthetic ones, the tag one piece
    (tmp_path / "forward").mkdir()
    forward = train_tiny(tmp_path / "forward", [*VARIANT_BASE, "training.max_steps=2", "data.src_lang=de",
                                                "data.trg_lang=en", f"data.extra_train=[{tmp_path / 'bt' / 'syn'}]",
                                                "tokenizer.user_symbols=[<BT>]"], train_lines=200, valid_lines=10)
    manifest = json.loads((forward / "data" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["train"]["read"] == 200 + len(lines)
    src_tok = Translator.from_dir(forward).src_tok
    assert src_tok.id_to_piece(src_tok.encode([synthetic[0]])[0])[:1] == ["<BT>"] or \
        src_tok.id_to_piece(src_tok.encode([synthetic[0]])[0])[:2] == ["\u2581", "<BT>"]


def test_the_readme_names_every_control():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for flag in ("--constraints", "--avoid", "--sample", "--top-p", "--glossary", "backtranslate.py"):
        assert flag in readme, flag
