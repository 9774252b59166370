"""The benchmark tools still measure what they claim: kernel arrival stamps on real loopback sockets,
and a small bench_server run end to end (figures are checked for completeness, never for speed)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from socket_clock import ensure_arrival_stamping, receive_stamped, stamp_arrivals  # noqa: E402


def test_arrival_stamp_is_when_the_bytes_arrived_not_when_they_were_read() -> None:
    ensure_arrival_stamping()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            stamp_arrivals(client)
            sent_at = time.time()
            server.sendall(b'{"id":null,"method":"mining.notify","params":[]}\n')
            time.sleep(0.2)                       # the reader is late on purpose
            data, arrived = receive_stamped(client)
            read_at = time.time()
    assert data.endswith(b"\n")
    assert arrived is not None
    assert sent_at - 0.005 <= arrived <= sent_at + 0.1      # stamped on arrival...
    assert read_at - arrived >= 0.15                         # ...not when read


def test_bench_server_small_run_reports_every_figure() -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_server.py"),
               "--stages", "fanout,latency", "--fanout-connections", "300", "--fanout-rounds", "2",
               "--latency-connections", "10", "--duration", "1", "--warmup", "0.3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result_line = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1]
    result = json.loads(result_line.removeprefix("RESULT "))
    fanout = result["fanout"]
    assert fanout["connections"] == 300
    assert fanout["rounds_reaching_all"] == 2
    assert all(r["notified"] == 300 for r in fanout["per_round"])
    assert all(0 < r["all_notified_ms"] < 60_000 for r in fanout["per_round"])
    for stage in ("latency", "latency_paced"):
        figures = result[stage]
        assert figures["samples"] > 0 and figures["unstamped"] == 0
        socket_side, process_side = figures["at_client_socket"], figures["at_generator_process"]
        assert 0 <= socket_side["p50_ms"] <= socket_side["p99_ms"] <= socket_side["max_ms"]
        assert socket_side["p50_ms"] <= process_side["p50_ms"]      # arrival comes before the read
    assert all(rss < 64 * 1024 for rss in result["idle_rss_bytes_per_connection"])   # no runaway per connection
    assert 0 <= result["platform"]["steal_percent"] <= 100


def test_bench_tls_small_run_reports_every_figure() -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_tls.py"), "--rounds", "1", "--duration", "0.3",
               "--warmup", "0.1", "--connections", "4", "--handshake-concurrency", "2"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    for key in ("plain_shares_per_s", "tls_shares_per_s", "plain_handshakes_per_s", "tls_handshakes_per_s"):
        assert result[key] > 0, (key, result)
    # The ratio is of the unrounded medians: within rounding of the printed figures.
    assert abs(result["tls_vs_plain_shares"] - result["tls_shares_per_s"] / result["plain_shares_per_s"]) < 0.01


def test_bench_session_small_run_reports_both_paths_and_the_ratio() -> None:
    """Every submit of the run is judged and accepted (the benchmark raises otherwise); against a
    second tree (here the same one) it reports each tree's figures and this/against."""
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_session.py"), "--submits", "256", "--sessions", "50",
               "--repeats", "1", "--rounds", "1", "--against", str(ROOT)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True, cwd=ROOT).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    for tree in ("this", "against"):
        assert result[tree]["submit_shares_per_cpu_s"] > 0 and result[tree]["push_job_ms"] > 0, result
    ratio = result["ratio_this_vs_against"]
    assert ratio["push_job_ms"] == result["this"]["push_job_ms"] / result["against"]["push_job_ms"]
