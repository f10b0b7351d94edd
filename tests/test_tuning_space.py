"""Ray Tune sweeps: search-space parsing and early validation, and a real tiny sweep."""

from __future__ import annotations

import pytest

from hanet.config import ConfigError, load_config
from hanet.tuning.space import (
    SpaceError,
    check_space,
    load_space,
    parse_space,
    sweep_config,
    window_shapes,
)
from hanet.tuning.sweep import (
    param_space,
)

DEMO = "configs/demo_2D.yaml"
WINDOW = "model.interval,model.num_intervals"


# ----------------------------------------------------------------------------------------------
# Parsing and early validation (no Ray)


@pytest.mark.parametrize(
    ("config", "space"),
    [
        (DEMO, "configs/tune/demo.yaml"),
        ("configs/jhmdb_simplebaseline_2D.yaml", "configs/tune/jhmdb_2D.yaml"),
    ],
)
def test_bundled_spaces_parse_and_validate(config, space):
    search = load_space(space)
    cfg = sweep_config(load_config(config), search)
    assert check_space(cfg, search) >= 1
    assert {"train.lr", "model.hidden_dim", "train.loss_lambda"} <= set(search.names)
    # The space file's overrides sit between the config file and the command line.
    assert cfg.train.epochs == search.overrides["train.epochs"]
    assert sweep_config(load_config(config), search, ["train.epochs=1"]).train.epochs == 1


def test_jhmdb_space_tunes_the_window_through_n_and_q():
    search = load_space("configs/tune/jhmdb_2D.yaml")
    cfg = sweep_config(load_config("configs/jhmdb_simplebaseline_2D.yaml"), search)
    assert window_shapes(cfg, search) == [(5, 2), (5, 4), (10, 1), (10, 2)]
    assert {"model.num_stages", WINDOW} <= set(search.names)


def test_flat_form_every_distribution_and_grouped_keys(demo_cfg):
    search = parse_space(
        {
            "train.lr": {"loguniform": ["1e-4", 3.0e-3]},  # YAML 1.1 reads 1e-4 as a string
            "train.loss_lambda": {"uniform": [1, 8]},
            "model.num_stages": {"randint": [1, 3]},
            "model.hidden_dim": {"choice": [16, 32]},
            "train.weight_decay": {"grid": [0.0, 0.01]},
            WINDOW: {"choice": [[2, 5], [5, 2]]},
        }
    )
    assert search.overrides == {}
    assert check_space(demo_cfg, search) == 2 * 2 * 3 * 2 * 2 * 2
    assert window_shapes(demo_cfg, search) == [(2, 5), (5, 2)]
    params = {n: 1 for n in search.names} | {WINDOW: [5, 2], "train.lr": 1e-3}
    overrides = search.overrides_for(params)
    assert overrides["model.interval"] == 5 and overrides["model.num_intervals"] == 2
    assert demo_cfg.replace(overrides | {"model.hidden_dim": 16}).model.window_size == 11
    space = param_space(search)
    assert space["model.num_stages"].upper == 4  # randint bounds are inclusive in the YAML
    assert space["train.weight_decay"] == {"grid_search": [0.0, 0.01]}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"train.lr": {"normal": [0, 1]}}, "train.lr: unknown distribution 'normal'"),
        ({"train.lrate": {"choice": [1.0]}}, "train.lrate: unknown config key"),
        ({"model": {"choice": [1]}}, "model: search-space keys take the form section.key"),
        ({"data.train_stride": {"choice": [1, 2]}}, "data.train_stride: only model.* and train.*"),
        ({"train.num_workers": {"choice": [1, 2]}}, "train.num_workers: cannot be tuned"),
        ({"model.num_joints": {"choice": [15]}}, "model.num_joints: cannot be tuned"),
        ({"train.lr": {"loguniform": [0.0, 1.0]}}, "train.lr: loguniform needs low > 0"),
        ({"train.lr": {"uniform": [0.1, 0.01]}}, "train.lr: uniform needs low < high"),
        ({"train.lr": {"uniform": ["a", 1]}}, "train.lr: uniform bounds must be numbers"),
        ({"train.lr": {"uniform": [0.1]}}, "train.lr: uniform takes [low, high]"),
        ({"model.num_stages": {"randint": [1.5, 3]}}, "model.num_stages: randint bounds"),
        ({"train.lr": 0.001}, "train.lr: expected one distribution"),
        ({"train.lr": {"choice": []}}, "train.lr: choice needs a non-empty list"),
        ({WINDOW: {"choice": [[2, 5, 1]]}}, f"{WINDOW}: each choice option must list 2"),
        ({WINDOW: {"uniform": [1, 2]}}, f"{WINDOW}: grouped keys take a choice or grid"),
        ({"space": {"train.lr": {"choice": [1.0]}}, "extra": 1}, "extra: unknown section"),
        ({}, "expected a non-empty mapping"),
    ],
)
def test_bad_spaces_name_the_key(raw, named):
    with pytest.raises(SpaceError) as err:
        parse_space(raw, source="s.yaml")
    assert named in str(err.value) and str(err.value).startswith("s.yaml: ")


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        # 30 is not divisible by model.num_heads=4: the combination fails before any trial.
        ({"model.hidden_dim": {"choice": [16, 30]}}, "model.hidden_dim=30"),
        # A float range over an integer key.
        ({"model.hidden_dim": {"uniform": [16, 64]}}, "model.hidden_dim: expected an integer"),
        ({"train.schedule": {"choice": ["exponential", "step"]}}, "train.schedule"),
        # Each value alone is fine, the combination is not.
        (
            {"model.num_heads": {"choice": [4, 8]}, "model.hidden_dim": {"choice": [16, 20]}},
            "model.num_heads=8, model.hidden_dim=20",
        ),
    ],
)
def test_bad_combinations_fail_early(demo_cfg, raw, named):
    with pytest.raises(SpaceError) as err:
        check_space(demo_cfg, parse_space(raw))
    assert named in str(err.value)


def test_space_errors_are_config_errors_and_bad_overrides_name_the_key(demo_cfg, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("space:\n  train.lr: {choice: [0.001]}\noverrides:\n  train.epoch: 2\n")
    with pytest.raises(ConfigError, match="train.epoch"):
        sweep_config(demo_cfg, load_space(bad))
    bad.write_text("train.lr: {choice: [0.001]\n")
    with pytest.raises(SpaceError, match="invalid YAML"):
        load_space(bad)
    assert issubclass(SpaceError, ConfigError)


def test_window_shapes_need_a_finite_distribution(demo_cfg):
    search = parse_space({"model.interval": {"randint": [1, 40]}})
    with pytest.raises(SpaceError, match="more than 16 window shapes"):
        window_shapes(demo_cfg, search)
    shape = (demo_cfg.model.interval, demo_cfg.model.num_intervals)
    assert window_shapes(demo_cfg, parse_space({"train.lr": {"choice": [0.1]}})) == [shape]


# ----------------------------------------------------------------------------------------------
