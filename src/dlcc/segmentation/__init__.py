"""Segmentation beyond the training loop: scoring label maps and detecting cells.

- `metrics`: confusion matrix, Dice, IoU, pixel error and boundary F1 of label maps;
- `detection`: cell centres, Gaussian heatmaps, peak finding, point matching and the
  distance-transform baseline.

NumPy and SciPy only; import the modules directly (``from dlcc.segmentation import metrics``).
"""
