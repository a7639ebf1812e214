"""Helpers for the DVC pipelines (`dvc.yaml`, `pipelines/smoke/dvc.yaml`): see DESIGN.md 8.

`dlcc.pipeline.plots.history_csv(run_dir)` turns a run's history.json into the per-epoch
table `dvc plots` reads. DVC itself is never imported by dlcc: the pipelines call dlcc.
"""
