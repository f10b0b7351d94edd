"""TODO docstring"""

from __future__ import annotations

from pathlib import Path

import pytest
from posedata import TINY_MODEL

from hanet.config import from_dict
from hanet.io.location import parse_location
from hanet.records import (
    RefineJobError,
    check_locations,
    effective_config,
    model_identity,
    plan_outputs,
)


def test_locations_must_not_overlap(tmp_path: Path) -> None:
    src = parse_location(tmp_path / "in")
    for bad in (src, src.join("refined"), src.parent):
        with pytest.raises(RefineJobError, match="outside the input"):
            check_locations(src, bad)
    check_locations(src, parse_location(tmp_path / "in-refined"))  # a sibling is fine
    s3 = parse_location("s3://bucket/corpus", env={})
    with pytest.raises(RefineJobError):
        check_locations(s3, parse_location("s3://bucket/corpus/out", env={}))


def test_output_names_keep_paths_and_never_collide() -> None:
    names, errors = plan_outputs(["a/x.npz", "a/x.json", "a/x.parquet", "b/y.json"], "parquet")
    assert names == {
        "a/x.npz": "a/x.npz.parquet",
        "a/x.json": "a/x.json.parquet",
        "a/x.parquet": "a/x.parquet",
        "b/y.json": "b/y.parquet",
    }
    assert not errors
    assert plan_outputs(["a/x.npz"], "same")[0] == {"a/x.npz": "a/x.npz"}


def test_overrides_cannot_change_the_model() -> None:
    cfg = from_dict(TINY_MODEL)
    assert effective_config(cfg, ["refine.stride_q=2"]).refine.stride_q == 2
    with pytest.raises(RefineJobError, match="model"):
        effective_config(cfg, ["model.hidden_dim=32"])
    with pytest.raises(RefineJobError, match="unrefined"):
        effective_config(cfg, ["refine.stride_q=3"])  # 6-frame steps over 5-frame windows


def test_a_different_lookahead_is_a_different_output() -> None:
    cfg = from_dict(TINY_MODEL)
    causal = cfg.replace({"refine.lookahead": 2})
    assert model_identity(b"ckpt", cfg, "parquet") != model_identity(b"ckpt", causal, "parquet")
