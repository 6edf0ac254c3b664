"""An idle event loop beside the measured servers: the machine's own share of the loop lag.

It runs the proxy's :class:`~connector_proxy.event_loop.LoopLagMonitor` (a task due every 50 ms) on
uvloop, as a serve worker does, and nothing else; its histogram is served on ``/metrics``, read
before and after each wrk run like a server's. A lag this process sees while it does no work is
the operating system's (a 2-core machine shared with wrk and the servers): a server's lag is only
its own beyond that.

    python bench/lag_probe.py --port 8099
"""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from connector_proxy.event_loop import LoopLagMonitor


async def serve(port: int) -> None:
    registry = CollectorRegistry()
    monitor = LoopLagMonitor(registry)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await monitor.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
