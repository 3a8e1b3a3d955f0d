"""How much `qa-console ask` costs over a bare HTTP request: start-up, registry, store.

Runs, against one local HTTP server answering the public API's contract:
  ask       the installed console script: `qa-console ask --backend bench "..."`
  bare      `python -c` posting the same request with httpx.post (what a person would write)
  bare-tls0 the same, with httpx's TLS context skipped as `ask` does for http:// URLs
  help      `qa-console --help`, and `python -c pass` for the interpreter's own start-up
and prints the median wall time of each over N alternating runs, the ratio and the overhead.

Usage: .venv/bin/python benchmarks/ask_overhead.py [--runs 15]
Bounded: at most 50 runs of each, each run times out after 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONSOLE_SCRIPT = Path(sys.executable).parent / "qa-console"
QUESTION = "Where was Ada Lovelace born?"
AIM_S = 0.3


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        reply = json.dumps({"answer": f"answer to: {body['question']}", "latency_ms": 0.1}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


def bare_code(url: str, skip_tls: bool) -> str:
    client = "httpx.Client(transport=httpx.HTTPTransport(verify=False))" if skip_tls else "httpx"
    return (
        "import httpx\n"
        f"r = {client}.post({url!r}, json={{'question': {QUESTION!r}, 'parameters': {{}}}})\n"
        "print(r.json()['answer'])\n"
    )


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    elapsed = time.perf_counter() - start
    expected = "Usage" if "--help" in command else "" if "pass" in command else "answer to:"
    if run.returncode != 0 or expected not in run.stdout:
        raise SystemExit(f"run failed ({run.returncode}): {command}\n{run.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (max 50)")
    runs = min(max(parser.parse_args().runs, 3), 50)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ask"

    with tempfile.TemporaryDirectory() as home:
        plugins = Path(home, "plugins.toml")
        plugins.write_text(f'[backends.bench]\nkind = "http"\nurl = "{url}"\n')
        env = {
            **os.environ,
            "QA_CONSOLE_PLUGINS": str(plugins),
            "XDG_CONFIG_HOME": f"{home}/config",
            "XDG_DATA_HOME": f"{home}/data",
            "XDG_STATE_HOME": f"{home}/state",
        }
        commands = {
            "ask": [str(CONSOLE_SCRIPT), "ask", "--backend", "bench", QUESTION],
            "bare": [sys.executable, "-c", bare_code(url, skip_tls=False)],
            "bare-tls0": [sys.executable, "-c", bare_code(url, skip_tls=True)],
            "help": [str(CONSOLE_SCRIPT), "--help"],
            "python": [sys.executable, "-c", "pass"],
        }
        for command in commands.values():  # warm the OS file cache and the history database
            timed(command, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):  # alternate, so load from other processes hits all alike
            for name, command in commands.items():
                times[name].append(timed(command, env))
    server.shutdown()

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"runs per command: {runs} (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    for name, median in medians.items():
        spread = f"min {min(times[name]):.3f} s, max {max(times[name]):.3f} s"
        print(f"  {name:10s} median {median:.3f} s  ({spread})")
    for baseline in ("bare", "bare-tls0"):
        overhead = medians["ask"] - medians[baseline]
        ratio = medians["ask"] / medians[baseline]
        verdict = "within" if overhead < AIM_S else "OVER"
        print(
            f"ask vs {baseline}: overhead {overhead:+.3f} s, ratio {ratio:.2f}x "
            f"({verdict} the {AIM_S} s aim)"
        )


if __name__ == "__main__":
    main()
