"""hanet.records: overlapping locations, what under an input is (and is not) an input, output
names, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from posedata import TINY_MODEL

from hanet.config import from_dict
from hanet.io.location import Location, parse_location
from hanet.io.storage import write_bytes_atomic
from hanet.records import (
    RefineJobError,
    check_locations,
    describe_left_out,
    discover_objects,
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
    (tmp_path / "a-file").write_text("")
    for blocked in (tmp_path / "a-file", tmp_path / "a-file" / "refined" / "deeper"):
        with pytest.raises(RefineJobError) as err:
            check_locations(src, parse_location(blocked))
        assert str(err.value) == (
            f"output {blocked}: {tmp_path / 'a-file'} is a file, not a folder; choose another "
            "output"
        )


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


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_every_file_that_is_not_an_input_is_listed_with_why(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source: Location = (
        parse_location(tmp_path / "in")
        if backend == "local"
        else request.getfixturevalue("s3_root")
    )
    for rel in ("a.parquet", "sub/b.npz", "sub/c.JSON"):
        write_bytes_atomic(source.join(rel), b"x")
    left_out = {
        ".DS_Store": "hidden (a name in its path starts with '.' or '_')",
        "_SUCCESS": "hidden (a name in its path starts with '.' or '_')",
        "_done/a.parquet.json": "hidden (a name in its path starts with '.' or '_')",
        "sub/.c.json.tmp-0123456789ab": "hidden (a name in its path starts with '.' or '_')",
        "notes.txt": "unsupported suffix .txt",
        "sub/README": "unsupported suffix (none)",
        "sub/poses.csv": "unsupported suffix .csv",
    }
    for rel in left_out:
        write_bytes_atomic(source.join(rel), b"x")
    root, inputs, not_inputs = discover_objects(source)
    assert root == source and inputs == ["a.parquet", "sub/b.npz", "sub/c.JSON"]
    assert not_inputs == left_out
    assert describe_left_out(not_inputs) == (
        "7 file(s): 4 hidden (a name in its path starts with '.' or '_') (e.g. .DS_Store), "
        "1 unsupported suffix .txt (e.g. notes.txt), 1 unsupported suffix (none) (e.g. "
        "sub/README), 1 unsupported suffix .csv (e.g. sub/poses.csv)"
    )
    # One file is its own corpus: nothing beside it is counted.
    assert discover_objects(source.join("a.parquet")) == (source, ["a.parquet"], {})


def test_no_input_at_all_says_what_was_left_out(tmp_path: Path) -> None:
    source = parse_location(tmp_path / "in")
    write_bytes_atomic(source.join("notes.txt"), b"x")
    with pytest.raises(RefineJobError) as err:
        discover_objects(source)
    assert str(err.value) == (
        f"{source.uri}: no input objects (supported: .parquet, .npz, .json); left out: 1 "
        "file(s): 1 unsupported suffix .txt (e.g. notes.txt)"
    )
    with pytest.raises(RefineJobError, match="no such file or prefix"):
        discover_objects(source.join("absent"))


def test_a_different_lookahead_is_a_different_output() -> None:
    cfg = from_dict(TINY_MODEL)
    causal = cfg.replace({"refine.lookahead": 2})
    assert model_identity(b"ckpt", cfg, "parquet") != model_identity(b"ckpt", causal, "parquet")
    smoothed = cfg.replace({"refine.smooth_sigma": 1.0})
    assert model_identity(b"ckpt", cfg, "parquet") != model_identity(b"ckpt", smoothed, "parquet")
