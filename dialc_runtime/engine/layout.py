"""A run directory → the path of each thing dialc keeps in it (the on-disk contract, spelled once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# These names are user-visible (people open report.html, CI reads run_results.json): renaming one
# breaks existing run directories and scripts, so tests/test_layout.py pins them.
PLAN_FILE = "plan.json"  # the plan this run executed (canonical JSON)
RESULTS_FILE = "run_results.json"  # outcome of every selected step, versioned
STORE_FILE = "store.sqlite"  # records and completed steps (SQLite, WAL)
ARTIFACTS_DIR = "artifacts"  # artifacts/<cache key>/: a step attempt's files
LOGS_DIR = "logs"  # logs/<step id>.log: tracebacks of internal errors
REPORT_FILE = "report.html"  # the offline HTML report
LOCK_FILE = "run.lock"  # the PID of the run under way (empty once it ended cleanly); see engine/lock.py
QUARANTINE_FILE = "quarantine.txt"  # in an ingest step's artifact dir: malformed rows, file:line
# in an artifact dir (at any depth): metadata of how the output was made (wall-clock timings, speed,
# device), kept beside it but outside its output digest, so a recomputed, byte-identical output keeps
# its digest and the steps downstream stay cached
META_DIR = ".meta"
ATTEMPT_SUFFIX = ".attempt"  # artifacts/<key>.attempt: the files of the attempt running now
RESUME_SUFFIX = ".resume"  # artifacts/<key>.resume: checkpoints an interrupted attempt resumes from
# outputs/<name>: a relative link to the current artifacts/<key> of each export and fine-tune (engine/outputs.py);
# outputs/index.json lists them (and is all there is where the file system cannot hold links)
OUTPUTS_DIR = "outputs"
OUTPUTS_INDEX = "index.json"


@dataclass(frozen=True)
class RunLayout:
    """Where each part of one run lives under `run_dir`."""

    run_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir))  # accept str as well

    @property
    def plan(self) -> Path:
        return self.run_dir / PLAN_FILE

    @property
    def results(self) -> Path:
        return self.run_dir / RESULTS_FILE

    @property
    def store(self) -> Path:
        return self.run_dir / STORE_FILE

    @property
    def artifacts(self) -> Path:
        return self.run_dir / ARTIFACTS_DIR

    @property
    def logs(self) -> Path:
        return self.run_dir / LOGS_DIR

    @property
    def report(self) -> Path:
        return self.run_dir / REPORT_FILE

    @property
    def lock(self) -> Path:
        return self.run_dir / LOCK_FILE

    @property
    def outputs(self) -> Path:
        return self.run_dir / OUTPUTS_DIR

    @property
    def outputs_index(self) -> Path:
        return self.outputs / OUTPUTS_INDEX

    def named_output(self, name: str) -> Path:
        """outputs/<name>: the link to the current output of the export or fine-tune declared as `name`."""
        return self.outputs / name

    def artifact_dir(self, key: str) -> Path:
        """The file artifacts of the step attempt with this cache key."""
        return self.artifacts / key

    def attempt_dir(self, key: str) -> Path:
        """Where a running attempt writes its files: emptied when the attempt starts, moved into
        artifact_dir(key) in one rename when it ends (no output holds a file of an earlier attempt)."""
        return self.artifacts / f"{key}{ATTEMPT_SUFFIX}"

    def resume_dir(self, key: str) -> Path:
        """State a step keeps across attempts to resume (training checkpoints); removed once it completes."""
        return self.artifacts / f"{key}{RESUME_SUFFIX}"

    def log(self, step_id: str) -> Path:
        """The traceback file of a step that failed with an internal error."""
        return self.logs / f"{step_id}.log"

    def quarantine(self, key: str) -> Path:
        """The malformed rows an ingest step (with this cache key) skipped."""
        return self.artifact_dir(key) / QUARANTINE_FILE
