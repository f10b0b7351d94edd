"""The live refinement service: a Ray Serve deployment behind a FastAPI ingress.

Endpoints (JSON, :mod:`hanet.live.api`):

- ``POST /v1/streams/{stream_id}/frames``: one frame or several; answers the frames that
  became final, ``{"frames": [{"index": i, "keypoints": [...]}, ...]}``. A stream starts with
  its first request.
- ``DELETE /v1/streams/{stream_id}``: flushes (the last k frames) and ends the stream.
- ``WS /v1/streams/{stream_id}/ws``: the same frames as messages on one connection, one answer
  per message; ``{"end": true}`` flushes and ends the stream.
- ``GET /v1/health``: 200 once the model is loaded.

Every replica holds the streams routed to it (:class:`~hanet.live.streams.StreamTable`);
:class:`~hanet.live.router.StreamRouter` sends all requests of a stream to the same replica.
Windows of all streams that arrive together run as one forward pass (``@serve.batch``).
Bad requests answer 4xx with ``{"error": "..."}``.

(No ``from __future__ import annotations`` here: FastAPI reads the route methods' annotations
at run time, and Serve's ingress wrapper hides the module they would be resolved in.)
"""

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.config import RequestRouterConfig
from starlette.exceptions import HTTPException

from hanet.checkpoint import load_checkpoint, load_model
from hanet.config import Config, from_dict
from hanet.io.location import parse_location
from hanet.live.api import BadRequest, check_stream_id, frames_answer, parse_frames, read_json
from hanet.live.router import ROUTER, ROUTER_KWARGS
from hanet.live.streams import StreamTable
from hanet.records import effective_config
from hanet.refiner import Refiner
from hanet.streaming import WindowJob, WindowRunner, live_lookahead

__all__ = ["BUILDER_ARGS", "LiveRefiner", "app_builder", "build_app", "service_config"]

# What app_builder reads from `serve run ... key=value` or a Serve config's `args`.
BUILDER_ARGS = ("checkpoint", "replicas", "gpu", "set")

api = FastAPI(title="HANet live refinement")


@api.exception_handler(HTTPException)
async def _http_error(_: Request, err: HTTPException) -> JSONResponse:
    return JSONResponse({"error": str(err.detail)}, status_code=err.status_code)


@api.exception_handler(RequestValidationError)
async def _validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
    return JSONResponse({"error": str(err.errors()[:1])}, status_code=422)


def _error(err: BadRequest) -> JSONResponse:
    return JSONResponse({"error": str(err)}, status_code=err.status)


def _json(answer: dict[str, Any]) -> Response:
    # json.dumps directly: FastAPI's encoder walks nested lists several times slower.
    return Response(json.dumps(answer), media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) past ``limit`` bytes before more of it is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body has {declared} bytes; at most {limit}", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"the body is over {limit} bytes", 413)
    return bytes(body)


# Streams are short-lived state, not work in flight: a replica going away waits briefly.
@serve.deployment(
    max_ongoing_requests=1000,
    health_check_period_s=5,
    graceful_shutdown_wait_loop_s=0.5,
    graceful_shutdown_timeout_s=5,
)
@serve.ingress(api)
class LiveRefiner:
    """One replica: the model, the streams routed here, and the batching of their windows.

    Args:
        checkpoint: the HANet checkpoint (path or ``s3://``).
        overrides: ``section.key=value`` settings (``refine.lookahead``, ``serve.*``, ``data.*``).
        device: where the model runs (default: CUDA if available).
    """

    def __init__(
        self, checkpoint: str, overrides: Sequence[str] = (), device: str | None = None
    ) -> None:
        model, stored = load_model(parse_location(checkpoint))
        config = effective_config(stored, list(overrides))
        if device is None and not torch.cuda.is_available():
            # A fractional-CPU replica shares its cores with the HTTP proxy: one thread each.
            torch.set_num_threads(max(1, int(config.serve.cpus_per_replica)))
        self.config = config
        self.runner = WindowRunner(Refiner(model, config, device=device))
        self.streams = StreamTable(config, live_lookahead(config))
        self.joints, self.dims = config.model.num_joints, config.model.joint_dim
        self._run.set_max_batch_size(config.serve.max_batch_size)
        self._run.set_batch_wait_timeout_s(config.serve.batch_wait_s)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Expire silent streams even when no request comes."""
        while True:
            await asyncio.sleep(min(1.0, self.config.serve.idle_timeout_s / 4))
            self.streams.expire()

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002)
    async def _run(self, jobs: list[WindowJob]) -> list[np.ndarray]:
        # In a thread: the event loop goes on reading and parsing requests meanwhile.
        return await asyncio.to_thread(self.runner.run, jobs)

    async def _answer(self, jobs: list[WindowJob | None], **extra: Any) -> dict[str, Any]:
        ready = [job for job in jobs if job is not None]
        outputs = await asyncio.gather(*(self._run(job) for job in ready))
        frames = [(f, p) for job, out in zip(ready, outputs) for f, p in zip(job.frames, out)]
        return frames_answer(frames, **extra)

    async def _frames(self, stream_id: str, data: Any) -> dict[str, Any]:
        check_stream_id(stream_id)
        frames = parse_frames(
            data, self.joints, self.dims, self.config.serve.max_frames_per_request
        )
        state = self.streams.get(stream_id, frames.image_size)
        # Pushed before any await: a stream's frames are applied in the order they arrive.
        jobs = [state.push(pose, present) for pose, present in zip(frames.poses, frames.present)]
        return await self._answer(jobs)

    async def _end(self, stream_id: str) -> dict[str, Any]:
        state = self.streams.pop(check_stream_id(stream_id))
        return await self._answer([state.flush()], ended=True)

    @api.get("/v1/health")
    def health(self) -> dict[str, Any]:
        model = self.config.model
        return {
            "status": "ok",
            "streams": len(self.streams),
            "expired": self.streams.expired,
            "lookahead": self.streams.lookahead,
            "joints": model.num_joints,
            "joint_dim": model.joint_dim,
            "window": model.window_size,
        }

    @api.post("/v1/streams/{stream_id}/frames")
    async def post_frames(self, stream_id: str, request: Request) -> Response:
        try:
            body = await _read_body(request, self.config.serve.max_body_bytes)
            return _json(await self._frames(stream_id, read_json(body)))
        except BadRequest as err:
            return _error(err)

    @api.delete("/v1/streams/{stream_id}")
    async def end_stream(self, stream_id: str) -> Response:
        try:
            return _json(await self._end(stream_id))
        except BadRequest as err:
            return _error(err)

    @api.websocket("/v1/streams/{stream_id}/ws")
    async def socket(self, websocket: WebSocket, stream_id: str) -> None:
        await websocket.accept()
        limit = self.config.serve.max_body_bytes
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                text = await websocket.receive_text()
                try:
                    if len(text) > limit:
                        raise BadRequest(f"the message is over {limit} bytes", 413)
                    data = read_json(text)
                    if isinstance(data, dict) and data.get("end") is True:
                        await websocket.send_text(json.dumps(await self._end(stream_id)))
                        await websocket.close()
                        return
                    answer = await self._frames(stream_id, data)
                except BadRequest as err:
                    answer = {"error": str(err), "status": err.status}
                await websocket.send_text(json.dumps(answer))


def service_config(checkpoint: str, overrides: Sequence[str] = ()) -> Config:
    """The configuration the replicas will run with (checked here, before deploying).

    Raises:
        CheckpointError, RefineJobError: an unreadable checkpoint or a bad override.
    """
    stored = from_dict(load_checkpoint(parse_location(checkpoint))["config"])
    return effective_config(stored, list(overrides))


def build_app(
    checkpoint: str, overrides: Sequence[str] = (), replicas: int = 1, gpu: bool = False
) -> serve.Application:
    """The application: ``replicas`` copies of :class:`LiveRefiner` with sticky routing."""
    config = service_config(checkpoint, overrides)
    deployment = LiveRefiner.options(
        num_replicas=replicas,
        ray_actor_options={
            "num_cpus": config.serve.cpus_per_replica,
            "num_gpus": 1 if gpu else 0,
        },
        request_router_config=RequestRouterConfig(
            request_router_class=ROUTER, request_router_kwargs=ROUTER_KWARGS
        ),
    )
    return deployment.bind(checkpoint, list(overrides), "cuda" if gpu else None)


def app_builder(args: dict[str, Any]) -> serve.Application:
    """For ``serve run`` / ``serve deploy``: ``hanet.live.service:app_builder`` with args
    ``checkpoint``, ``replicas``, ``gpu`` and ``set`` (a list, or one string of
    comma-separated ``section.key=value``)."""
    unknown = sorted(set(args) - set(BUILDER_ARGS))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; known: {', '.join(BUILDER_ARGS)}")
    overrides = args.get("set") or []
    if isinstance(overrides, str):
        overrides = [item.strip() for item in overrides.split(",") if item.strip()]
    gpu = str(args.get("gpu", "false")).lower() in ("1", "true", "yes")
    return build_app(str(args["checkpoint"]), overrides, int(args.get("replicas", 1)), gpu)
