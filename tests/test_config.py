"""Typed config: shipped YAMLs, overrides, derived values and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanet.config import Config, ConfigError, from_dict, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_round_trips(path):
    cfg = load_config(path)
    assert from_dict(cfg.to_dict()) == cfg
    assert cfg.model.window_size == cfg.model.interval * cfg.model.num_intervals + 1


def test_published_configs():
    paper = load_config(CONFIGS / "jhmdb_simplebaseline_2D.yaml")
    m, t = paper.model, paper.train
    assert (m.interval, m.num_intervals, m.hidden_dim, m.num_stages, m.num_heads) == (
        10,
        1,
        256,
        5,
        4,
    )
    assert m.window_size == 11 and m.channels == 30 and not m.pre_norm
    assert (t.loss_lambda, t.loss_w, t.lr, t.batch_size, t.epochs, t.amsgrad) == (
        5.0,
        1.0,
        1e-3,
        16,
        70,
        True,
    )
    assert t.accel_weight == 0.0 and m.head_init == "xavier" and m.input_norm == "none"
    for name in ("3dpw_pare_3D", "aist_spin_3D", "h36m_fcn_3D"):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        assert cfg.model.window_size == 101 and cfg.model.pre_norm
        assert cfg.data.representation == "3D" and cfg.model.joint_dim == 3
    smpl = load_config(CONFIGS / "3dpw_pare_smpl.yaml")
    assert (smpl.model.num_joints, smpl.model.joint_dim, smpl.model.window_size) == (24, 6, 101)


def test_overrides_are_typed_by_yaml():
    cfg = load_config(
        CONFIGS / "demo_2D.yaml",
        ["train.lr=3e-4", "model.pre_norm=true", "data.dataset=null", "name=x"],
    )
    assert cfg.train.lr == 3e-4 and cfg.model.pre_norm is True
    assert cfg.data.dataset is None and cfg.name == "x"
    assert cfg.replace({"train.epochs": 3}).train.epochs == 3
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0  # an int where a float is due


@pytest.mark.parametrize(
    "override,names",
    [
        (["train.learning_rate=1"], "train.learning_rate: unknown key"),
        (["optim.lr=1"], "overrides take the form"),
        (["train.epochs=ten"], "train.epochs: expected an integer"),
        (["train.epochs=2.5"], "train.epochs: expected an integer"),
        (["model.pre_norm=1"], "model.pre_norm: expected true/false"),
        (["model.head_init=ones"], "model.head_init: 'ones' is not one of"),
        (["model.hidden_dim=30"], "model.hidden_dim: must be even and divisible"),
        (["model.joint_dim=3"], "model.joint_dim: is 3 but data.representation='2D'"),
        (["train.lr"], "overrides take the form"),
        (["refine.lookahead=-1"], "refine.lookahead: must be >= 0"),
        (["refine.lookahead=21"], "refine.lookahead: is 21, but a 21-frame window"),
        (["train.lookahead=30"], "train.lookahead: is 30"),
        (["serve.idle_timeout_s=0"], "serve.idle_timeout_s: must be > 0"),
    ],
)
def test_bad_values_name_the_key(override, names):
    with pytest.raises(ConfigError, match=None) as err:
        load_config(CONFIGS / "demo_2D.yaml", override)
    assert names in str(err.value)
    assert "demo_2D.yaml" in str(err.value) or "overrides" in str(err.value)


@pytest.mark.parametrize("value", ["[1", "{a", '"abc', "@x", "a: b: c", "%x"])
def test_override_values_that_are_not_yaml_name_the_override(value):
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS / "demo_2D.yaml", [f"train.lr={value}"])
    message = str(err.value)
    assert message.startswith(f"--set train.lr={value}: the value ")
    assert "is not valid YAML" in message and "\n" not in message


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML") as err:
        load_config(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: invalid YAML (line 2, ") and "\n" not in message
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(bad)
    bad.write_text("trian:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="trian: unknown section"):
        load_config(bad)
    # The safe loader refuses Python object tags.
    bad.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_configs_are_frozen():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.train.lr = 1.0  # type: ignore[misc]


def test_declared_layout_file_sets_the_joint_count_and_is_stored_in_full(tmp_path) -> None:
    import yaml

    layout = {"name": "body6", "joints": ["a", "b", "c", "d", "e", "f"], "roots": ["a"]}
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "body6.yaml").write_text(yaml.safe_dump(layout))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"layout": "layouts/body6.yaml"}}))
    cfg = load_config(config)  # relative to the config file
    assert cfg.model.num_joints == 6 and cfg.data.joint_layout.joints == tuple("abcdef")
    again = from_dict(cfg.to_dict())  # a checkpoint or manifest needs no file
    assert again == cfg and again.data.joint_layout == cfg.data.joint_layout
    with pytest.raises(ConfigError, match=r"model.num_joints=15, but data.layout 'body6' has 6"):
        load_config(config, ["model.num_joints=15"])
    with pytest.raises(ConfigError, match="unknown joint layout 'body7'"):
        load_config(None, ["data.layout=body7"])
    with pytest.raises(ConfigError, match="nope.yaml: cannot read joint layout"):
        load_config(None, [f"data.layout={tmp_path / 'nope.yaml'}"])
    assert load_config(None, ["data.layout=coco_body12"]).model.num_joints == 12
