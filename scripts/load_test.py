"""Load test of ``seq2seq serve`` on this machine: N concurrent clients, one sentence per request.

Usage:
  python scripts/load_test.py MODEL_DIR [--sentences FILE] [--clients 1,8,32,64] [--requests 10000] [--beam 5]
      [--max-seconds 900] [--max-batch 64] [--json]

It first measures offline translation (the Translator, as ``seq2seq translate`` uses it, batches of
decoding.batch_size) on the same sentences and beam, then starts the server on a free loopback port and
runs --clients threads, each sending LibreTranslate ``POST /translate`` requests with one sentence on a
kept-alive connection, until --requests are done or --max-seconds have passed; for each client count in turn.
It prints sentences/s (served, offline, and their ratio), latency percentiles against one sentence translated
alone offline, errors, how many sentences decoded per model step, the cores the server and the client threads
kept busy (they share this machine), and the server's resident memory after a warm-up, then every 10% of the
requests, and at the end.

Only 127.0.0.1 is ever contacted; the request count and the time are both bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_sentences(path: Path | None, model_dir: Path) -> list[str]:
    """Non-empty lines of --sentences, else of the model's test (or valid) source file."""
    if path is None:
        from seq2seq.config import load_config

        data = load_config(model_dir / "config.yaml").data
        path = Path(f"{data.test or data.valid}.{data.src_lang}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def offline_rates(model_dir: Path, sentences: list[str], beam: int) -> tuple[float, float]:
    """Offline translation of ``sentences`` (after a warm-up batch): sentences/s of the whole list, as
    ``seq2seq translate`` decodes a file, and the median seconds of one sentence translated alone."""
    from seq2seq.decoding.translator import Translator

    translator = Translator.from_dir(model_dir)
    options = translator.search_options(beam_size=beam)
    translator.translate(sentences[:64], options)
    start = time.perf_counter()
    translator.translate(sentences, options)
    rate = len(sentences) / (time.perf_counter() - start)
    alone = []
    for sentence in sentences[:200]:
        start = time.perf_counter()
        translator.translate([sentence], options)
        alone.append(time.perf_counter() - start)
    return rate, percentile(alone, 0.5)


def start_server(model_dir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "seq2seq", "serve", str(model_dir), "--port", "0", "--beam", str(args.beam),
               "--max-batch", str(args.max_batch)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stderr:
        found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
        if found:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            port = int(found.group(1))
            break
    else:
        raise SystemExit(f"the server exited with code {process.wait()}")
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the server does not answer") from None
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/PID/stat fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Load:
    """Shared by the client threads: the next request number, latencies, errors, memory samples."""

    def __init__(self, total: int, deadline: float, server_pid: int):
        self.total, self.deadline, self.server_pid = total, deadline, server_pid
        self.lock = threading.Lock()
        self.issued = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.rss_samples: list[tuple[int, float]] = []

    def next_request(self) -> int | None:
        with self.lock:
            if self.issued >= self.total or time.monotonic() > self.deadline:
                return None
            self.issued += 1
            if self.issued % max(1, self.total // 10) == 0:
                self.rss_samples.append((self.issued, rss_mb(self.server_pid)))
            return self.issued - 1

    def record(self, latency: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(latency)
            if error is not None:
                self.errors.append(error)


def client(port: int, load: Load, sentences: list[str], source: str, target: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while (n := load.next_request()) is not None:
        body = json.dumps({"q": sentences[n % len(sentences)], "source": source, "target": target})
        start = time.perf_counter()
        error = None
        try:
            connection.request("POST", "/translate", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status != 200 or not isinstance(answer.get("translatedText"), str):
                error = f"{response.status}: {answer}"
        except (OSError, http.client.HTTPException, ValueError) as failure:
            error = repr(failure)
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        load.record(time.perf_counter() - start, error)
    connection.close()


def run_load(port: int, pid: int, sentences: list[str], clients: int, args: argparse.Namespace, source: str,
             target: str) -> tuple[Load, float]:
    load = Load(args.requests, time.monotonic() + args.max_seconds, pid)
    threads = [threading.Thread(target=client, args=(port, load, sentences, source, target))
               for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return load, time.perf_counter() - start


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--sentences", type=Path, help="one sentence per line (default: the model's test source)")
    parser.add_argument("--clients", default="32", help="concurrent clients; several as 1,8,32,64 run in turn")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per client count")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=900, help="stop sending after this long")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print one JSON object per client count")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from seq2seq.config import load_config

    data = load_config(args.model_dir / "config.yaml").data
    sentences = read_sentences(args.sentences, args.model_dir)
    offline, alone = offline_rates(args.model_dir, sentences, args.beam)
    process, port = start_server(args.model_dir, args)
    results = []
    try:
        for clients in (int(count) for count in args.clients.split(",")):
            results.append(measure(port, process.pid, sentences, clients, args, data.src_lang, data.trg_lang))
    finally:
        process.terminate()
        process.wait(timeout=60)
    for result in results:
        served = result["served_sent_s"]
        result.update(beam=args.beam, offline_sent_s=round(offline, 1), ratio=round(served / offline, 3),
                      offline_alone_p50_ms=round(1000 * alone, 1),
                      p50_vs_alone=round(result["p50_ms"] / (1000 * alone), 2), exit_code=process.returncode)
        print(json.dumps(result) if args.json else table(result))


def measure(port: int, pid: int, sentences: list[str], clients: int, args: argparse.Namespace, source: str,
            target: str) -> dict:
    """One client count: a warm-up, then the timed load; the server's counters and memory around it."""
    warm_up = Load(min(200, args.requests), time.monotonic() + 120, pid)
    threads = [threading.Thread(target=client, args=(port, warm_up, sentences, source, target))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    before = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read())
    rss_before = rss_mb(pid)
    server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
    load, seconds = run_load(port, pid, sentences, clients, args, source, target)
    server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
    rss_after = rss_mb(pid)
    after = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read())
    steps = max(1, after["steps"] - before["steps"])
    return {"clients": clients, "requests": len(load.latencies), "seconds": round(seconds, 1),
            "served_sent_s": round(len(load.latencies) / seconds, 1), "errors": len(load.errors),
            "p50_ms": round(1000 * percentile(load.latencies, 0.50), 1),
            "p95_ms": round(1000 * percentile(load.latencies, 0.95), 1),
            "p99_ms": round(1000 * percentile(load.latencies, 0.99), 1),
            "mean_batch": round((after["rows"] - before["rows"]) / steps, 1),
            "server_cores": round(server_cpu / seconds, 2), "client_cores": round(client_cpu / seconds, 2),
            "rss_before_mb": round(rss_before), "rss_after_mb": round(rss_after),
            "rss_samples_mb": [round(mb) for _, mb in load.rss_samples], "first_errors": load.errors[:3]}


def table(r: dict) -> str:
    rows = [("clients × requests", f"{r['clients']} × {r['requests']:,} in {r['seconds']} s (beam {r['beam']})"),
            ("served", f"{r['served_sent_s']:,} sent/s"), ("offline translate", f"{r['offline_sent_s']:,} sent/s"),
            ("served / offline", f"{r['ratio']:.2f}"), ("errors", str(r["errors"])),
            ("latency p50 / p95 / p99", f"{r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} ms"),
            ("one sentence alone, offline (p50)", f"{r['offline_alone_p50_ms']} ms; served p50 is "
                                                  f"{r['p50_vs_alone']}x that"),
            ("sentences decoding per model step (mean)", str(r["mean_batch"])),
            ("cores busy: server / these clients", f"{r['server_cores']} / {r['client_cores']} of {os.cpu_count()}"),
            ("server RSS before / after", f"{r['rss_before_mb']:,} / {r['rss_after_mb']:,} MB"),
            ("server RSS every 10%", ", ".join(f"{mb:,}" for mb in r["rss_samples_mb"]) + " MB"),
            ("server exit code after SIGTERM", str(r["exit_code"]))]
    lines = ["| figure | value |", "| --- | --- |", *[f"| {name} | {value} |" for name, value in rows]]
    if r["first_errors"]:
        lines.append("first errors: " + "; ".join(r["first_errors"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
