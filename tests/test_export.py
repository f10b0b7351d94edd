"""Exported window models: onnxruntime and TorchScript give torch's poses; the spec says what
a client must do around them."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from posedata import pipeline

from hanet.checkpoint import load_model
from hanet.export import export_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(checkpoint: Path):
    return load_model(checkpoint)


def _torch(net, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return net(torch.from_numpy(x)).final.numpy()


def test_onnx_matches_torch_at_any_batch_size(model, tmp_path: Path) -> None:
    net, config = model
    path, spec_path = export_model(
        net, config.replace({"refine.lookahead": 1}), tmp_path / "m.onnx"
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "windows"
    rng = np.random.default_rng(0)
    for batch in (1, 3, 7):
        x = rng.normal(0.5, 0.2, (batch, config.model.window_size, config.model.channels))
        x = x.astype(np.float32)
        (got,) = session.run(["poses"], {"windows": x})
        assert got.shape == x.shape
        assert np.abs(got - _torch(net, x)).max() < 1e-4
    spec = json.loads(spec_path.read_text())
    assert spec["window_size"] == 5 and spec["input"]["shape"] == ["batch", 5, 30]
    assert spec["image_size"] == [320, 240] and spec["output_position"] == 3


def test_export_pipeline_writes_torchscript(checkpoint: Path, tmp_path: Path) -> None:
    out = pipeline("export").export(
        checkpoint=str(checkpoint),
        output=tmp_path / "m.ts",
        format_="torchscript",
        set_=None,
        verbose=False,
    )
    net, config = load_model(checkpoint)
    x = np.random.default_rng(1).normal(0, 1, (4, 5, 30)).astype(np.float32)
    scripted = torch.jit.load(out["model"])
    with torch.inference_mode():
        got = scripted(torch.from_numpy(x)).numpy()
    assert np.abs(got - _torch(net, x)).max() < 1e-4
    assert json.loads(Path(out["spec"]).read_text())["lookahead"] == 0
    with pytest.raises(SystemExit):
        pipeline("export").export(
            checkpoint=str(checkpoint),
            output=tmp_path / "x",
            format_="tflite",
            set_=None,
            verbose=False,
        )
