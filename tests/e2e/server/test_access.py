"""API keys and limits for seq2seq serve: the key database, the rate limiter by hand, and a server that refuses
what it should (LibreTranslate's codes and messages) and stays responsive to everyone else."""

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install -e '.[serve]'")

from fastapi.testclient import TestClient

from seq2seq.errors import UserError
from seq2seq.serve.access import INVALID_KEY, MISSING_KEY, Access, RateLimiter
from seq2seq.serve.app import create_app
from seq2seq.serve.keys import KeyStore
from seq2seq.serve.models import load_models
from seq2seq.serve.state import ServeState
from tests.helpers import start_server

ASK = {"q": "The dog sleeps.", "source": "en", "target": "de"}


@pytest.fixture(scope="module")
def model(trained_variant):
    """The session's plain tiny model (tests/conftest.py): keys and limits do not depend on what it learned."""
    return trained_variant("plain")


def client_with(model, access: Access) -> TestClient:
    return TestClient(create_app(ServeState(load_models([model]), access=access)), raise_server_exceptions=False)


def keys_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seq2seq", "keys", *args], check=False, capture_output=True,
                          text=True, timeout=60)


# --- the rate limiter and the key database -----------------------------------------------------------------------

def test_the_rate_limiter_spends_a_minute_at_once_then_refills_at_its_rate():
    limiter = RateLimiter()
    assert [limiter.take("a", 3, at=0.0) for _ in range(3)] == [None, None, None]
    assert limiter.take("a", 3, at=0.0) == pytest.approx(20.0)  # 3 per minute: one every 20 s
    assert limiter.take("b", 3, at=0.0) is None  # clients are counted apart
    assert limiter.take("a", 3, at=15.0) == pytest.approx(5.0)  # 15 s refilled 3/4 of a request
    assert limiter.take("a", 3, at=20.0) is None
    assert limiter.take("a", 3, at=600.0) is None  # an idle spell refills the bucket, never past its size
    assert [limiter.take("a", 3, at=600.0) for _ in range(3)][-1] == pytest.approx(20.0)


def test_keys_are_stored_as_hashes_named_listed_and_revoked(tmp_path):
    path = tmp_path / "keys.db"
    store = KeyStore(path)
    key = store.add("alice", req_limit=30)
    other = store.add("bob", char_limit=100)
    assert key != other and len(key) >= 40
    assert store.lookup(key).name == "alice" and store.lookup(key).req_limit == 30
    assert store.lookup(key + "x") is None and store.lookup("") is None
    with pytest.raises(UserError, match="a key named 'alice' exists"):
        store.add("alice")
    assert [(k.name, k.req_limit, k.char_limit) for k in store.list()] == [("alice", 30, None), ("bob", None, 100)]
    assert store.list()[0].last_used is not None and store.list()[1].last_used is None
    store.remove("alice")
    assert store.lookup(key) is None
    with pytest.raises(UserError, match="no key named 'alice'"):
        store.remove("alice")
    store.close()
    assert key.encode() not in path.read_bytes() and other.encode() not in path.read_bytes()
    with pytest.raises(UserError, match="holds no API key database"):
        KeyStore(tmp_path / "typo.db", create=False)


# --- what a request gets ------------------------------------------------------------------------------------------

def test_with_keys_a_request_needs_a_valid_key_in_json_form_or_query(model, tmp_path):
    store = KeyStore(tmp_path / "keys.db")
    key = store.add("alice")
    with client_with(model, Access(store)) as client:
        assert client.post("/translate", json=ASK).json() == {"error": MISSING_KEY}
        assert client.post("/translate", json=ASK).status_code == 403
        wrong = client.post("/translate", json={**ASK, "api_key": key[:-1] + ("B" if key.endswith("A") else "A")})
        assert (wrong.status_code, wrong.json()) == (403, {"error": INVALID_KEY})
        assert client.post("/translate", json={**ASK, "api_key": 42}).status_code == 403
        translated = client.post("/translate", json={**ASK, "api_key": key})
        assert translated.status_code == 200 and translated.json()["translatedText"]
        assert client.post("/translate", data={**ASK, "api_key": key}).status_code == 200
        assert client.post("/translate?api_key=" + urllib.parse.quote(key), data=ASK).status_code == 200
        native = {"texts": ["The dog sleeps."]}
        assert client.post("/v1/translate", json=native).status_code == 403
        assert client.post("/v1/translate", json={**native, "api_key": key}).status_code == 200
        assert client.post("/v1/translate?api_key=" + urllib.parse.quote(key), json=native).status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/languages").status_code == 200
        assert client.get("/frontend/settings").json()["keyRequired"] is True
        store.remove("alice")
        assert client.post("/translate", json={**ASK, "api_key": key}).json() == {"error": INVALID_KEY}


def test_without_keys_a_sent_key_is_accepted_and_ignored(model):
    with client_with(model, Access()) as client:
        assert client.post("/translate", json={**ASK, "api_key": "anything"}).status_code == 200
        assert client.get("/frontend/settings").json() == {
            "apiKeys": False, "keyRequired": False, "charLimit": -1, "suggestions": False,
            "filesTranslation": False, "supportedFilesFormat": []}


def test_a_burst_past_the_rate_gets_429_with_retry_after_and_then_recovers(model, tmp_path):
    store = KeyStore(tmp_path / "keys.db")
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    with client_with(model, Access(store, req_limit=6, limiter=limiter)) as client:
        slow, generous = store.add("slow"), store.add("generous", req_limit=600)
        answers = [client.post("/translate", json={**ASK, "api_key": slow}) for _ in range(8)]
        assert [a.status_code for a in answers] == [200] * 6 + [429] * 2
        assert answers[-1].json() == {"error": "Slowdown: 6 per 1 minute"}
        assert answers[-1].headers["Retry-After"] == "10"  # 6 per minute: one every 10 s
        assert client.post("/translate", json={**ASK, "api_key": generous}).status_code == 200  # its own limit
        now[0] = 9.0
        assert client.post("/translate", json={**ASK, "api_key": slow}).headers["Retry-After"] == "1"
        now[0] = 10.0
        assert client.post("/translate", json={**ASK, "api_key": slow}).status_code == 200
    with client_with(model, Access(req_limit=1, limiter=RateLimiter(clock=lambda: 0.0))) as client:
        assert [client.post("/translate", json=ASK).status_code for _ in range(2)] == [200, 429]  # per address


def test_characters_per_request_are_limited_per_client_and_per_key(model, tmp_path):
    store = KeyStore(tmp_path / "keys.db")
    small, large = store.add("small"), store.add("large", char_limit=1000)
    with client_with(model, Access(store, char_limit=20)) as client:
        long = {**ASK, "q": ["The dog sleeps.", "A cat reads."]}  # 27 characters in all
        refused = client.post("/translate", json={**long, "api_key": small})
        assert (refused.status_code, refused.json()) == (
            400, {"error": "Invalid request: request (27) exceeds text limit (20)"})
        assert client.post("/translate", json={**long, "api_key": large}).status_code == 200
        assert client.get("/frontend/settings").json()["charLimit"] == 20


# --- a real server ------------------------------------------------------------------------------------------------

def post(base: str, body: dict, path: str = "/translate", timeout: float = 60) -> tuple[int, dict]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


KILL_AT = """
import os, signal, sqlite3, sys
from seq2seq.serve import keys

real_connect = sqlite3.connect


def connect(*args, **kwargs):  # SIGKILL this process as the statement named in argv[1] starts
    db = real_connect(*args, **kwargs)
    db.set_trace_callback(lambda sql: os.kill(os.getpid(), signal.SIGKILL)
                          if sql.lstrip().upper().startswith(sys.argv[1]) else None)
    return db


keys.sqlite3.connect = connect
from seq2seq.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("statement", ["INSERT", "COMMIT"])
def test_keys_add_killed_inside_its_write_leaves_no_key_and_a_sound_database(tmp_path, statement):
    """The kill lands inside the transaction (as the insert starts, or after it, as the commit starts): the
    killed key is not there, the database is intact, and the next ``keys add`` of that name works."""
    db = str(tmp_path / "api_keys.db")
    assert keys_cli("add", "alice", "--api-keys-db", db).returncode == 0
    killed = subprocess.run([sys.executable, "-c", KILL_AT, statement, "keys", "add", "mallory", "--api-keys-db", db],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL and not killed.stdout  # it died before printing a key
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert [row[0] for row in check.execute("SELECT name FROM api_keys")] == ["alice"]
    again = keys_cli("add", "mallory", "--api-keys-db", db)
    assert again.returncode == 0 and again.stdout.strip()


def test_keys_from_the_command_line_survive_a_restart(model, tmp_path):
    db = str(tmp_path / "api_keys.db")
    added = keys_cli("add", "alice", "--req-limit", "100", "--api-keys-db", db)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert keys_cli("add", "bob", "--api-keys-db", db).returncode == 0
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    listed = keys_cli("list", "--api-keys-db", db)
    assert listed.returncode == 0 and "alice\t100 requests/minute" in listed.stdout and key not in listed.stdout
    assert keys_cli("remove", "bob", "--api-keys-db", db).returncode == 0
    assert keys_cli("remove", "bob", "--api-keys-db", db).returncode == 2
    for _ in range(2):  # the same database after a restart
        process, base = start_server(str(model), "--api-keys", "--api-keys-db", db)
        try:
            assert post(base, ASK) == (403, {"error": MISSING_KEY})
            assert post(base, {**ASK, "api_key": key})[0] == 200
            libretranslatepy = pytest.importorskip("libretranslatepy")  # LibreTranslate's client sends a form
            assert libretranslatepy.LibreTranslateAPI(base + "/", api_key=key).translate(ASK["q"], "en", "de")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    assert "last used 20" in keys_cli("list", "--api-keys-db", db).stdout


def test_slow_clients_do_not_delay_others_and_connections_and_time_are_capped(model):
    # a request's time limit of 2 s: ample for one sentence on a loaded machine, far too little for 2,000
    process, base = start_server(str(model), "--max-connections", "6", "--timeout-s", "2", "--max-batch", "1",
                                 "--max-texts", "2000")
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    slow = []
    try:
        for _ in range(3):  # each promises a body and sends it a byte at a time
            connection = socket.create_connection((host, port))
            connection.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 200\r\n\r\n{")
            slow.append(connection)
        started = time.monotonic()
        for _ in range(5):
            for connection in slow:
                connection.sendall(b" ")
            assert post(base, ASK, timeout=10)[0] == 200
        assert time.monotonic() - started < 10  # five answers while the slow bodies trickle in

        idle = [socket.create_connection((host, port)) for _ in range(3)]  # 6 connections open now
        time.sleep(0.2)
        refused_at = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as full:
            urllib.request.urlopen(base + "/health", timeout=10)
        assert full.value.code == 503 and time.monotonic() - refused_at < 2
        for connection in idle + slow:
            connection.close()
        slow = []
        time.sleep(0.3)

        status, body = post(base, {**ASK, "q": ["The dog sleeps."] * 2000})  # ~minutes at one sentence a step
        assert status == 503 and "within 2 seconds" in body["error"]
        deadline = time.monotonic() + 10
        while json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())["queued"]:
            assert time.monotonic() < deadline, "the timed-out request's sentences were not dropped"
            time.sleep(0.05)
        assert post(base, ASK)[0] == 200
    finally:
        for connection in slow:
            connection.close()
        process.kill()
        process.wait()


def test_serve_refuses_a_key_database_that_is_missing_or_another_programs(model, tmp_path):
    """A mistyped --api-keys-db would serve with no keys at all; LibreTranslate's api_keys.db has the same name."""
    result = subprocess.run([sys.executable, "-m", "seq2seq", "serve", str(model), "--api-keys", "--api-keys-db",
                             str(tmp_path / "typo.db"), "--port", "0"], check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "typo.db holds no API key database" in result.stderr
    assert not (tmp_path / "typo.db").exists()
    with sqlite3.connect(tmp_path / "libre.db") as libre:
        libre.execute('CREATE TABLE api_keys ("api_key" TEXT NOT NULL, "req_limit" INTEGER NOT NULL, '
                      '"char_limit" INTEGER DEFAULT NULL, PRIMARY KEY("api_key"))')
    listed = keys_cli("list", "--api-keys-db", str(tmp_path / "libre.db"))
    assert listed.returncode == 2 and "holds another program's api_keys table" in listed.stderr
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert "is not a usable API key database" in keys_cli("add", "x", "--api-keys-db", str(tmp_path / "junk.db")).stderr


def test_wrong_keys_count_against_the_address_and_keys_never_reach_the_log(model, tmp_path):
    import logging

    from seq2seq.serve.server import RedactKeys

    store = KeyStore(tmp_path / "keys.db")
    with client_with(model, Access(store, req_limit=2, limiter=RateLimiter(clock=lambda: 0.0))) as client:
        guesses = [client.post("/translate", json={**ASK, "api_key": f"guess{i}"}).status_code for i in range(4)]
        assert guesses == [403, 403, 429, 429]
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "POST", "/translate?x=1&api_key=SECRET&y=2", "1.1", 200), None)
    RedactKeys().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "POST /translate?x=1&api_key=***&y=2 HTTP/1.1" 200'
