"""One committed window dataset per window shape ``(N, Q)`` a sweep can draw.

The windows depend on N and Q, so each distinct ``(model.interval, model.num_intervals)`` in the
space needs its own dataset. ``data`` serves the shape it was made with; the others are
preprocessed from the raw ``source`` into ``OUTPUT/datasets/N<n>_Q<q>`` before the sweep starts
(skipped when already up to date). Without a ``source``, every shape in the space must match
``data``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hanet.config import Config
from hanet.data.arrow import SCHEMA_VERSION
from hanet.dataset import load_manifest
from hanet.errors import UserError
from hanet.io.location import Location
from hanet.preprocessing import run_preprocess
from hanet.tuning.space import SearchSpace, window_shapes

log = logging.getLogger(__name__)

__all__ = ["DATASETS_DIR", "SweepError", "prepare_datasets"]

DATASETS_DIR = "datasets"


class SweepError(UserError, RuntimeError):
    """A sweep cannot run or produced nothing usable."""


def _dataset_shape(manifest: Mapping[str, Any]) -> tuple[int, int] | None:
    model = manifest.get("identity", {}).get("config", {}).get("model", {})
    if "interval" in model and "num_intervals" in model:
        return int(model["interval"]), int(model["num_intervals"])
    return None


def prepare_datasets(
    cfg: Config,
    space: SearchSpace,
    data: Location,
    output: Location,
    source: Location | None = None,
) -> dict[tuple[int, int], Location]:
    """One committed dataset per window shape of the sweep, keyed by ``(N, Q)``.

    ``data`` serves the shape it was made with (with a ``source``, it is first preprocessed
    when missing or written by an older version); other shapes are preprocessed from ``source``
    into ``output/datasets/N<n>_Q<q>``, reusing an up-to-date one.

    Raises:
        SweepError: a dataset is missing or stale and there is no ``source`` to make it from.
        PreprocessError: ``data`` holds a dataset made from other inputs or settings.
    """
    shapes = window_shapes(cfg, space)
    manifest = load_manifest(data)
    current = manifest is not None and manifest.get("schema_version") == SCHEMA_VERSION
    if not current:
        if source is None:
            state = "no manifest.json" if manifest is None else "made by an older version"
            raise SweepError(
                f"{data.uri}: {state}; run pipelines/preprocess.py, or give the raw input "
                "(--source) to preprocess it"
            )
        # Idempotent: refuses to replace a dataset made from other inputs or settings.
        log.info("preprocessing %s into %s", source.uri, data.uri)
        manifest = run_preprocess(cfg, source, data).manifest
    if manifest.get("num_joints", cfg.model.num_joints) != cfg.model.num_joints:
        raise SweepError(
            f"{data.uri}: {manifest['num_joints']} joints, but the config has "
            f"{cfg.model.num_joints}"
        )
    served = _dataset_shape(manifest)
    datasets: dict[tuple[int, int], Location] = {}
    for shape in shapes:
        n, q = shape
        if shape == served or (served is None and manifest.get("window_size") == n * q + 1):
            datasets[shape] = data
            continue
        if source is None:
            raise SweepError(
                f"the search space has windows N={n}, Q={q}, but {data.uri} was made with "
                f"N={served[0] if served else '?'}, Q={served[1] if served else '?'}: give the "
                "raw input (--source) so the sweep can preprocess one dataset per window shape"
            )
        target = output.join(DATASETS_DIR, f"N{n}_Q{q}")
        shaped = cfg.replace({"model.interval": n, "model.num_intervals": q})
        # The cache belongs to the sweep: replace it when it was made differently.
        result = run_preprocess(shaped, source, target, overwrite=True)
        log.info("dataset for N=%d Q=%d: %s%s", n, q, target.uri, " (up to date)" * result.skipped)
        datasets[shape] = target
    return datasets
