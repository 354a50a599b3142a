"""--engine ray: the same records as the local engine, and a worker node lost mid-step loses and duplicates nothing.

One local Ray cluster for the module (`ray.cluster_utils.Cluster`: a head that runs no work and two
worker nodes of one CPU each, so each model pool has one actor per node) and the tiny test model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_kit import SPEC, compile_spec, write_project

from dialc.plan import Plan
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.results import RunResults
from dialc_runtime.engine.store import Store

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from dialc_runtime.engine.ray_engine import RayEngine  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 80 * 1024**2}
# label and a judge on the tiny model; short answers keep the run short
JUDGE = 'dimension helpful judge {{ model = tiny  rubric = "Is it helpful?" }}\n  keep when score >= 0'
# one record per model batch: records reach the driver batch by batch while a shard is still running, so
# the fault test finds a busy node even when a loaded machine delays the driver
RAY_SPEC = (SPEC.replace("max_tokens = 48", "max_tokens = 8").replace("batch_size = 4", "batch_size = 1")
            .replace("keep when score >= 0", JUDGE))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    os.environ["RAY_DISABLE_USAGE_STATS"] = "1"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **NODE, "include_dashboard": False})
    for _ in range(2):
        c.add_node(**NODE)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, configure_logging=False, logging_level="warning")
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Plan, RunResults, Path]:
    """The plan, and its run by the local engine (the reference)."""
    root = tmp_path_factory.mktemp("ray")
    plan = compile_spec(write_project(root, model=tiny_model_dir, count=16, spec=RAY_SPEC))
    local = execute(plan, root / "local", quiet=True)
    assert local.ok, [(s.id, s.message) for s in local.steps]
    return plan, local, root / "local"


def digests(run_dir: Path, results: RunResults) -> dict[str, Any]:
    with Store(run_dir) as store:
        done = {s.id: store.completed(s.key or "") for s in results.steps}
    return {step_id: c.digest if c else None for step_id, c in done.items()}


def keys(run_dir: Path, results: RunResults, step_id: str) -> list[str]:
    with Store(run_dir) as store:
        return [k for k, _ in store.records(results.step(step_id).key or "")]


def test_ray_gives_the_records_of_the_local_engine(cluster: Cluster, project: Any, tmp_path: Path) -> None:
    plan, local, local_dir = project
    engine = RayEngine()
    try:
        out = execute(plan, tmp_path / "ray", quiet=True, engine=engine)
    finally:
        engine.close()
    assert out.ok, [(s.id, s.message) for s in out.steps]
    assert out.step("label.labels").model_calls > 0 and out.step("score.helpful").model_calls > 0
    assert engine.duplicates == 0 and engine.retried == 0
    assert digests(tmp_path / "ray", out) == digests(local_dir, local)
    assert out.step("label.labels").metrics == local.step("label.labels").metrics


def test_a_worker_node_lost_mid_step_loses_and_duplicates_nothing(cluster: Cluster, project: Any,
                                                                    tmp_path: Path) -> None:
    """Whether the removed node still had a shard in flight depends on timing (a loaded machine can let the
    shard finish before the node is gone): every attempt must lose and duplicate nothing, and up to three
    attempts are made until one has really taken a lost shard up again."""
    plan, local, local_dir = project
    taken_up = 0
    for attempt in range(3):
        killed: list[str] = []
        engine = _killing_engine(cluster, killed)
        run_dir = tmp_path / f"ray-{attempt}"
        try:
            out = execute(plan, run_dir, quiet=True, engine=engine)
        finally:
            engine.close()
            if killed:
                cluster.add_node(**NODE)  # the cluster as it was
        assert out.ok, [(s.id, s.message) for s in out.steps]
        labels = keys(run_dir, out, "label.labels")
        assert len(labels) == len(set(labels)) == 16 == out.step("label.labels").records
        assert digests(run_dir, out) == digests(local_dir, local)
        if killed and engine.retried >= 1:  # the lost shard was taken up by the other node
            taken_up += 1
            break
    assert taken_up, "in three attempts no node was lost while it still had a shard in flight"


def _killing_engine(cluster: Cluster, killed: list[str]) -> RayEngine:
    """A Ray engine that, after the first records of the label step, removes a worker node whose actor is
    mid-shard (one shard per worker: a long shard to lose)."""

    def kill_a_busy_node(step_id: str, written: int) -> None:
        if killed or step_id != "label.labels":
            return
        busy = engine.busy_nodes()
        victim = next((n for n in cluster.worker_nodes if n.node_id in busy), None)
        if victim is not None:
            killed.append(victim.node_id)
            cluster.remove_node(victim, allow_graceful=False)

    engine = RayEngine(observer=kill_a_busy_node, per_worker=1)
    return engine
