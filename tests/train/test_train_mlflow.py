"""MLflowLogger: a real training run logged to a local MLflow file store, read back
through MLflow's own client."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from train_helpers import ScriptedOptimizer, Suffixer

import tracegrad as tg
from tracegrad.train import ExactMatch, StopAfter, train

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

DATA = [("ab", "ab!"), ("cd", "cd?"), ("ef", "ef!"), ("gh", "gh!")]
VALIDATION = [("ij", "ij!"), ("kl", "kl!")]


def hash_then_bang(opt, sample, texts):
    return {"suffix": ["#", "!"][min(len(opt.seen), 2) - 1]}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A local file store (MLflow wants an explicit opt-in to the file backend)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return f"file:{tmp_path / 'mlruns'}"


def run(run_dir, store, **options):
    model = Suffixer("?")
    opt = ScriptedOptimizer(model, hash_then_bang)
    logger = tg.MLflowLogger(tracking_uri=store, experiment="suffixes", tags={"team": "tests"})
    options = {"batch_size": 2, "shuffle": False, "validation": VALIDATION, "quiet": True, **options}
    history = train(model, DATA, ExactMatch(), opt, run_dir=run_dir, callbacks=[logger], **options)
    return history, logger


def only_run(client):
    experiment = client.get_experiment_by_name("suffixes")
    [found] = client.search_runs([experiment.experiment_id])
    return found


def text(client, run_id, path):
    local = client.download_artifacts(run_id, path)
    with open(local, encoding="utf-8") as fh:
        return fh.read()


def test_a_training_run_is_written_to_mlflow_and_read_back(tmp_path, store):
    history, logger = run(tmp_path / "run", store)
    client = MlflowClient(tracking_uri=store)
    found = only_run(client)
    assert found.info.run_id == logger.run_id and found.info.status == "FINISHED"
    assert found.info.run_name == "run" and found.data.tags["team"] == "tests"
    assert found.data.tags["tracegrad.best_version"] == history.best_version

    params = found.data.params
    assert (params["batch_size"], params["epochs"], params["optimizer"]) == ("2", "1", "ScriptedOptimizer")
    assert params["validation_size"] == "2" and params["param.suffix"] == "?"
    assert json.loads(params["parameters"]) == ["suffix"]

    def series(key):
        return [(m.step, m.value) for m in sorted(client.get_metric_history(logger.run_id, key), key=lambda m: m.step)]

    assert series("validation_score") == [(0, 0.0), (1, 0.0), (2, 1.0)]
    assert series("batch_score") == [(1, 0.5), (2, 0.0)]
    assert series("accepted") == [(1, 0.0), (2, 1.0)]
    assert series("calls") == [(1, 1.0), (2, 1.0)]
    assert series("prompt_tokens") == [(1, 10.0), (2, 10.0)] and series("completion_tokens") == [(1, 5.0), (2, 5.0)]
    assert [v for _, v in series("cost_usd")] == pytest.approx([0.001, 0.001])
    assert series("total_calls") == [(1, 1.0), (2, 2.0)] and series("total_tokens")[-1] == (2, 30.0)

    start, accepted = history.initial_version, history[1].version
    folders = {a.path for a in client.list_artifacts(logger.run_id, "versions")}
    assert folders == {"versions/step-0000-" + start, "versions/step-0002-" + accepted, "versions/final"}
    assert text(client, logger.run_id, f"versions/step-0000-{start}/suffix.txt") == "?"
    assert text(client, logger.run_id, "versions/final/suffix.txt") == "!"

    top = {a.path for a in client.list_artifacts(logger.run_id)}
    assert {"report.html", "trace.json"} <= top
    assert "<html" in text(client, logger.run_id, "report.html").lower()


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, store):
    _, first = run(tmp_path / "run", store, stop=StopAfter(steps=1))
    _, second = run(tmp_path / "run", store, resume=True)
    client = MlflowClient(tracking_uri=store)
    found = only_run(client)  # one MLflow run for the whole training run
    assert first.run_id == second.run_id == found.info.run_id and found.info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(found.info.run_id, "batch_score"))
    assert steps == [1, 2]


def test_a_failed_run_is_marked_failed(tmp_path, store):
    def broken(opt, sample, texts):
        raise RuntimeError("the optimizer broke")

    model = Suffixer("?")
    logger = tg.MLflowLogger(tracking_uri=store, experiment="suffixes")
    with pytest.raises(RuntimeError):
        train(model, DATA, ExactMatch(), ScriptedOptimizer(model, broken), quiet=True, callbacks=[logger])
    assert only_run(MlflowClient(tracking_uri=store)).info.status == "FAILED"


def test_without_mlflow_the_logger_says_how_to_install_it_and_the_run_goes_on(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if MLflow were not installed
    logger = tg.MLflowLogger(tracking_uri="file:/nowhere")
    with pytest.raises(tg.TracegradError, match=r"pip install 'tracegrad\[mlflow\]'"):
        logger.client()
    model = Suffixer("?")
    with caplog.at_level(logging.WARNING, logger="tracegrad.events"):
        opt = ScriptedOptimizer(model, hash_then_bang)
        history = train(model, DATA, ExactMatch(), opt, batch_size=2, shuffle=False, quiet=True, callbacks=[logger])
    assert len(history) == 2 and model.suffix.value == "!"
    assert len([r for r in caplog.records if r.name == "tracegrad.events"]) == 1


def test_importing_the_logger_imports_no_mlflow():
    code = "import sys, tracegrad as tg; tg.MLflowLogger(); print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
