"""Per-frame latency of the live service at 30 frames/s per stream, beside StreamRefiner.

    python benchmarks/serve_latency.py [--checkpoint outputs/demo/run/model.pt] \
        [--streams 1 8 16 32 64] [--seconds 6] [--replicas 1 2] [--lookahead 2]

1. In process: ``StreamRefiner.push`` on the bundled sample's test poses, one frame at a time
   with one torch thread (the model's own cost per frame, no network).
2. Through Ray Serve on a local Ray (``hanet.live.service``, the same app as
   ``pipelines/serve.py``): for each stream count, that many streams each send one frame every
   1/30 s for ``--seconds`` (starts staggered over one frame interval; a stream sends its next
   frame when it is due or, if late, as soon as the previous answer arrives), from a load
   generator in its own process (aiohttp), once over per-frame HTTP POSTs and once over one
   WebSocket per stream, with one replica and with two (sticky routing by stream id; the
   design choice: where a stream's state lives). Latency is from sending a frame to receiving
   the answer that carries the frame that became final (the k-frame look-ahead is a fixed
   delay on top). The first second is warm-up and not counted.

Reported per transport, replica count and stream count: p50 and p99 latency (ms), frames/s
answered (the offered load is 30 x streams), the CPU time per frame of the HTTP proxy, the
replicas and the load generator (read from /proc: what the service costs, whatever else shares
the machine), and the largest stream count measured whose p99 stays <= 50 ms. All figures
come from one run on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import time
from pathlib import Path

import numpy as np
import torch
from common import REPO, SAMPLE_DIR, print_result, start_ray

from hanet.formats.published import find_published_pairs, read_published_pair
from hanet.io.location import parse_location
from hanet.streaming import StreamRefiner

FPS = 30.0
GOAL_MS = 50.0
WARMUP_S = 1.0
OVERRIDES = ["data.image_width=320", "data.image_height=240"]  # the sample's frames


def sample_poses() -> np.ndarray:
    """The test split's estimator poses, all sequences back to back ``[F, J, 2]``."""
    pairs = find_published_pairs(parse_location(SAMPLE_DIR), "mocap2d", "simplebaseline")
    test = next(p for p in pairs if p.split == "test")
    return np.concatenate([s.pred for s in read_published_pair(test, "jhmdb", "2D", FPS)])


def in_process(checkpoint: Path, lookahead: int, poses: np.ndarray, count: int = 600) -> dict:
    # One torch thread, as in a replica: one window at a time gains nothing from more, and on
    # a shared machine their spinning costs more than it gives.
    torch.set_num_threads(1)
    stream = StreamRefiner.from_checkpoint(
        checkpoint, lookahead=lookahead, image_size=(320, 240), device="cpu"
    )
    times = []
    for pose in poses[:count]:
        began = time.perf_counter()
        stream.push(pose)
        times.append(time.perf_counter() - began)
    times = np.array(times[20:]) * 1e3
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "frames_per_s": float(1e3 / times.mean()),
    }


# ---------------------------------------------------------------------------------------------
# The load generator (its own process)


async def _stream(session, base: str, transport: str, sid: str, frames, start: float, until):
    latencies, url = [], f"{base}/v1/streams/{sid}"
    ws = await session.ws_connect(f"{url}/ws") if transport == "ws" else None
    n = 0
    while True:
        due = start + n / FPS
        if due >= until:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        body = json.dumps({"keypoints": frames[n % len(frames)]})
        sent = time.perf_counter()
        if ws is not None:
            await ws.send_str(body)
            answer = json.loads((await ws.receive()).data)
        else:
            async with session.post(f"{url}/frames", data=body) as response:
                answer = await response.json()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        if sent >= start + WARMUP_S:
            latencies.append(time.perf_counter() - sent)
        n += 1
    finished = time.perf_counter()
    if ws is not None:
        await ws.send_str(json.dumps({"end": True}))
        await ws.receive()
        await ws.close()
    else:
        async with session.delete(url) as response:
            assert response.status == 200
    return latencies, finished - (start + WARMUP_S), n


async def _load(base: str, transport: str, streams: int, seconds: float, frames: list) -> dict:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter() + 0.2
        until = t0 + seconds
        tasks = [
            _stream(session, base, transport, f"s{i}", frames, t0 + i / (FPS * streams), until)
            for i in range(streams)
        ]
        results = await asyncio.gather(*tasks)
    latencies = np.concatenate([np.asarray(r) for r, _, _ in results]) * 1e3
    # Frames answered per second of each stream's own counted time (a stream that falls
    # behind sends fewer frames and takes longer), summed over the streams.
    rate = sum(len(r) / max(elapsed, 1e-9) for r, elapsed, _ in results)
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "frames_per_s": float(rate),
        "frames_total": sum(n for _, _, n in results),
        "offered_per_s": streams * FPS,
    }


def _generate(queue, base: str, transport: str, streams: int, seconds: float, frames: list):
    began = sum(os.times()[:2])  # after the imports: the load's own CPU only
    try:
        result = asyncio.run(_load(base, transport, streams, seconds, frames))
    except Exception as err:  # an overloaded service may drop connections: say so, go on
        queue.put({"error": f"{type(err).__name__}: {err}"})
        return
    result["client_cpu_s"] = sum(os.times()[:2]) - began
    queue.put(result)


def run_load(base: str, transport: str, streams: int, seconds: float, frames: list) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=_generate, args=(queue, base, transport, streams, seconds, frames)
    )
    process.start()
    result = queue.get(timeout=seconds + 120)
    process.join()
    return result


# ---------------------------------------------------------------------------------------------


def serve_pids() -> dict[str, list[int]]:
    """The process ids of Serve's HTTP proxy, its replicas and its controller."""
    import ray

    pids: dict[str, list[int]] = {}
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] != "serve":
            continue
        # SERVE_PROXY_ACTOR-<node>, SERVE_REPLICA::<app>#<deployment>#<id>, SERVE_CONTROLLER_ACTOR
        role = actor["name"].removeprefix("SERVE_").split("_")[0].split(":")[0].lower()
        handle = ray.get_actor(actor["name"], namespace="serve")
        pids.setdefault(role, []).append(ray.get(handle.__ray_call__.remote(_pid)))
    return pids


def _pid(_) -> int:
    return os.getpid()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "outputs/demo/run/model.pt")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--lookahead", type=int, default=2)
    parser.add_argument("--transports", nargs="+", default=["http", "ws"])
    args = parser.parse_args()

    poses = sample_poses()
    local = in_process(args.checkpoint, args.lookahead, poses)
    print(f"StreamRefiner in process: p50 {local['p50_ms']:.2f} ms, p99 {local['p99_ms']:.2f} ms")

    start_ray(num_cpus=4)
    from ray import serve

    from hanet.live.service import build_app

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    overrides = [f"refine.lookahead={args.lookahead}", *OVERRIDES]
    frames = [pose.astype(np.float64).round(2).tolist() for pose in poses[:300]]
    rows: dict[str, dict[int, dict]] = {}
    try:
        for replicas in args.replicas:
            app = build_app(str(args.checkpoint), overrides, replicas)
            serve.run(app, name="bench", route_prefix="/")
            pids = serve_pids()
            for transport in args.transports:
                key = f"{transport}, {replicas} replica(s)"
                for streams in args.streams:
                    base = f"http://127.0.0.1:{port}"
                    before = {role: cpu_seconds(p) for role, p in pids.items()}
                    row = run_load(base, transport, streams, args.seconds, frames)
                    if "error" in row:
                        print(f"{key:20s} {streams:3d} streams: failed ({row['error']})")
                        rows.setdefault(key, {})[streams] = row
                        continue
                    # CPU per frame answered, by process: what the load costs whatever else
                    # runs on the machine.
                    sent = row["frames_total"]
                    for role, p in pids.items():
                        row[f"{role}_cpu_ms_per_frame"] = (
                            1e3 * (cpu_seconds(p) - before[role]) / sent
                        )
                    row["client_cpu_ms_per_frame"] = 1e3 * row.pop("client_cpu_s") / sent
                    rows.setdefault(key, {})[streams] = row
                    print(
                        f"{key:20s} {streams:3d} streams: p50 {row['p50_ms']:7.1f} ms  p99 "
                        f"{row['p99_ms']:7.1f} ms  {row['frames_per_s']:6.0f} frames/s "
                        f"(offered {row['offered_per_s']:.0f}); CPU ms/frame: proxy "
                        f"{row['proxy_cpu_ms_per_frame']:.1f}, replicas "
                        f"{row['replica_cpu_ms_per_frame']:.1f}, client "
                        f"{row['client_cpu_ms_per_frame']:.1f}",
                        flush=True,
                    )
            serve.delete("bench")
    finally:
        serve.shutdown()

    print("\n| service | streams | p50 ms | p99 ms | frames/s (offered) | CPU ms/frame |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| StreamRefiner in process | 1 | {local['p50_ms']:.2f} | {local['p99_ms']:.2f} | "
        f"{local['frames_per_s']:.0f} (capacity) | |"
    )
    best = {}
    for service, levels in rows.items():
        for streams, row in levels.items():
            if "error" in row:
                print(f"| {service} | {streams} | failed: {row['error']} | | | |")
                continue
            print(
                f"| {service} | {streams} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                f"{row['frames_per_s']:.0f} ({row['offered_per_s']:.0f}) | "
                f"{row['proxy_cpu_ms_per_frame']:.1f} + {row['replica_cpu_ms_per_frame']:.1f} |"
            )
        held = [s for s, r in levels.items() if "error" not in r and r["p99_ms"] <= GOAL_MS]
        best[service] = max(held) if held else 0
        print(f"{service}: largest stream count with p99 <= {GOAL_MS:.0f} ms: {best[service]}")
    print_result(
        {
            "lookahead": args.lookahead,
            "in_process": local,
            "serve": {t: {str(s): r for s, r in levels.items()} for t, levels in rows.items()},
            "max_streams_p99_50ms": best,
        }
    )


if __name__ == "__main__":
    main()
