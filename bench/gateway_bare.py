#!/usr/bin/env python3
"""The gateway benchmark's baseline: an aiohttp server whose handler reads the body and answers 200.

The same routes as the gateway's HubSpot and Segment batch endpoints, nothing checked, nothing produced:
what the machine, aiohttp and the benchmark's own client allow. Run by bench/gateway.py::

    python bench/gateway_bare.py --port 8391
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def answer_200(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=200)


async def ready(_: web.Request) -> web.Response:
    """``/readyz``, which bench/gateway.py polls until the server answers."""
    return web.Response(status=200)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    args = parser.parse_args(argv)
    app = web.Application()
    app.router.add_post("/webhooks/hubspot", answer_200)
    app.router.add_post("/v1/batch", answer_200)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
