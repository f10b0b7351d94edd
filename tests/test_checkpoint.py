"""The self-describing checkpoint format: round trip, wrappers, atomic writes, clear errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from hanet.checkpoint import (
    FORMAT,
    VERSION,
    CheckpointError,
    check_checkpoint,
    load_checkpoint,
    load_model,
    model_file_bytes,
    save_checkpoint,
    unwrap_model,
)
from hanet.config import Config, from_dict
from hanet.model import HANet

SMALL = {"hidden_dim": 16, "num_stages": 2, "num_heads": 2, "interval": 5, "num_intervals": 2}


@pytest.fixture
def config() -> Config:
    return from_dict({"name": "tiny", "model": SMALL})


@pytest.fixture
def trained(config: Config):
    """A model, optimizer and scheduler after one step, so the optimizer has state."""
    torch.manual_seed(0)
    model = HANet(config.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, amsgrad=True)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)
    model(torch.randn(2, 11, 30)).final.square().mean().backward()
    optimizer.step()
    scheduler.step()
    return model, optimizer, scheduler


def test_round_trip_gives_identical_predictions(tmp_path, config, trained):
    model, optimizer, scheduler = trained
    path = save_checkpoint(
        tmp_path / "ckpt.pt",
        model,
        config,
        optimizer=optimizer,
        scheduler=scheduler,
        epoch=3,
        metrics={"val_loss": torch.tensor(0.25), "pck": 0.9},
    )
    restored, restored_config = load_model(path)
    assert restored_config == config
    assert not restored.training
    x = torch.randn(4, 11, 30)
    with torch.no_grad():
        expected, got = model.eval()(x), restored(x)
    assert torch.equal(expected.final, got.final)
    assert torch.equal(expected.refined, got.refined)
    assert torch.equal(load_model(path.uri)[0](x).final, expected.final)  # from a plain path
    # Built on the meta device, the model holds real tensors once loaded: parameters (still
    # trainable) and the fixed buffers, which no checkpoint carries.
    tensors = [*restored.parameters(), *restored.buffers()]
    assert not any(t.is_meta for t in tensors)
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in restored.parameters())

    ckpt = load_checkpoint(path)
    assert (ckpt["format"], ckpt["version"], ckpt["epoch"]) == (FORMAT, VERSION, 3)
    assert ckpt["metrics"] == {"val_loss": 0.25, "pck": 0.9}
    assert ckpt["config"] == config.to_dict()


def test_optimizer_and_scheduler_state_resume(tmp_path, config, trained):
    model, optimizer, scheduler = trained
    path = save_checkpoint(tmp_path / "c.pt", model, config, optimizer, scheduler, epoch=1)
    ckpt = load_checkpoint(path)
    fresh = HANet(config.model)
    fresh.load_state_dict(ckpt["model"])
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3, amsgrad=True)
    sched2 = torch.optim.lr_scheduler.ExponentialLR(opt2, gamma=0.95)
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    assert sched2.get_last_lr() == scheduler.get_last_lr()
    state, state2 = optimizer.state_dict()["state"], opt2.state_dict()["state"]
    assert state.keys() == state2.keys() and len(state) > 0
    for key in state:
        for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert torch.equal(state[key][name], state2[key][name])


def test_plain_weights_only_load_and_file_objects(tmp_path, config, trained):
    model = trained[0]
    path = save_checkpoint(tmp_path / "c.pt", model, config)
    raw = torch.load(path.path, weights_only=True)
    assert set(raw) == {"format", "version", "config", "model", "checksums"}
    assert all(type(v) is torch.Tensor for v in raw["model"].values())
    with open(path.path, "rb") as f:
        assert load_model(f)[1] == config
    assert load_model(io.BytesIO(Path(path.path).read_bytes()))[1] == config
    # A read-only view, as a refine actor gets the checkpoint from Ray's object store.
    view = memoryview(np.frombuffer(Path(path.path).read_bytes(), np.uint8))
    loaded, _ = load_model(view)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_save_unwraps_compile_and_ddp(tmp_path, config, trained):
    model = trained[0]
    keys = set(model.state_dict())
    # torch.compile's wrapper keeps the model as `_orig_mod`; a stand-in avoids importing dynamo.
    compiled = torch.nn.Module()
    compiled._orig_mod = model
    path = save_checkpoint(tmp_path / "compiled.pt", compiled, config)
    assert set(load_checkpoint(path)["model"]) == keys

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        compiled._orig_mod = ddp
        assert unwrap_model(compiled) is model
        path = save_checkpoint(tmp_path / "ddp.pt", ddp, config)
    finally:
        dist.destroy_process_group()
    assert set(load_checkpoint(path)["model"]) == keys


def test_save_is_atomic_and_overwrites(tmp_path, config, trained):
    model = trained[0]
    target = tmp_path / "sub" / "last.pt"
    save_checkpoint(target, model, config, epoch=1)
    save_checkpoint(target, model, config, epoch=2)
    assert load_checkpoint(target)["epoch"] == 2
    assert [p.name for p in target.parent.iterdir()] == ["last.pt"]  # no temp files left


def test_mismatched_config_is_rejected(tmp_path, config, trained):
    other = config.replace(["model.hidden_dim=32"])
    with pytest.raises(ValueError, match="does not match"):
        save_checkpoint(tmp_path / "c.pt", trained[0], other)
    assert not (tmp_path / "c.pt").exists()


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    assert str(err.value) == (
        f"{bad}: not a readable checkpoint (the safe loader refused it: not a file torch.save "
        "wrote, or damaged)"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"model": {}}, "not a hanet-checkpoint file"),
        ([1, 2], "not a hanet-checkpoint file"),
        ({"format": FORMAT, "version": 99, "config": {}, "model": {}}, "unsupported .* version"),
        ({"format": FORMAT, "version": VERSION, "config": {}}, "checkpoint has no 'model'"),
    ],
)
def test_wrong_format_names_the_file(tmp_path, payload, message):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"other.pt: {message}"):
        load_checkpoint(path)


def test_bad_config_or_weights_name_the_file(tmp_path, config, trained):
    path = save_checkpoint(tmp_path / "c.pt", trained[0], config)
    assert check_checkpoint(path) == config
    ckpt = torch.load(path.path, weights_only=True)
    ckpt["config"]["model"]["hidden_dim"] = 32
    torch.save(ckpt, path.path)
    with pytest.raises(CheckpointError, match="c.pt: the weights do not fit") as err:
        load_model(path)
    # One line: which tensors, how many, in the file and for the config.
    assert "\n" not in str(err.value) and "tensor(s) of another shape, e.g. " in str(err.value)
    assert "in the file, [" in str(err.value) and "for the config" in str(err.value)
    with pytest.raises(CheckpointError) as checked:  # the same, without building the model
        check_checkpoint(Path(path.path).read_bytes(), name="s3://b/c.pt")
    assert str(checked.value) == str(err.value).replace(path.path, "s3://b/c.pt")
    ckpt["config"]["model"]["bogus"] = 1
    torch.save(ckpt, path.path)
    with pytest.raises(CheckpointError, match="c.pt: invalid config"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def _damaged(data: bytes, tensor: torch.Tensor) -> bytes:
    """``data`` with 16 bytes in the middle of ``tensor``'s storage overwritten, as bit rot or a
    bad copy would: the archive around it stays readable. torch stores tensors uncompressed, so
    the storage's bytes are found in the file as they are."""
    raw = tensor.contiguous().numpy().tobytes()
    offset = data.find(raw)
    assert offset >= 0 and data.find(raw, offset + 1) < 0
    middle = offset + len(raw) // 2
    return data[:middle] + bytes(16) + data[middle + 16 :]


@pytest.mark.parametrize("part", ["model", "optimizer"])
def test_damaged_weights_or_optimizer_state_are_an_error_naming_the_file(
    tmp_path, config, trained, part
):
    model, optimizer, scheduler = trained
    path = save_checkpoint(tmp_path / "c.pt", model, config, optimizer, scheduler, epoch=1)
    data = Path(path.path).read_bytes()
    state = torch.load(io.BytesIO(data), weights_only=True)
    tensors = state["model"] if part == "model" else state["optimizer"]["state"][0]
    largest = max(tensors.values(), key=lambda t: t.numel())
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(_damaged(data, largest))
    torch.load(damaged, weights_only=True)  # torch itself reads it without complaint
    what = "weights do" if part == "model" else "optimizer state does"
    them = "them" if part == "model" else "it"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(damaged)
    assert str(err.value) == (
        f"{damaged}: the {what} not match the checksum stored with {them}: the file is "
        "damaged (copy or export it again)"
    )
    with pytest.raises(CheckpointError, match="s3://b/model.pt: the "):
        load_model(damaged.read_bytes(), name="s3://b/model.pt")


def test_a_removed_checksum_is_an_error_and_version_1_files_still_load(tmp_path, config, trained):
    path = save_checkpoint(tmp_path / "c.pt", trained[0], config)
    state = torch.load(path.path, weights_only=True)
    del state["checksums"]
    torch.save(state, path.path)
    with pytest.raises(CheckpointError, match="c.pt: checkpoint has no checksum of its weights"):
        load_checkpoint(path)
    state["version"] = 1  # written before checksums existed
    torch.save(state, path.path)
    assert load_model(path)[1] == config


def test_model_file_keeps_weights_config_and_metrics_not_the_optimizer(tmp_path, config, trained):
    model, optimizer, scheduler = trained
    path = save_checkpoint(
        tmp_path / "c.pt", model, config, optimizer, scheduler, epoch=4, metrics={"val": 1.5}
    )
    exported = model_file_bytes(path)
    state = torch.load(io.BytesIO(exported), weights_only=True)
    assert set(state) == {"format", "version", "config", "model", "epoch", "metrics", "checksums"}
    assert set(state["checksums"]) == {"model"}
    # AdamW with amsgrad keeps three tensors per weight: the file shrinks to about a quarter.
    assert len(exported) < 0.4 * Path(path.path).stat().st_size
    restored, restored_config = load_model(exported)
    assert restored_config == config and load_checkpoint(exported)["epoch"] == 4
    x = torch.randn(2, 11, 30)
    with torch.no_grad():
        assert torch.equal(restored(x).final, model.eval()(x).final)
