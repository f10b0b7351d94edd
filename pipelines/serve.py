"""Serve a trained HANet live over HTTP (and WebSocket) with Ray Serve.

    python pipelines/serve.py --checkpoint CKPT [--port 8000] [--host 127.0.0.1] \
        [--replicas N] [--gpu] [--set refine.lookahead=k] [--set serve.idle_timeout_s=30]

The same application deploys with Serve's own tools (``serve run`` / ``serve deploy``, or a
KubeRay RayService, cluster/kuberay/rayservice.yaml) through its builder::

    serve run hanet.live.service:app_builder checkpoint=CKPT replicas=2 set=refine.lookahead=2

Clients POST frames to /v1/streams/{stream_id}/frames, get back the frames that became final
(k frames later), and DELETE /v1/streams/{stream_id} at the end; see hanet/live/service.py.
The look-ahead is refine.lookahead, else the one the model was trained for (train.lookahead),
else 0. With no arguments it serves the demo model (outputs/demo/run/model.pt).
Runs until interrupted (Ctrl-C), then shuts the application down.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from defaults import DEMO_OUTPUT

from hanet.cli import exit_on_user_error, init_ray, setup_logging
from hanet.live.service import build_app, service_config
from hanet.streaming import live_lookahead

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

APP_NAME = "hanet-live"


@app.command()
def main(
    checkpoint: Annotated[str, typer.Option(help="HANet checkpoint (path or s3:// URI).")] = str(
        DEMO_OUTPUT / "run" / "model.pt"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: all).")] = "127.0.0.1",
    replicas: Annotated[int, typer.Option(min=1, help="Model replicas (streams are sticky).")] = 1,
    gpu: Annotated[bool, typer.Option("--gpu", help="One GPU per replica.")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override, e.g. refine.lookahead=2 or serve.idle_timeout_s=30."),
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Show Ray's own logs.")] = False,
) -> None:
    """Deploy the live refinement service and keep it up until interrupted."""
    from ray import serve

    setup_logging(verbose)
    overrides = list(set_ or [])
    with exit_on_user_error():
        config = service_config(checkpoint, overrides)  # a bad checkpoint or --set fails here
        init_ray(verbose=verbose)
    try:  # from here on Ctrl-C stops the service, also while it is still starting
        serve.start(http_options={"host": host, "port": port})
        app = build_app(checkpoint, overrides, replicas, gpu)
        with exit_on_user_error():
            serve.run(app, name=APP_NAME, route_prefix="/")
        typer.echo(
            f"serving {checkpoint} on http://{host}:{port} ({replicas} replica(s), look-ahead "
            f"{live_lookahead(config)} frames): POST /v1/streams/ID/frames; Ctrl-C stops"
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()


if __name__ == "__main__":
    sys.exit(app())
