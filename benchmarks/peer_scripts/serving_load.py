"""Closed-loop HTTP load generator for benchmarks/serving.py (runs in its own venv with aiohttp).

Usage::

    python serving_load.py --url http://127.0.0.1:PORT/predict --body FILE
                           [--concurrency 1] [--duration 10] [--max-requests 5000]
                           [--warmup 100] [--rows 1]

``--concurrency`` workers share one connection pool (one keep-alive connection each); each
worker sends a request, waits for the whole answer, and sends the next (closed loop). The run
stops at whichever bound comes first: ``--duration`` seconds or ``--max-requests`` requests
(both counted after ``--warmup`` untimed requests). Only 127.0.0.1 is accepted.

Sockets: aiohttp's client sets TCP_NODELAY on every connection it opens; the script checks it
on a live connection and reports ``tcp_nodelay`` (without it, a POST whose headers and body go
out as two segments waits ~40 ms for the server's delayed ACK).

Prints one ``BENCH_JSON {...}`` line: counts, errors (non-2xx by status, exceptions by type),
latency percentiles (nearest rank, ms), requests/s and rows/s over the timed window, and the
first answer's body (so the harness can check the scores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

JSON_PREFIX = "BENCH_JSON "


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of an ascending list, or None when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def run(args: argparse.Namespace) -> dict:
    """Warm up, then drive the closed loop and collect every latency and error."""
    body = Path(args.body).read_bytes()
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.request_timeout)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    exceptions: Counter[str] = Counter()
    first_body: list[str] = []
    nodelay: list[bool] = []

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(record: bool) -> None:
            start = time.perf_counter()
            try:
                async with session.post(args.url, data=body, headers=headers) as response:
                    if not nodelay and response.connection is not None:
                        sock = response.connection.transport.get_extra_info("socket")
                        flag = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                        nodelay.append(bool(flag))
                    payload = await response.read()
                    status = response.status
            except Exception as exc:  # every failure counts, the loop goes on
                if record:
                    exceptions[type(exc).__name__] += 1
                return
            if not first_body:
                first_body.append(payload.decode("utf-8", "replace")[:4000])
            if record:
                statuses[status] += 1
                if 200 <= status < 300:
                    latencies.append(time.perf_counter() - start)

        warm = [
            asyncio.create_task(worker_n(one, args.warmup, args.concurrency, i))
            for i in range(args.concurrency)
        ]
        await asyncio.gather(*warm)

        sent = 0
        stop_at = time.perf_counter() + args.duration

        async def worker() -> None:
            nonlocal sent
            while sent < args.max_requests and time.perf_counter() < stop_at:
                sent += 1
                await one(True)

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - begin

    ordered = sorted(latencies)
    ok = len(ordered)
    errors = sum(n for s, n in statuses.items() if not 200 <= s < 300) + sum(exceptions.values())
    ms = [x * 1000 for x in ordered]
    return {
        "url": args.url,
        "concurrency": args.concurrency,
        "rows_per_request": args.rows,
        "body_bytes": len(body),
        "warmup": args.warmup,
        "requests": sent,
        "ok": ok,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "exceptions": dict(exceptions),
        "elapsed_s": elapsed,
        "req_per_s": ok / elapsed if elapsed else None,
        "rows_per_s": ok * args.rows / elapsed if elapsed else None,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else None,
        "mean_ms": sum(ms) / ok if ok else None,
        "tcp_nodelay": nodelay[0] if nodelay else None,
        "first_body": first_body[0] if first_body else None,
    }


async def worker_n(one, total: int, workers: int, index: int) -> None:
    """Send this worker's share of ``total`` untimed warm-up requests."""
    for _ in range(total // workers + (1 if index < total % workers else 0)):
        await one(False)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line; refuse any host but 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--request-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname != "127.0.0.1":
        parser.error("only http://127.0.0.1 is allowed")
    return args


def main(argv: list[str]) -> int:
    """Run the load and print the BENCH_JSON line."""
    result = asyncio.run(run(parse_args(argv)))
    print(JSON_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
