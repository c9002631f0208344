"""The web page in a real browser: type a sentence, translate, read the output, the n-best list and the heatmap.

Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``) and selenium; skips without
them. ``SEQ2SEQ_PAGE_MODEL=MODEL_DIR`` serves that model instead of a tiny one, and
``SEQ2SEQ_PAGE_SCREENSHOT=FILE.png`` keeps the screenshot (the README's comes from the Multi30k model), taken
with beam ``SEQ2SEQ_PAGE_BEAM`` (default 1).
"""

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from seq2seq.config import load_config
from tests.helpers import start_server

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install -e '.[serve]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="the page test needs selenium (the test extra)")
ActionChains = pytest.importorskip("selenium.webdriver.common.action_chains").ActionChains
By = pytest.importorskip("selenium.webdriver.common.by").By
Keys = pytest.importorskip("selenium.webdriver.common.keys").Keys
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Chromium and chromedriver "
                                "(Debian: apt-get install chromium chromium-driver)")
EXAMPLES = {"en": "Because the old man reads the book, the woman calls her dog.",
            "de": "Ein Mann mit einem orangefarbenen Hut starrt auf etwas."}


@pytest.fixture(scope="module")
def model_dir(trained_variant) -> Path:
    if os.environ.get("SEQ2SEQ_PAGE_MODEL"):
        return Path(os.environ["SEQ2SEQ_PAGE_MODEL"])
    return trained_variant("fluent")  # the session's (read-only)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1280,1400", "--force-device-scale-factor=1",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def api_translation(base: str, text: str, beam: int, n_best: int) -> dict:
    body = json.dumps({"texts": [text], "beam": beam, "n_best": n_best, "attention": True, "align": True}).encode()
    request = urllib.request.Request(base + "/v1/translate", data=body, headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=60).read())["results"][0]


def translate_on_page(browser, text: str, beam: int, n_best: int) -> None:
    """Fill in the form as a user does and press Ctrl+Enter; wait for the new result."""
    for field, value in (("beam", beam), ("nbest", n_best)):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(str(value))
    source = browser.find_element(By.ID, "source")
    source.clear()
    source.send_keys(text)
    browser.execute_script("document.getElementById('result').hidden = true")
    source.send_keys(Keys.CONTROL, Keys.ENTER)
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "result").is_displayed())


@contextmanager
def page_of(browser, model_dir: Path, *serve_args: str) -> Iterator[str]:
    """``seq2seq serve MODEL_DIR`` with the page open in the browser once its models have loaded; the server's
    base URL. The server stops when the block ends."""
    process, base = start_server(str(model_dir), *serve_args)
    try:
        browser.get(base + "/")
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#model option"))
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_page_translates_and_draws_one_heatmap_row_per_target_piece(model_dir, browser, tmp_path):
    with page_of(browser, model_dir) as base:
        text = EXAMPLES[load_config(model_dir / "config.yaml").data.src_lang]

        translate_on_page(browser, text, beam=3, n_best=3)
        expected = api_translation(base, text, beam=3, n_best=3)
        rows = browser.find_elements(By.CSS_SELECTOR, "#nbest-list tbody tr")
        assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows] == \
            [t["text"].strip() for t in expected["translations"]]

        # greedy: a tiny model's beam search may prefer the empty output, greedy search does not stop that early
        beam = int(os.environ.get("SEQ2SEQ_PAGE_BEAM", "1"))
        translate_on_page(browser, text, beam=beam, n_best=1)
        expected = api_translation(base, text, beam=beam, n_best=1)
        best = expected["translations"][0]
        assert best["trg_pieces"], "the model translated the example into nothing"
        assert browser.find_element(By.ID, "output").text.strip() == best["text"].strip()
        assert len(browser.find_elements(By.CSS_SELECTOR, "table.heatmap")) == 1  # one sentence, one heatmap
        heatmap_rows = browser.find_elements(By.CSS_SELECTOR, "table.heatmap tr.trg-row:not(.eos)")
        columns = browser.find_elements(By.CSS_SELECTOR, "table.heatmap th.src:not(.eos)")
        assert len(heatmap_rows) == len(best["trg_pieces"]) and len(columns) == len(expected["src_pieces"])
        cells = heatmap_rows[0].find_elements(By.CSS_SELECTOR, "td.cell")
        assert len(cells) == len(expected["src_pieces"]) + 1  # and the end-of-sentence column

        ActionChains(browser).move_to_element(heatmap_rows[0].find_element(By.CSS_SELECTOR, "th.trg")).perform()
        assert "attends to" in browser.find_element(By.CSS_SELECTOR, ".focus").text
        ActionChains(browser).move_to_element(columns[0]).perform()
        assert "is attended by" in browser.find_element(By.CSS_SELECTOR, ".focus").text
        links = browser.find_elements(By.CSS_SELECTOR, "#alignment line.link")
        assert len(links) == len(best["alignment"].split())

        ActionChains(browser).move_to_element(heatmap_rows[min(2, len(heatmap_rows) - 1)]).perform()
        screenshot = Path(os.environ.get("SEQ2SEQ_PAGE_SCREENSHOT") or tmp_path / "page.png")
        browser.find_element(By.TAG_NAME, "body").screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000


PARAGRAPHS = {"en": "The old man reads the book. The woman calls her dog.\n\nToday she sleeps.",
              "de": "Ein Mann fährt Fahrrad. Zwei Hunde spielen im Schnee.\n\nEine Frau liest."}


def test_page_translates_a_pasted_paragraph_with_one_heatmap_per_sentence(model_dir, browser):
    with page_of(browser, model_dir) as base:
        text = PARAGRAPHS[load_config(model_dir / "config.yaml").data.src_lang]
        translate_on_page(browser, text, beam=1, n_best=1)
        best = api_translation(base, text, beam=1, n_best=1)["translations"][0]
        assert len(best["sentences"]) == 3
        assert browser.find_element(By.ID, "output").text.split() == best["text"].split()
        assert "\n\n" in browser.find_element(By.ID, "output").text  # the paragraph break shows where it was
        blocks = browser.find_elements(By.CSS_SELECTOR, ".sentence-attention")
        assert len(blocks) == 3
        for block, sentence in zip(blocks, best["sentences"]):
            assert block.find_element(By.CSS_SELECTOR, ".sentence-source").text.endswith(
                text[sentence["source"][0]:sentence["source"][1]])
            rows = block.find_elements(By.CSS_SELECTOR, "tr.trg-row")
            assert len(rows) == len(sentence["attention"])
        ActionChains(browser).move_to_element(blocks[2].find_element(By.CSS_SELECTOR, "th.trg")).perform()
        assert "attends to" in blocks[2].find_element(By.CSS_SELECTOR, ".focus").text


def test_page_asks_for_a_key_when_the_server_requires_one(model_dir, browser, tmp_path):
    from seq2seq.serve.access import MISSING_KEY
    from seq2seq.serve.keys import KeyStore

    store = KeyStore(tmp_path / "keys.db")
    key = store.add("page")
    store.close()
    process, base = start_server(str(model_dir), "--api-keys", "--api-keys-db", str(tmp_path / "keys.db"))
    try:
        browser.execute_script("localStorage.clear()")
        browser.get(base + "/")
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "key-control").is_displayed())
        source = browser.find_element(By.ID, "source")
        source.clear()
        source.send_keys(EXAMPLES[load_config(model_dir / "config.yaml").data.src_lang], Keys.CONTROL, Keys.ENTER)
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "error").is_displayed())
        assert browser.find_element(By.ID, "error").text == MISSING_KEY
        browser.find_element(By.ID, "api-key").send_keys(key)
        translate_on_page(browser, source.get_attribute("value"), beam=1, n_best=1)
        assert browser.find_element(By.ID, "output").text
        assert not browser.find_element(By.ID, "error").is_displayed()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_page_terms_become_constraints_and_are_highlighted_where_they_landed(model_dir, browser):
    with page_of(browser, model_dir):
        text = EXAMPLES[load_config(model_dir / "config.yaml").data.src_lang]
        target = load_config(model_dir / "config.yaml").data.trg_lang
        term = {"de": "Hund", "en": "dog"}.get(target, "a")  # a word of the toy corpus, wanted twice
        include = browser.find_element(By.ID, "include")
        include.clear()
        include.send_keys(f"{term}; {term}")
        translate_on_page(browser, text, beam=2, n_best=1)
        marks = browser.find_elements(By.CSS_SELECTOR, "#output mark")
        assert [mark.text for mark in marks] == [term, term]
        assert browser.find_element(By.ID, "output").text.count(term) >= 2
