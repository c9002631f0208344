"""The README and the pages in docs/ keep their promises: every relative link leads somewhere, every command in a
```bash block is one the CLI (or the script it names) accepts, and every block of docs/*.md that is not marked as a
long recipe runs as written, on a tiny trained model standing in for runs/toy.

A block marks itself as a long recipe (training on Multi30k, a benchmark, a server that runs until stopped) with
``# long recipe`` as its first line; its commands are still parsed. The README's first two blocks are the ones users
and CI run (``.ci/run``), so they are only parsed here.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from seq2seq.cli import build_parser, main
from tests.helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LONG_RECIPE = "# long recipe"
TOY_LINES = 20  # lines of each toy split in the working directory of the runnable blocks: evaluate stays fast
SHELL_OPERATORS = set("();<>|&")


class Block(NamedTuple):
    page: Path
    line: int  # the line of the opening fence, counted from 1
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def long(self) -> bool:
        return self.text.startswith(LONG_RECIPE + "\n")


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order."""
    blocks, language, start, body = [], None, 0, []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if language is None:
                language, start, body = line[3:].strip(), number, []
            else:
                blocks.append(Block(page, start, language, "".join(f"{text}\n" for text in body)))
                language = None
        elif language is not None:
            body.append(line)
    assert language is None, f"{page.relative_to(ROOT)}:{start}: a code block is never closed"
    return blocks


def without_comment(line: str) -> str:
    """A shell line up to its comment: an unquoted ``#`` at the start of a word."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    commands, pending = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = without_comment(pending + line).strip()
        pending = ""
        if command:
            commands.append(command)
    return commands


def shell_words(command: str) -> list[str]:
    """The words of a command as the shell splits them, with each operator (``|``, ``>``, ``&&``, ...) a word."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def is_operator(word: str) -> bool:
    return set(word) <= SHELL_OPERATORS


def simple_command(words: list[str]) -> list[str]:
    """The words before the first shell operator, without leading ``NAME=value`` environment settings."""
    cut = next((i for i, word in enumerate(words) if is_operator(word)), len(words))
    words = words[:cut]
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]
    return words


def seq2seq_arguments(words: list[str]) -> list[str] | None:
    """The arguments given to ``seq2seq`` by a command: ``seq2seq ...``, ``python -m seq2seq ...`` or torchrun's
    ``-m seq2seq ...`` and ``--no-python seq2seq ...``; None for other commands."""
    if words[:1] == ["seq2seq"]:
        return words[1:]
    for start in ("-m", "--no-python"):
        if words[:1] in (["torchrun"], ["python"], ["python3"]) and start in words:
            at = words.index(start)
            if words[at + 1:at + 2] == ["seq2seq"]:
                return words[at + 2:]
    return None


def script_path(words: list[str]) -> str | None:
    """The ``scripts/...`` file a command runs (``python scripts/x.py``, ``scripts/x.sh``), or None."""
    if words[:1] in (["python"], ["python3"]) and len(words) > 1 and words[1].startswith("scripts/"):
        return words[1]
    if words[:1] and words[0].startswith("scripts/"):
        return words[0]
    return None


def bash_blocks() -> Iterator[Block]:
    for page in PAGES:
        yield from (block for block in fenced_blocks(page) if block.language == "bash")


# -- links -------------------------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(page: Path) -> str:
    """A page without its fenced blocks and inline code spans, where no link is a link."""
    lines, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return re.sub(r"`[^`]*`", "", "\n".join(lines))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text lowercased, punctuation other than '-' and '_' removed, spaces to '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text).strip().lower()
    return "".join(char for char in text if char.isalnum() or char in " -_").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, a repeated heading's with GitHub's -1, -2, ..."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading.group(1))
            found.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return found


def test_slug_follows_github():
    assert slug("What happens when…") == "what-happens-when"
    assert slug("Luong's attention family at 15 minutes (Table 4)") == "luongs-attention-family-at-15-minutes-table-4"
    assert slug("Several processes or machines: `torchrun`") == "several-processes-or-machines-torchrun"
    assert slug("en→de on a CPU with bfloat16 instructions") == "ende-on-a-cpu-with-bfloat16-instructions"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    links = LINK.findall(prose(page))
    for target in links:
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and anchor not in anchors(linked):
            broken.append(f"{target}: no heading of {linked.name} has the anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_the_link_check_can_fail(tmp_path):
    assert len(LINK.findall(prose(ROOT / "README.md"))) >= 10  # the pattern finds links
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n[there](#a-page) [gone](missing.md) `[code](nowhere.md)`\n", encoding="utf-8")
    assert LINK.findall(prose(page)) == ["#a-page", "missing.md"]
    assert anchors(page) == {"a-page"}


# -- commands are accepted ---------------------------------------------------------------------------------------------

def parse_like_main(arguments: list[str]) -> argparse.Namespace:
    """Parse as ``seq2seq.cli.main`` does: its parser, plus sentences after options for ``translate``."""
    args, rest = build_parser().parse_known_args(arguments)
    if rest and not (args.command == "translate" and not any(word.startswith("-") for word in rest)):
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    return args


class ParserCaught(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def script_parser(path: Path, monkeypatch) -> argparse.ArgumentParser | None:
    """The parser a script's ``main()`` builds, caught as it starts to parse; None where the script cannot be
    imported here (an optional dependency missing)."""
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except ImportError:
        return None

    def catch(self, *args, **kwargs):
        raise ParserCaught(self)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        try:
            module.main()
        except ParserCaught as caught:
            return caught.parser
    raise AssertionError(f"{path.name}: main() returned without parsing its arguments")


def command_problem(command: str, monkeypatch, capsys) -> str | None:
    """Why a documented command would be refused (None when it is accepted, or is no seq2seq or scripts/ command)."""
    words = simple_command(shell_words(command))
    arguments, script = seq2seq_arguments(words), script_path(words)
    if arguments is not None:
        try:
            parse_like_main(arguments)
        except SystemExit:
            return f"seq2seq rejects it: {capsys.readouterr().err.strip().splitlines()[-1]}"
        missing = [word for word in arguments if word.startswith("configs/") and not (ROOT / word).is_file()]
        return f"no such config: {', '.join(missing)}" if missing else None
    if script is not None:
        path = ROOT / script
        if not path.is_file():
            return f"{script} does not exist"
        parser = script_parser(path, monkeypatch) if path.suffix == ".py" else None
        try:
            if parser is not None:
                parser.parse_args(words[2:])
        except SystemExit:
            return f"{script} rejects it: {capsys.readouterr().err.strip().splitlines()[-1]}"
    return None


def test_every_command_is_accepted(monkeypatch, capsys):
    """Each ``seq2seq`` command of a ```bash block parses as the CLI parses it, and each ``scripts/`` command names a
    script that exists and (for a Python script that imports here) takes those options."""
    problems, checked = [], 0
    for block in bash_blocks():
        for command in shell_commands(block.text):
            words = simple_command(shell_words(command))
            if "$" in command or "`" in command or not words:  # a substitution this test cannot resolve
                continue
            checked += seq2seq_arguments(words) is not None or script_path(words) is not None
            problem = command_problem(command, monkeypatch, capsys)
            if problem:
                problems.append(f"{block.where}: `{command}`: {problem}")
    assert checked >= 50, f"only {checked} commands found: is the block or command pattern right?"
    assert not problems, "\n".join(problems)


def test_the_command_check_can_fail(monkeypatch, capsys):
    assert "rejects" in command_problem("seq2seq translate runs/toy --beam five", monkeypatch, capsys)
    assert "rejects" in command_problem("seq2seq train configs/toy.yaml --resume oops", monkeypatch, capsys)
    assert "no such config" in command_problem("seq2seq train configs/nope.yaml", monkeypatch, capsys)
    assert "does not exist" in command_problem("python scripts/nope.py --x", monkeypatch, capsys)
    assert "rejects" in command_problem("python scripts/load_test.py runs/toy --clientz 8", monkeypatch, capsys)
    assert command_problem("seq2seq translate runs/toy --split-sentences 'After an option.'", monkeypatch,
                           capsys) is None
    assert shell_commands('seq2seq translate runs/toy \\\n    "a # b" --beam 5  # greedy: --beam 1\n# a comment\n') \
        == ['seq2seq translate runs/toy      "a # b" --beam 5']
    assert simple_command(shell_words("A=1 seq2seq translate runs/toy 'x | y' | head > out")) == \
        ["seq2seq", "translate", "runs/toy", "x | y"]


# -- the docs' blocks run ----------------------------------------------------------------------------------------------

def runnable_blocks() -> list[Block]:
    """The bash and python blocks of docs/*.md that are not long recipes."""
    return [block for page in PAGES if page.parent.name == "docs" for block in fenced_blocks(page)
            if block.language in ("bash", "python") and not block.long]


@pytest.fixture
def workspace(trained_variant, tmp_path, monkeypatch) -> Path:
    """A working directory where the docs' commands run as written: ``runs/toy`` a copy of a tiny trained model (the
    shared one is never written to), ``data/toy`` the first lines of the toy corpus, ``configs/`` and the rest of
    ``data/`` the repository's."""
    shutil.copytree(trained_variant("plain"), tmp_path / "runs" / "toy")
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "data" / "toy").mkdir(parents=True)
    for entry in (ROOT / "data").iterdir():
        if entry.name != "toy":
            (tmp_path / "data" / entry.name).symlink_to(entry)
    for path in (ROOT / "data" / "toy").iterdir():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:TOY_LINES]
        (tmp_path / "data" / "toy" / path.name).write_text("".join(lines), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Server:
    """``seq2seq serve runs/...`` for ``curl localhost:5000/...`` lines, in process: the app on the workspace's
    models, asked through FastAPI's test client. Started at the first ``curl``."""

    def __init__(self, workspace: Path):
        self.workspace, self.client = workspace, None

    def ask(self, words: list[str]):
        if self.client is None:
            pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install -e '.[serve]'")
            from fastapi.testclient import TestClient

            from seq2seq.serve.app import create_app
            from seq2seq.serve.models import load_models
            from seq2seq.serve.state import ServeState

            models = load_models(sorted((self.workspace / "runs").iterdir()))
            self.client = TestClient(create_app(ServeState(models)), raise_server_exceptions=False).__enter__()
        method, headers, data, url = "GET", {}, [], ""
        options = iter(words[1:])
        for word in options:
            if word in ("-s", "--silent"):
                continue
            if word in ("-H", "--header"):
                name, _, value = next(options).partition(":")
                headers[name.strip()] = value.strip()
            elif word in ("-d", "--data"):
                data.append(next(options))
            elif word in ("-X", "--request"):
                method = next(options)
            else:
                assert not word.startswith("-"), f"curl {word}: an option this test does not know"
                url = word
        assert re.match(r"(https?://)?(localhost|127\.0\.0\.1):5000/", url), f"curl {url}: not the server of the docs"
        if data:
            method = "POST" if method == "GET" else method
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        path = "/" + url.split(":5000/", 1)[1]
        return self.client.request(method, path, content="&".join(data).encode() if data else None, headers=headers)

    def close(self) -> None:
        if self.client is not None:
            self.client.__exit__(None, None, None)


def run_script(path: Path, arguments: list[str], monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [str(path), *arguments])
    try:
        result = module.main()
    except SystemExit as stop:
        result = stop.code
    except Exception as error:  # scripts let a user's error through as it is
        raise AssertionError(f"{path.name} failed: {error!r}") from error
    assert result in (None, 0), f"{path.name} exited with {result}"


def run_command(command: str, server: Server, monkeypatch, capsys) -> None:
    words = shell_words(command)
    arguments, script = seq2seq_arguments(words), script_path(words)
    if arguments is not None:
        assert not any(is_operator(word) for word in words), "run seq2seq without pipes or redirections here"
        assert arguments[:1] != ["serve"], "a server runs until stopped: mark the block `# long recipe`"
        try:
            code = main(arguments)
        except SystemExit as stop:  # argparse refused the arguments
            code = stop.code
        assert code == 0, f"exit code {code}: {capsys.readouterr().err.strip()[-2000:]}"
    elif words[:1] == ["curl"]:
        response = server.ask(words)
        assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    elif script is not None and script.endswith(".py"):
        run_script(ROOT / script, words[2:], monkeypatch)
    else:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"exit code {done.returncode}: {done.stderr.strip()[-2000:]}"


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda block: block.where)
def test_docs_blocks_run(block, workspace, monkeypatch, capsys):
    """Each block runs as written in the workspace (runs/toy is a tiny model), or says it is a long recipe."""
    if block.language == "python":
        exec(compile(block.text, block.where, "exec"), {"__name__": "__docs__"})
        assert capsys.readouterr().out, f"{block.where}: the example printed nothing"
        return
    server = Server(workspace)
    try:
        for command in shell_commands(block.text):
            try:
                run_command(command, server, monkeypatch, capsys)
            except AssertionError as error:
                raise AssertionError(f"{block.where}: `{command}`: {error}\nrun it, or make `{LONG_RECIPE}` the "
                                     "block's first line") from None
    finally:
        server.close()


def test_a_failing_command_fails_its_block(workspace, monkeypatch, capsys):
    server = Server(workspace)
    try:
        for command in ("seq2seq translate runs/toy --beam 0", "seq2seq evaluate runs/toy --src none --ref none",
                        "seq2seq serve runs/toy", "curl -s localhost:5000/nowhere", "false",
                        "python scripts/make_readme_figures.py no/such/model"):
            with pytest.raises(AssertionError):
                run_command(command, server, monkeypatch, capsys)
        run_command("curl -s localhost:5000/languages", server, monkeypatch, capsys)
    finally:
        server.close()


def test_runnable_blocks_are_found():
    blocks = runnable_blocks()
    assert any(block.language == "python" for block in blocks)
    assert any("curl" in block.text for block in blocks) and any("seq2seq" in block.text for block in blocks)


# -- the README stays a front page -------------------------------------------------------------------------------------

def test_the_readme_stays_a_front_page():
    readme = ROOT / "README.md"
    assert readme.read_text(encoding="utf-8").count("\n") <= 250, "README.md passes 250 lines: move detail to docs/"
    first, second = [block for block in fenced_blocks(readme) if block.language == "bash"][:2]
    assert "seq2seq train configs/toy.yaml" in first.text and "seq2seq translate runs/toy" in first.text
    assert "python -m pytest" in second.text  # .ci/run runs the README's second bash block
