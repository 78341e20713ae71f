"""Benchmark of the digest broadcast: 10,000 subscribers through the offline Bot API server; prints figures.

The server runs in its own process (so its CPU is not charged to the bot) with a global limit of 1,000
messages per second, answering 429 above it; the bot broadcasts one message per chat (so the per-chat
interval does not apply) at its configured 900 per second, with the real delivery log in a temporary
SQLite database. Printed: the achieved rate as a fraction of the configured one (target >= 0.9), 429s
received (target 0), duplicates and missed chats (target 0), the bot process's CPU time per delivered
message, and its peak memory. Not a test: nothing here fails; read the figures.

At 900 messages/s the bot and the simulated Telegram together need about 1.3 CPU cores, so other work on
the machine lowers the achieved rate: the "other processes" line says how many cores they used meanwhile
(from /proc/stat, Linux only). `--http httpx` measures PTB's default HTTPXRequest instead of AiohttpRequest.

    .venv/bin/python -m benchmarks.broadcast [--subscribers 10000] [--rate 900] [--server-rate 1000] [--http aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "123456:BENCH"


# --- the server process --------------------------------------------------------------------------------------


async def serve(rate: float) -> None:
    """Run BotApiServer until stdin closes; print its base URL; serve its stats as JSON at /stats."""
    import tornado.web

    from bot.playground.botapi_server import BotApiServer

    server = BotApiServer(rate_limit=rate)

    class Stats(tornado.web.RequestHandler):
        def get(self) -> None:
            stats = server.stats
            self.write(
                {
                    "sent": stats.sent,
                    "too_many_requests": stats.too_many_requests,
                    "errors": stats.errors,
                    "invalid": len(server.invalid_calls),
                    "peak_per_second": stats.peak_per_second,
                    "cpu": time.process_time(),
                    "per_chat": {str(k): v for k, v in stats.per_chat.items()},
                }
            )

    server.add_handlers([(r"/stats", Stats)])
    await server.start()
    print(server.base_url, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    await server.stop()


# --- the bot side --------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> None:
    import httpx
    from telegram.ext import ExtBot
    from telegram.request import HTTPXRequest

    from bot.config import BroadcastConfig, load_config
    from bot.delivery import digest
    from bot.delivery.broadcast import broadcast
    from bot.knowledge.facts import load_knowledge
    from bot.store.database import open_store
    from bot.telegram.app import bot_defaults
    from bot.telegram.http import AiohttpRequest

    config = load_config()
    knowledge = load_knowledge(config.knowledge_dir, config.corpus_dir)
    year = digest.latest_year(knowledge)
    if year is None:
        raise SystemExit("the knowledge has no New Year exchange: there is no digest to broadcast")
    message = digest.render_parts(digest.compose(knowledge, year))[0]  # a real digest message (~4 KB of HTML)
    settings = BroadcastConfig(
        rate_per_second=args.rate,
        per_chat_interval=config.broadcast.per_chat_interval,
        concurrency=args.concurrency,
        max_attempts=config.broadcast.max_attempts,
    )

    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.broadcast", "--serve", "--server-rate", str(args.server_rate),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stdin is not None and server.stdout is not None  # both piped
    base_url = (await server.stdout.readline()).decode().strip()
    stats_url = base_url.removesuffix("/bot") + "/stats"
    chats = list(range(1_000_001, 1_000_001 + args.subscribers))
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(Path(tmp) / "bench.sqlite3")
        await store.add_subscribers(chats)
        backend = AiohttpRequest if args.http == "aiohttp" else HTTPXRequest
        request = backend(connection_pool_size=args.concurrency + 4)
        bot = ExtBot(TOKEN, base_url=base_url, request=request, defaults=bot_defaults(config))  # as send-digest's
        try:
            async with bot, httpx.AsyncClient() as client:
                server_cpu0 = (await client.get(stats_url)).json()["cpu"]
                rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                busy0 = _machine_busy()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                summary = await broadcast(bot, store, year, [message], settings)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                busy1 = _machine_busy()
                rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                server_cpu = (await client.get(stats_url)).json()["cpu"] - server_cpu0
                again0 = time.perf_counter()
                second = await broadcast(bot, store, year, [message], settings)
                again = time.perf_counter() - again0
        finally:
            await store.close()
            async with httpx.AsyncClient() as client:
                stats = (await client.get(stats_url)).json()
            server.stdin.close()
            await server.wait()

    per_chat = {int(k): v for k, v in stats["per_chat"].items()}
    duplicates = sum(1 for c in chats if per_chat.get(c, 0) > 1)
    missed = sum(1 for c in chats if per_chat.get(c, 0) == 0)
    achieved = summary.messages / wall
    print(f"broadcast of one {len(message):,}-character digest message to {args.subscribers:,} subscribers")
    print(
        f"  configured rate        {args.rate:,.0f}/s (server limit {args.server_rate:,.0f}/s, "
        f"{args.concurrency} in flight, HTTP backend {backend.__name__})"
    )
    print(f"  delivered              {summary.sent:,} chats in {wall:.2f} s; failed {summary.failed}")
    print(f"  achieved rate          {achieved:,.0f}/s = {achieved / args.rate:.3f} of configured (target >= 0.9)")
    print(f"  server peak            {stats['peak_per_second']:,} messages in any one second")
    print(f"  429s received          {summary.throttled} (server issued {stats['too_many_requests']}; target 0)")
    print(f"  duplicates / missed    {duplicates} / {missed} (target 0 / 0)")
    print(f"  invalid requests       {stats['invalid']}")
    print(f"  CPU per message        {cpu / max(1, summary.messages) * 1e6:,.0f} µs (bot process: {cpu:.2f} s CPU)")
    print(f"  server CPU per message {server_cpu / max(1, summary.messages) * 1e6:,.0f} µs (the simulated Telegram)")
    print(f"  CPUs available         {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    if busy0 is not None and busy1 is not None:
        others = max(0.0, (busy1 - busy0 - cpu - server_cpu) / wall)
        ours = (cpu + server_cpu) / wall
        print(f"  other processes        {others:.2f} CPU cores busy during the broadcast (bot + server {ours:.2f})")
    print(f"  peak memory (RSS)      {rss_peak / 1024:,.1f} MiB (before the broadcast {rss_before / 1024:,.1f} MiB)")
    print(f"  second run             sent {second.sent}, already had it {second.already:,} in {again:.2f} s")


def _machine_busy() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat), or None where it is not available."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]  # steal and guest are not this machine's work
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class _NoHttpBot:
    """Stands in for telegram.Bot with a send that costs nothing: measures the engine, limiter and log alone."""

    async def do_api_request(self, endpoint: str, api_kwargs: dict | None = None, **kwargs: object) -> None:
        await asyncio.sleep(0)


async def bench_engine(args: argparse.Namespace) -> None:
    """The same broadcast without HTTP: how close the limiter keeps to the rate, and the engine's own cost."""
    from bot.config import BroadcastConfig
    from bot.delivery.broadcast import broadcast
    from bot.store.database import open_store

    settings = BroadcastConfig(rate_per_second=args.rate, concurrency=args.concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(Path(tmp) / "engine.sqlite3")
        try:
            await store.add_subscribers(list(range(1, args.subscribers + 1)))
            cpu0, wall0 = time.process_time(), time.perf_counter()
            summary = await broadcast(_NoHttpBot(), store, 2025, ["digest"], settings)  # type: ignore[arg-type]
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        finally:
            await store.close()
    achieved = summary.messages / wall
    print("the same engine with a no-cost stand-in for telegram.Bot (limiter, queue, delivery log only)")
    print(f"  achieved rate          {achieved:,.0f}/s = {achieved / args.rate:.3f} of configured")
    print(f"  CPU per message        {cpu / max(1, summary.messages) * 1e6:,.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=900, help="the bot's configured messages per second")
    parser.add_argument("--server-rate", type=float, default=1000, help="the server's limit (429 above it)")
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight (config default 16)")
    parser.add_argument("--http", choices=("aiohttp", "httpx"), default="aiohttp", help="the bot's HTTP backend")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.server_rate))
    else:
        asyncio.run(bench(args))
        asyncio.run(bench_engine(args))


if __name__ == "__main__":
    main()
