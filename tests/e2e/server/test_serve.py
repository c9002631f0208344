"""seq2seq serve: LibreTranslate-compatible and native APIs, batching across requests, limits and faults."""

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import torch

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install -e '.[serve]'")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.decoding.glossary import Glossary
from seq2seq.decoding.sampling import Sampling
from seq2seq.decoding.search_types import SearchOptions, Translation
from seq2seq.decoding.translator import Translator
from seq2seq.decoding.word_alignment import align_words, pharaoh, word_ids
from seq2seq.documents.segmentation import Segmented
from seq2seq.serve.app import create_app
from seq2seq.serve.batcher import Batcher, DecodeKey
from seq2seq.serve.limits import Limits
from seq2seq.serve.models import load_models
from seq2seq.serve.server import bind
from seq2seq.serve.state import ServeState
from tests.helpers import ROOT, start_server

SENTENCES = ["The dog sleeps.", "A cat reads the book.", "Because the man reads, the woman sleeps."]


@pytest.fixture(scope="module")
def models(trained_variant):
    """Two tiny models of the session (read-only): en→de and de→en."""
    return {"en_de": trained_variant("plain"), "de_en": trained_variant("de-en")}


def make_client(model_dirs, **state_options) -> TestClient:
    served = load_models(model_dirs)
    return TestClient(create_app(ServeState(served, **state_options)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(models, tmp_path_factory):
    # the directories are both named "model"; serve them under distinct names
    links = tmp_path_factory.mktemp("served")
    for name, directory in models.items():
        (links / name).symlink_to(directory)
    with make_client([links / "en_de", links / "de_en"], limits=Limits(max_texts=8, max_chars=300),
                     max_batch=4) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def translator(models):
    return Translator.from_dir(models["en_de"])


# --- LibreTranslate-compatible API -------------------------------------------------------------------------------

def test_libretranslate_json_string_and_list_match_the_translator(client, translator):
    expected = translator.translate(SENTENCES, translator.search_options(beam_size=3))
    one = client.post("/translate", json={"q": SENTENCES[0], "source": "en", "target": "de", "format": "text"})
    assert one.status_code == 200 and one.json() == {"translatedText": expected[0]}
    many = client.post("/translate", json={"q": SENTENCES, "source": "en", "target": "de"})
    assert many.status_code == 200 and many.json() == {"translatedText": expected}


def test_libretranslate_form_body_and_query_string(client, translator):
    expected = translator.translate(SENTENCES[:1], translator.search_options(beam_size=3))[0]
    form = client.post("/translate", data={"q": SENTENCES[0], "source": "en", "target": "de", "api_key": "x"})
    assert form.status_code == 200 and form.json() == {"translatedText": expected}
    query = client.post("/translate", params={"q": SENTENCES[0], "source": "en", "target": "de"})
    assert query.json() == {"translatedText": expected}


def test_libretranslate_other_pair_empty_and_multiline_text(client, models):
    de_en = Translator.from_dir(models["de_en"])
    german = ["Der Hund schläft.", "Die Katze liest."]
    response = client.post("/translate", json={"q": ["\n".join(german), ""], "source": "de", "target": "en"})
    lines = de_en.translate(german, de_en.search_options(beam_size=3))
    assert response.json() == {"translatedText": ["\n".join(lines), ""]}


PARAGRAPH = " The dog sleeps.  A cat reads the book.\n\nBecause the man reads, the woman sleeps. "


def test_libretranslate_translates_a_paragraph_sentence_by_sentence_keeping_its_spacing(client, translator):
    one_by_one = translator.translate(SENTENCES, translator.search_options(beam_size=3))
    body = client.post("/translate", json={"q": PARAGRAPH, "source": "en", "target": "de"}).json()
    assert body == {"translatedText": f" {one_by_one[0]}  {one_by_one[1]}\n\n{one_by_one[2]} "}


def test_libretranslate_alternatives_of_a_paragraph_combine_its_sentences(client, translator):
    text = " ".join(SENTENCES[:2])
    options = translator.search_options(beam_size=3, n_best=3)
    combined = translator.translate_n_best([text], options, split_sentences=True)[0]
    body = client.post("/translate", json={"q": text, "source": "en", "target": "de", "alternatives": 2}).json()
    assert body["translatedText"] == combined[0].text
    assert body["alternatives"] == list(dict.fromkeys(t.text for t in combined[1:] if t.text != combined[0].text))


def test_libretranslate_alternatives_are_other_beam_hypotheses(client, translator):
    n_best = translator.translate_n_best([SENTENCES[1]], translator.search_options(beam_size=3, n_best=3))[0]
    body = client.post("/translate", json={"q": SENTENCES[1], "source": "en", "target": "de",
                                           "alternatives": 2}).json()
    assert body["translatedText"] == n_best[0].text
    assert body["alternatives"] == list(dict.fromkeys(t.text for t in n_best[1:] if t.text != n_best[0].text))


def test_libretranslate_auto_source_detects_each_text_s_language(client, translator, models):
    de_en = Translator.from_dir(models["de_en"])
    identifier = client.app.state.serve.identifier
    body = client.post("/translate", json={"q": SENTENCES[0], "source": "auto", "target": "de"}).json()
    confidence = round(100 * identifier.confidences(SENTENCES[0])["en"], 1)
    assert body == {"translatedText": translator.translate(SENTENCES[:1], translator.search_options(beam_size=3))[0],
                    "detectedLanguage": {"confidence": confidence, "language": "en"}}
    assert confidence > 50
    german = "Der alte Mann liest das Buch, weil die Frau schläft."
    body = client.post("/translate", json={"q": [german, ""], "source": "auto", "target": "en"}).json()
    assert body["translatedText"] == de_en.translate([german, ""], de_en.search_options(beam_size=3))
    assert body["detectedLanguage"][0]["language"] == "de"


def test_detect_ranks_the_served_source_languages(client):
    german = client.post("/detect", json={"q": "Der alte Mann liest das Buch."}).json()
    assert [found["language"] for found in german] == ["de", "en"] and german[0]["confidence"] > 50
    assert sum(found["confidence"] for found in german) == pytest.approx(100, abs=0.2)
    english = client.post("/detect", data={"q": "dog"}).json()  # one word, as a browser extension sends, as a form
    assert english[0]["language"] == "en"
    assert client.post("/detect", json={"q": "1234 ..."}).json() == [{"confidence": 0.0, "language": "de"},
                                                                    {"confidence": 0.0, "language": "en"}]
    for body, message in (({}, "missing q parameter"), ({"q": ["a"]}, "q must be a string")):
        response = client.post("/detect", json=body)
        assert response.status_code == 400 and message in response.json()["error"]
    assert client.post("/detect", json={"q": "x" * 301}).status_code == 413


def test_languages_lists_each_language_with_its_targets(client):
    assert client.get("/languages").json() == [{"code": "de", "name": "German", "targets": ["en"]},
                                               {"code": "en", "name": "English", "targets": ["de"]}]


@pytest.mark.parametrize("body, status, message", [
    ({"source": "en", "target": "de"}, 400, "Invalid request: missing q parameter"),
    ({"q": "x", "target": "de"}, 400, "Invalid request: missing source parameter"),
    ({"q": "x", "source": "en"}, 400, "Invalid request: missing target parameter"),
    ({"q": "x", "source": "en", "target": "fr"}, 400, "fr is not supported"),
    ({"q": "x", "source": "en", "target": "en"}, 400,
     "English (en) is not available as a target language from English (en)"),
    ({"q": "x", "source": "en", "target": "de", "format": "html"}, 400, "html format is not supported"),
    ({"q": [1, 2], "source": "en", "target": "de"}, 400, "Invalid request: q must be a string or a list of strings"),
    ({"q": "x", "source": "en", "target": "de", "alternatives": "many"}, 400,
     "Invalid request: alternatives parameter is not a number"),
    ({"q": ["x"] * 9, "source": "en", "target": "de"}, 413, "at most 8 per request (max_texts)"),
    ({"q": "x" * 301, "source": "en", "target": "de"}, 413, "at most 300 per text (max_chars)"),
])
def test_libretranslate_errors_name_the_problem(client, body, status, message):
    response = client.post("/translate", json=body)
    assert response.status_code == status and message in response.json()["error"]


def test_malformed_json_is_400_never_500(client):
    for path in ("/translate", "/v1/translate"):
        for body in (b'{"q": ', b"[" * 10_000, b'{"alternatives": ' + b"9" * 5000 + b"}"):
            response = client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400 and ("JSON" in response.json()["error"] or "body" in
                                                    response.json()["error"])


def test_a_lone_surrogate_is_400_and_does_not_fail_other_requests(client):
    bad = b'{"q": "\\ud800 dog", "source": "en", "target": "de"}'
    response = client.post("/translate", content=bad, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "surrogate" in response.json()["error"]
    response = client.post("/translate", content=b'{"q": "x", "source": "\\ud800", "target": "de"}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "source holds a lone surrogate" in response.json()["error"]
    response = client.post("/v1/translate", content=b'{"texts": ["ok", "\\udfff"]}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "text 1" in response.json()["error"]


def test_texts_count_against_the_text_limit_and_oversized_bodies_are_refused_unread(client):
    assert client.post("/translate", json={"q": "a.\n" * 9, "source": "en", "target": "de"}).status_code == 200
    response = client.post("/translate", json={"q": ["a"] * 9, "source": "en", "target": "de"})
    assert response.status_code == 413 and "9 texts" in response.json()["error"]
    limit = Limits(max_texts=8, max_chars=300).max_body_bytes
    response = client.post("/translate", content=b"x" * (limit + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and f"at most {limit}" in response.json()["error"]


# --- native API --------------------------------------------------------------------------------------------------

def test_native_translate_returns_n_best_pieces_attention_and_alignment(client, translator):
    response = client.post("/v1/translate", json={"texts": SENTENCES[:2], "model": "en_de", "beam": 3, "n_best": 2,
                                                   "attention": True, "align": True})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "en_de" and body["beam"] == 3
    expected = translator.translate_n_best(SENTENCES[:2], translator.search_options(beam_size=3, n_best=2))
    for result, text, n_best in zip(body["results"], SENTENCES, expected):
        assert result["source"] == text and result["src_pieces"] == n_best[0].src_pieces
        assert [t["text"] for t in result["translations"]] == [t.text for t in n_best]
        scores = [t["score"] for t in result["translations"]]
        assert scores == pytest.approx([t.score for t in n_best], abs=1e-5)
        for got, want in zip(result["translations"], n_best):
            weights = torch.tensor(got["attention"])  # [T (+ EOS), S + EOS]
            assert weights.shape == want.attention.shape
            assert weights.shape[1] == len(result["src_pieces"]) + 1
            assert torch.allclose(weights.sum(dim=1), torch.ones(weights.shape[0]), atol=1e-3)
            assert got["alignment"] == pharaoh(align_words(want.attention, want.src_pieces, want.trg_pieces))


def test_native_beam_1_equals_greedy_and_details_are_optional(client, translator):
    body = client.post("/v1/translate", json={"texts": SENTENCES, "beam": 1}).json()
    greedy = translator.search_options(beam_size=1)
    assert [r["translations"][0]["text"] for r in body["results"]] == translator.translate(SENTENCES, greedy)
    assert "attention" not in body["results"][0]["translations"][0]
    assert "alignment" not in body["results"][0]["translations"][0]


def test_native_empty_text_gives_an_empty_translation(client):
    result = client.post("/v1/translate", json={"texts": ["", "  "], "attention": True}).json()["results"]
    assert [r["translations"][0]["text"] for r in result] == ["", "  "]  # whitespace comes back as it was
    assert result[0]["translations"][0]["attention"] == []


def test_native_paragraph_has_each_sentence_with_its_spans_attention_and_alignment(client, translator):
    # the tiny model takes 20 pieces at most: its third sentence is cut in two
    segments = translator.segmenter(split_sentences=True)(PARAGRAPH).sentences
    assert segments[:2] == SENTENCES[:2] and " ".join(segments[2:]) == SENTENCES[2]
    expected = translator.translate_n_best(segments, translator.search_options(beam_size=3, n_best=1))
    body = client.post("/v1/translate", json={"texts": [PARAGRAPH], "beam": 3, "attention": True,
                                              "align": True}).json()
    result = body["results"][0]
    best = result["translations"][0]
    assert "attention" not in best and len(best["sentences"]) == len(segments)
    assert result["src_pieces"] == [p for n_best in expected for p in n_best[0].src_pieces]
    words = [0, 0]
    pairs = []
    for sentence, source, (want,) in zip(best["sentences"], segments, expected):
        assert PARAGRAPH[slice(*sentence["source"])] == source
        assert best["text"][slice(*sentence["target"])] == want.text
        assert sentence["trg_pieces"] == want.trg_pieces and sentence["score"] == pytest.approx(want.score, abs=1e-5)
        assert torch.allclose(torch.tensor(sentence["attention"], dtype=torch.float64), want.attention.double(),
                              atol=1e-4)
        assert sentence["alignment"] == pharaoh(align_words(want.attention, want.src_pieces, want.trg_pieces))
        pairs += [(s + words[0], t + words[1]) for s, t in align_words(want.attention, want.src_pieces,
                                                                        want.trg_pieces)]
        words = [words[0] + word_ids(want.src_pieces)[-1] + 1, words[1] + word_ids(want.trg_pieces)[-1] + 1]
    assert best["alignment"] == pharaoh(pairs)
    assert best["score"] == pytest.approx(sum(n_best[0].score for n_best in expected), abs=1e-4)
    short = "The dog sleeps. A cat."  # taken whole, and short enough to need no cut
    whole = client.post("/v1/translate", json={"texts": [short], "beam": 3, "split_sentences": False}).json()
    assert "sentences" not in whole["results"][0]["translations"][0]
    beam_3 = translator.search_options(beam_size=3)
    assert whole["results"][0]["translations"][0]["text"] == translator.translate([short], beam_3)[0]


def test_native_include_needs_one_sentence_and_the_glossary_goes_by_sentence(client, models, tmp_path):
    response = client.post("/v1/translate", json={"texts": ["The dog sleeps. The cat reads."],
                                                  "constraints": [{"include": ["Hund"]}]})
    assert response.status_code == 400 and "text 0 has 2 sentences" in response.json()["error"]
    avoided = client.post("/v1/translate", json={"texts": ["The dog sleeps. The cat reads."],
                                                 "constraints": [{"avoid": ["Hund"]}]})
    assert avoided.status_code == 200
    (tmp_path / "glossary.tsv").write_text("the cat\tKatze\n", encoding="utf-8")
    with make_client([models["en_de"]], glossary=Glossary.load(tmp_path / "glossary.tsv")) as glossary_client:
        best = glossary_client.post("/v1/translate", json={"texts": ["The dog sleeps. The cat reads."]}).json()[
            "results"][0]["translations"][0]
    first, second = best["sentences"]
    (start, end), = best["placed"]  # the term, placed in the sentence that holds "the cat"
    assert best["text"][start:end] == "Katze" and second["target"][0] <= start < end <= second["target"][1]


@pytest.mark.parametrize("body, status, message", [
    ({"texts": ["x"], "model": "nope"}, 404, "unknown model 'nope'; this server has: en_de, de_en"),
    ({"texts": "x"}, 400, "texts: Input should be a valid list"),
    ({"texts": [1]}, 400, "texts.0: Input should be a valid string"),
    ({"texts": ["x"], "beam": "5"}, 400, "beam: Input should be a valid integer"),
    ({"texts": ["x"], "beam": 0}, 400, "beam must be between 1 and 16"),
    ({"texts": ["x"], "beam": 2, "n_best": 3}, 400, "n_best must be between 1 and the beam size (2)"),
    ({"texts": ["x"], "colour": "red"}, 400, "colour: Extra inputs are not permitted"),
    ({"texts": ["x"] * 9}, 413, "max_texts"),
])
def test_native_errors_name_the_problem(client, body, status, message):
    response = client.post("/v1/translate", json=body)
    assert response.status_code == status and message in response.json()["error"]


def test_native_constraints_match_the_translator_and_say_where_each_phrase_landed(client, translator):
    output = translator.translate(SENTENCES[:1])[0]
    phrase = max(output.rstrip(".").split(), key=len)  # a word the model knows, wanted in another sentence
    wanted = [{"include": [phrase]}, None, {"avoid": [phrase]}]
    body = client.post("/v1/translate", json={"texts": SENTENCES, "model": "en_de", "beam": 3,
                                              "constraints": wanted}).json()
    expected = translator.translate(SENTENCES, translator.search_options(beam_size=3), constraints=wanted)
    texts = [r["translations"][0]["text"] for r in body["results"]]
    assert texts == expected and phrase not in texts[2].split()
    (start, end), = body["results"][0]["translations"][0]["placed"]
    assert texts[0][start:end] == phrase
    assert "placed" not in body["results"][1]["translations"][0]


def test_native_sampling_is_seeded_and_top_k_1_is_greedy(client, translator):
    request = {"texts": SENTENCES, "model": "en_de", "sample": True, "n_best": 3, "seed": 11, "top_p": 0.9}
    first = client.post("/v1/translate", json=request).json()
    assert client.post("/v1/translate", json=request).json() == first
    assert all(len(r["translations"]) == 3 for r in first["results"])
    greedy = client.post("/v1/translate", json={**request, "n_best": 1, "top_k": 1, "top_p": 1.0}).json()
    assert [r["translations"][0]["text"] for r in greedy["results"]] == translator.translate(
        SENTENCES, translator.search_options(policy=Sampling(top_k=1)))


@pytest.mark.parametrize("body, message", [
    ({"texts": ["x", "y"], "constraints": [None]}, "1 constraint sets for 2 texts"),
    ({"texts": ["x"], "constraints": [{"include": ["Hund"]}], "sample": True}, "constraints need beam or greedy"),
    ({"texts": ["x"], "constraints": [{"include": ["der Hund"], "avoid": ["Hund"]}]}, "must appear but contains"),
    ({"texts": ["x"], "constraints": [{"include": ["a"] * 17}]}, "at most 16"),
    ({"texts": ["x"], "constraints": [{"include": [""]}]}, "a phrase is empty"),
    ({"texts": ["x"], "constraints": [{"must": ["a"]}]}, "Extra inputs are not permitted"),
    ({"texts": ["x"], "sample": True, "top_p": 0}, "top_p: Input should be greater than 0"),
    ({"texts": ["x"], "constraints": [{"include": ["Donaudampfschifffahrtsgesellschaftskapitän"] * 9}]},
     "this server accepts at most 64"),
])
def test_native_constraint_and_sampling_errors_are_400(client, body, message):
    response = client.post("/v1/translate", json=body)
    assert response.status_code == 400 and message in response.json()["error"], response.json()


def test_a_glossary_constrains_both_apis(models, tmp_path, translator):
    output = translator.translate(["The dog sleeps."])[0]
    term = max(output.rstrip(".").split(), key=len)
    (tmp_path / "glossary.tsv").write_text(f"the cat\t{term}\n", encoding="utf-8")
    with make_client([models["en_de"]], glossary=Glossary.load(tmp_path / "glossary.tsv")) as glossary_client:
        libre = glossary_client.post("/translate", json={"q": ["The CAT reads.", "A man reads."], "source": "en",
                                                          "target": "de"}).json()["translatedText"]
        native = glossary_client.post("/v1/translate", json={"texts": ["The cat reads."]}).json()
    assert term in libre[0].split() or term in libre[0]
    assert libre[1] == translator.translate(["A man reads."])[0]  # no term: unchanged
    assert term in native["results"][0]["translations"][0]["text"]
    with make_client([models["en_de"]], glossary=Glossary.load(tmp_path / "glossary.tsv")) as glossary_client:
        asked = glossary_client.post("/v1/translate", json={"texts": ["The cat reads."],
                                                            "constraints": [{"include": [term]}]}).json()
        sampled = glossary_client.post("/v1/translate", json={"texts": ["The cat reads."], "sample": True,
                                                              "seed": 1})
    assert len(asked["results"][0]["translations"][0]["placed"]) == 1  # the glossary adds no second copy
    assert sampled.status_code == 200  # sampling takes no constraints, the glossary's neither


def test_models_describe_languages_sizes_and_training_bleu(client, models):
    described = {m["name"]: m for m in client.get("/v1/models").json()}
    assert set(described) == {"en_de", "de_en"}
    final = [json.loads(line) for line in (models["en_de"] / "metrics.jsonl").read_text().splitlines()]
    final = [e for e in final if e["event"] == "final"][-1]
    en_de = described["en_de"]
    assert (en_de["source"], en_de["target"], en_de["checkpoint"], en_de["beam_size"]) == ("en", "de", "best.pt", 3)
    assert en_de["bleu"]["valid"] == pytest.approx(final["valid_bleu"])
    assert en_de["parameters"] == sum(p.numel() for p in Translator.from_dir(models["en_de"]).model.parameters())


def test_health_page_docs_and_unknown_routes(client):
    assert client.get("/health").json()["status"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "cdn" not in page.text.lower()
    assert client.get("/static/app.js").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert "/v1/translate" in client.get("/openapi.json").json()["paths"]
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}


any_text = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | any_text,
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=10)
bodies = st.one_of(
    st.binary(max_size=200).map(lambda raw: ("application/json", raw)),
    st.binary(max_size=200).map(lambda raw: ("application/x-www-form-urlencoded", raw)),
    json_values.map(lambda value: ("application/json", json.dumps(value).encode())),
    st.fixed_dictionaries({}, optional={"q": json_values, "source": st.sampled_from(["en", "de", "auto", "xx", 3]),
                                        "target": st.sampled_from(["en", "de", None]), "alternatives": json_values,
                                        "texts": json_values, "beam": json_values, "n_best": json_values,
                                        "model": json_values, "attention": json_values})
    .map(lambda value: ("application/json", json.dumps(value).encode())),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from(["/translate", "/v1/translate"]))
def test_arbitrary_bodies_never_get_a_500(client, body, path):
    content_type, raw = body
    response = client.post(path, content=raw, headers={"Content-Type": content_type})
    assert response.status_code in (200, 400, 404, 413), response.text
    assert ("error" in response.json()) == (response.status_code != 200)
    assert client.get("/health").status_code == 200


# --- batching across requests ------------------------------------------------------------------------------------

def fake_translation(text: str) -> Translation:
    return Translation(text.upper(), [], [], 0.0, torch.zeros(0, 0))


class FakeStream:
    """A stream that decodes up to ``capacity`` sentences at once and finishes a sentence after as many steps as
    its text has characters; a text containing "boom" makes every step that decodes it fail."""

    def __init__(self, key, log, capacity=4, seconds_per_step=0.005):
        self.key, self.log, self.capacity, self.seconds_per_step = key, log, capacity, seconds_per_step
        self.waiting, self.running = [], {}  # running: tag -> (text, steps left)

    @property
    def idle(self):
        return not self.waiting and not self.running

    @property
    def decoding(self):
        return len(self.running)

    def add(self, items, *, n_best=None, constraints=None, seed=None, first_number=None):
        self.waiting += items
        return []

    def discard(self, unwanted):
        dropped = [tag for tag, _ in self.waiting if unwanted(tag)]
        self.waiting = [(tag, text) for tag, text in self.waiting if not unwanted(tag)]
        return dropped

    def step(self):
        time.sleep(self.seconds_per_step)
        while self.waiting and len(self.running) < self.capacity:
            tag, text = self.waiting.pop(0)
            self.running[tag] = (text, len(text))
        self.log.append((self.key, sorted(text for text, _ in self.running.values())))
        if any("boom" in text for text, _ in self.running.values()):
            raise RuntimeError("model failed")
        self.running = {tag: (text, left - 1) for tag, (text, left) in self.running.items()}
        done = [(tag, [fake_translation(text)]) for tag, (text, left) in self.running.items() if left == 0]
        for tag, _ in done:
            del self.running[tag]
        return done


def test_requests_join_the_decoding_batch_as_it_runs_and_get_their_answers_in_order():
    steps = []

    async def scenario():
        batcher = Batcher(lambda key: FakeStream(key, steps))
        batcher.start()
        greedy, beam = DecodeKey("m", SearchOptions(beam_size=1)), DecodeKey("m", SearchOptions(beam_size=5))
        first = asyncio.ensure_future(batcher.translate(greedy, ["long sentence", "ab"]))
        while not steps:  # the first request is decoding
            await asyncio.sleep(0.001)
        later = [batcher.translate(greedy, [f"a{i}", f"b{i}"]) for i in range(3)]
        results = await asyncio.gather(first, *later, batcher.translate(beam, ["beam"]))
        await batcher.stop()
        return results, batcher.stats, batcher.alive

    results, stats, alive = asyncio.run(scenario())
    assert [n_best[0].text for n_best in results[0]] == ["LONG SENTENCE", "AB"]
    for i, result in enumerate(results[1:4]):
        assert [n_best[0].text for n_best in result] == [f"A{i}", f"B{i}"]
    assert results[4][0][0].text == "BEAM"
    assert all(len(texts) <= 4 for _, texts in steps)
    assert all(("beam" in texts) == (key.options.beam_size == 5) for key, texts in steps)  # settings never mix
    # the later requests decoded beside the long sentence, which was still running when they arrived
    assert any("long sentence" in texts and "a0" in texts for _, texts in steps)
    assert stats.sentences == 9 and stats.steps == len(steps) and not alive


def test_a_failing_sentence_fails_only_its_own_request_and_the_batcher_goes_on():
    steps = []

    async def scenario():
        batcher = Batcher(lambda key: FakeStream(key, steps))
        batcher.start()
        key = DecodeKey("m", SearchOptions(beam_size=1))
        bad, good = await asyncio.gather(batcher.translate(key, ["boom"]), batcher.translate(key, ["fine"]),
                                         return_exceptions=True)
        later = await batcher.translate(key, ["later"])
        await batcher.stop()
        return bad, good, later, batcher.alive, batcher.queued

    bad, good, later, alive, queued = asyncio.run(scenario())
    assert isinstance(bad, RuntimeError) and "model failed" in str(bad)
    assert good[0][0].text == "FINE" and later[0][0].text == "LATER" and not alive and queued == 0


def test_a_cancelled_request_is_dropped_from_the_queue():
    steps = []

    async def scenario():
        batcher = Batcher(lambda key: FakeStream(key, steps, capacity=1))
        batcher.start()
        key = DecodeKey("m", SearchOptions(beam_size=1))
        busy = asyncio.ensure_future(batcher.translate(key, ["x" * 30]))
        gone = asyncio.ensure_future(batcher.translate(key, ["never decoded"]))
        await asyncio.sleep(0.05)
        gone.cancel()
        await busy
        await batcher.stop()
        return batcher.queued

    assert asyncio.run(scenario()) == 0
    assert not any("never decoded" in texts for _, texts in steps)


HOSTILE = [
    "!!! ??? ... ;;; ---",
    "Der Hund שלום 漢字 dog. Привет мир!",
    "\u200f\u05e9\u05dc\u05d5\u05dd. \u05de\u05d4?",
    "\U0001f600\U0001f600. \U0001f468\u200d\U0001f469\u200d\U0001f467 ok. \U0001f1e9\U0001f1ea",
    "a\u200db\u200cc\u0301\ufe0f. \u2028next\u2029 line",
    "\t\n \r\n",
]


def test_hostile_paragraphs_are_answered_without_5xx_and_keep_their_spacing(models):
    with make_client([models["en_de"]], limits=Limits(max_texts=8, max_chars=100_000)) as big:
        body = big.post("/v1/translate", json={"texts": HOSTILE, "beam": 1}).json()
        for text, result in zip(HOSTILE, body["results"]):
            translated = result["translations"][0]
            sentences = translated.get("sentences", [])
            source = Segmented(text, [tuple(sentence["source"]) for sentence in sentences])
            target = Segmented(translated["text"], [tuple(sentence["target"]) for sentence in sentences])
            assert "".join(source.gaps).strip() == ""  # every character that is not whitespace is in a sentence
            assert target.gaps == source.gaps  # and the whitespace between them comes back as it was
        line = "wort " * 4_000  # 20,000 characters, no punctuation: cut between words, nothing dropped
        response = big.post("/translate", json={"q": line, "source": "en", "target": "de"})
        assert response.status_code == 200 and response.json()["translatedText"].endswith(" ")


# --- the real server ---------------------------------------------------------------------------------------------

def test_the_official_libretranslate_client_works_and_sigterm_finishes_in_flight_requests(models, translator):
    libretranslatepy = pytest.importorskip("libretranslatepy")
    # one sentence decoding at a time keeps the long request below in flight for a while
    process, base = start_server(str(models["en_de"]), "--max-batch", "1", "--max-texts", "300")
    try:
        client = libretranslatepy.LibreTranslateAPI(base + "/")
        assert client.languages() == [{"code": "de", "name": "German", "targets": []},
                                      {"code": "en", "name": "English", "targets": ["de"]}]
        beam_3 = translator.search_options(beam_size=3)
        assert client.translate(SENTENCES[0], "en", "de") == translator.translate(SENTENCES[:1], beam_3)[0]
        assert client.translate(PARAGRAPH, "en", "de") == translator.translate([PARAGRAPH], beam_3,
                                                                              split_sentences=True)[0]
        detected = client.detect("The old man reads the book.")
        assert [found["language"] for found in detected] == ["en"] and detected[0]["confidence"] > 50
        texts = SENTENCES * 30  # each translated as it is alone (tests/unit/decoding/test_engine.py)
        body = json.dumps({"q": texts, "source": "en", "target": "de"}).encode()
        post = urllib.request.Request(base + "/translate", data=body, headers={"Content-Type": "application/json"})
        answers = []
        request = threading.Thread(target=lambda: answers.append(
            json.loads(urllib.request.urlopen(post, timeout=60).read())["translatedText"]))
        request.start()
        deadline = time.monotonic() + 30
        while json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())["queued"] == 0:
            assert time.monotonic() < deadline, "the request never reached the decoder"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)  # while the request is being decoded
        request.join(timeout=60)
        assert answers == [translator.translate(SENTENCES, translator.search_options(beam_size=3)) * 30]
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()


def test_the_server_helper_gives_up_in_time_and_leaves_no_process(tmp_path, monkeypatch):
    import queue

    from tests import helpers

    start = time.monotonic()
    with pytest.raises(AssertionError, match="said nothing"):  # no line ever arrives
        helpers._announced_url(queue.Queue(), [], time.monotonic() + 0.3)
    assert time.monotonic() - start < 5
    started = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(helpers.subprocess, "Popen", lambda *a, **k: started.append(real_popen(*a, **k)) or started[-1])
    with pytest.raises(AssertionError, match="exited"):  # a server that fails to start
        helpers.start_server(str(tmp_path / "nothing"))
    assert started[0].poll() == 2


def test_two_clients_sentences_share_the_real_engine_s_steps(models, translator):
    """The real batcher and engine behind the real server: two requests sent together decode in fewer steps than
    the two took one after the other, and each gets its own translations."""
    process, base = start_server(str(models["en_de"]), "--beam", "1", "--max-batch", "64")

    def health() -> dict:
        return json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())

    def ask(texts: list[str]) -> list[str]:
        body = json.dumps({"q": texts, "source": "en", "target": "de"}).encode()
        post = urllib.request.Request(base + "/translate", data=body, headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(post, timeout=120).read())["translatedText"]

    first, second = SENTENCES * 6, list(reversed(SENTENCES)) * 6
    try:
        before = health()
        assert ask(first) == translator.translate(first, translator.search_options(beam_size=1))
        assert ask(second) == translator.translate(second, translator.search_options(beam_size=1))
        alone = health()
        answers: dict[str, list[str]] = {}
        threads = [threading.Thread(target=lambda name=name, texts=texts: answers.update({name: ask(texts)}))
                   for name, texts in (("first", first), ("second", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        together = health()
    finally:
        process.terminate()
        process.wait(timeout=30)
    greedy = translator.search_options(beam_size=1)
    assert answers == {"first": translator.translate(first, greedy), "second": translator.translate(second, greedy)}
    segments = sum(len(translator.segmenter(split_sentences=True)(text).spans) for text in first + second)
    assert together["sentences"] - alone["sentences"] == alone["sentences"] - before["sentences"] == segments
    assert together["steps"] - alone["steps"] < alone["steps"] - before["steps"]  # they shared steps
    assert together["rows"] - alone["rows"] == alone["rows"] - before["rows"]  # the same sentence-steps in all


def test_a_second_ctrl_c_stops_the_server_at_once(models):
    process, base = start_server(str(models["en_de"]), "--max-batch", "1", "--max-texts", "300")
    try:
        body = json.dumps({"q": SENTENCES * 100, "source": "en", "target": "de"}).encode()
        post = urllib.request.Request(base + "/translate", data=body, headers={"Content-Type": "application/json"})
        outcome = []

        def send():
            try:
                outcome.append(urllib.request.urlopen(post, timeout=120).status)
            except OSError as error:  # the server went away mid-request
                outcome.append(error)

        request = threading.Thread(target=send)
        request.start()
        deadline = time.monotonic() + 30
        while json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())["queued"] == 0:
            assert time.monotonic() < deadline, "the request never reached the decoder"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)  # the first: finish what is in flight (300 sentences, one at a time)
        time.sleep(0.5)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGINT)  # the second: stop now
        process.wait(timeout=15)
        assert time.monotonic() - stopped_at < 10
        request.join(timeout=60)
        assert outcome and outcome[0] != 200  # its answer never came: the server did not wait for it
    finally:
        process.kill()
        process.wait(timeout=30)


def test_serve_glossary_loads_the_file_and_refuses_a_bad_one(models, translator, tmp_path):
    term = max(translator.translate(["The dog sleeps."])[0].rstrip(".").split(), key=len)
    glossary = tmp_path / "glossary.tsv"
    glossary.write_text(f"# terms\nthe cat\t{term}\n", encoding="utf-8")
    process, base = start_server(str(models["en_de"]), "--glossary", str(glossary))
    try:
        body = json.dumps({"q": "The cat reads.", "source": "en", "target": "de"}).encode()
        request = urllib.request.Request(base + "/translate", data=body, headers={"Content-Type": "application/json"})
        assert term in json.loads(urllib.request.urlopen(request, timeout=60).read())["translatedText"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    glossary.write_text("the cat without a tab\n", encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "seq2seq", "serve", str(models["en_de"]), "--glossary",
                              str(glossary)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and f"{glossary}, line 1" in refused.stderr


def test_loading_errors_and_a_busy_port_exit_2(models, tmp_path):
    missing = subprocess.run([sys.executable, "-m", "seq2seq", "serve", str(tmp_path / "nothing")],
                             check=False, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "is not a model directory" in missing.stderr
    broken = tmp_path / "broken"
    shutil.copytree(models["en_de"], broken)
    (broken / "spm" / "src.model").write_bytes(b"not a sentencepiece model")
    corrupt = subprocess.run([sys.executable, "-m", "seq2seq", "serve", str(broken)], check=False,
                             capture_output=True, text=True, timeout=120)
    assert corrupt.returncode == 2 and "no readable sentencepiece models" in corrupt.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "seq2seq", "serve", str(models["en_de"]), "--port",
                                 str(port)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_load_test_script_measures_a_served_model(models):
    script = ROOT / "scripts" / "load_test.py"
    run = subprocess.run([sys.executable, str(script), str(models["en_de"]), "--clients", "4", "--requests", "40",
                          "--beam", "1", "--json"], check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert (result["requests"], result["errors"], result["exit_code"]) == (40, 0, 0)
    assert result["served_sent_s"] > 0 and result["offline_sent_s"] > 0 and len(result["rss_samples_mb"]) == 10
    assert result["server_cores"] > 0 and result["client_cores"] > 0


def test_the_listening_socket_says_it_is_tcp_so_answers_are_not_held_back():
    """asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP; without it, Nagle's algorithm
    and delayed ACKs held every answer on a kept-alive connection for about 40 ms."""
    listener = bind("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
    finally:
        listener.close()
