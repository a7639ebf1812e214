"""The run directory contract (`rundir`) and the per-epoch history (`history`).

Importing this package is cheap: standard library only (PyYAML is imported when a
config.yaml is read or written).
"""

from dlcc.runs.history import BestTracker, History
from dlcc.runs.record import run_record, start_run_record, write_run_record
from dlcc.runs.rundir import (
    METRIC_KEYS,
    RunDir,
    RunDirError,
    SavedRun,
    prepare_run_dir,
    read_history,
    read_metrics,
    read_run,
    settings_differences,
    strict_json,
    write_config,
    write_history,
    write_metrics,
)

__all__ = [
    "METRIC_KEYS",
    "BestTracker",
    "History",
    "RunDir",
    "RunDirError",
    "SavedRun",
    "prepare_run_dir",
    "read_history",
    "read_metrics",
    "read_run",
    "run_record",
    "settings_differences",
    "start_run_record",
    "strict_json",
    "write_config",
    "write_history",
    "write_metrics",
    "write_run_record",
]
