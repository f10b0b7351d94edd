"""TODO docstring"""

from __future__ import annotations

import csv
import io

import pytest
from posedata import DEMO

from hanet.checkpoint import load_model
from hanet.config import load_config
from hanet.io.location import parse_location
from hanet.io.storage import exists, read_bytes, read_text
from hanet.training import SELECTION_METRIC
from hanet.tuning.datasets import SweepError
from hanet.tuning.space import (
    parse_space,
)
from hanet.tuning.sweep import (
    DATA_CPU_RESERVE,
    DRIVER_CPUS,
    max_concurrent_trials,
    run_sweep,
    trial_base_config,
)


def test_concurrency_is_bounded_by_cpus_gpus_and_the_setting(demo_cfg):
    cfg = trial_base_config(
        demo_cfg.replace({"tune.workers_per_trial": 2, "tune.cpus_per_trial": 1.0})
    )
    assert cfg.train.num_workers == 2 and cfg.train.cpus_per_worker == 0.5
    per_trial = 1.0 + DRIVER_CPUS
    assert max_concurrent_trials(cfg, {"CPU": 16}) == int((16 - DATA_CPU_RESERVE) // per_trial)
    assert max_concurrent_trials(cfg, {"CPU": 2}) == 1  # never zero
    assert max_concurrent_trials(cfg.replace({"tune.max_concurrent": 3}), {"CPU": 64}) == 3
    gpu = cfg.replace({"train.use_gpu": True})
    assert max_concurrent_trials(gpu, {"CPU": 64, "GPU": 5}) == 2
    with pytest.raises(SweepError, match="GPU"):
        max_concurrent_trials(gpu, {"CPU": 64, "GPU": 1})


@pytest.mark.ray
@pytest.mark.slow
def test_tiny_sweep_exports_a_loadable_best_config_and_model(ray_session, sample_dir, tmp_path):
    # A grid over two window shapes: exactly two trials; the second shape has no dataset yet,
    # so the sweep preprocesses it from the raw sample first.
    search = parse_space(
        {
            "train.lr": {"loguniform": [1.0e-3, 5.0e-3]},
            WINDOW: {"grid": [[2, 2], [3, 1]]},
        }
    )
    cfg = load_config(DEMO, TINY)
    source = parse_location(str(sample_dir))
    data = parse_location(str(tmp_path / "dataset"))
    output = parse_location(str(tmp_path / "sweep"))

    result = run_sweep(cfg, search, data, output, source=source)

    assert len(result.rows) == 2
    assert sorted(tuple(r[WINDOW]) for r in result.rows) == [(2, 2), (3, 1)]
    assert all(r["epochs"] >= 1 and r[SELECTION_METRIC] == r[SELECTION_METRIC] for r in result.rows)
    assert exists(data.join("manifest.json"))
    assert exists(output.join("datasets", "N3_Q1", "manifest.json"))
    assert result.best_trial == result.rows[0]["trial"]
    assert result.best_value == min(r[SELECTION_METRIC] for r in result.rows)

    table = list(csv.DictReader(io.StringIO(read_text(result.table_csv))))
    assert sorted(r["trial"] for r in table) == sorted(r["trial"] for r in result.rows)
    assert {"train.lr", WINDOW, "epochs", SELECTION_METRIC, "status"} <= set(table[0])
    markdown = read_text(result.table_markdown)
    assert all(r["trial"] in markdown for r in result.rows)

    best = load_config(result.best_config_file.path)
    assert best == result.best_config
    assert best.train.lr == pytest.approx(result.rows[0]["train.lr"])
    model, stored = load_model(io.BytesIO(read_bytes(result.best_model)))
    assert stored == best
    assert (model.config.interval, model.config.num_intervals) == tuple(result.rows[0][WINDOW])
    assert exists(output.join("best", "metrics.csv"))

    with pytest.raises(SweepError, match="already holds a sweep"):
        run_sweep(cfg, search, data, output, source=source)


WINDOW = "model.interval,model.num_intervals"
TINY = {
    "model.interval": 2,
    "model.num_intervals": 2,
    "model.hidden_dim": 8,
    "model.num_heads": 2,
    "model.num_stages": 1,
    "data.train_stride": 8,
    "train.epochs": 2,
    "train.batch_size": 16,
    "train.schedule": "exponential",
    "train.max_steps_per_epoch": 2,
    "train.keep_checkpoints": 1,
    "tune.num_samples": 1,
    "tune.workers_per_trial": 1,
    "tune.cpus_per_trial": 0.5,
}
