"""Hyperparameter sweeps: Optuna studies whose trials are `dlcc train` runs.

- `space`: the search-space YAML (dotted recipe keys -> distributions), checked up front;
- `pruning.PruningLogger`: the loop's extra logger that reports each epoch's validation
  figure to the trial and stops a pruned one;
- `study`: the study in SQLite (``optuna.db`` beside the sweep directory), the trials
  (ask and tell, one lock, parallel worker processes), their MLflow runs under a parent;
- `report`: best.yaml (the best trial as a recipe), sweep.json and the plots;
- `commands`: ``dlcc sweep``.

Importing this package is cheap: optuna and mlflow are imported inside functions.
"""
