"""Segmentation and detection beyond the training loop's tasks.

- `losses`: BCE, soft Dice, BCE + Dice, focal, and your own loss by ``module:Name``;
- `metrics`: confusion matrix, Dice, IoU, pixel error and boundary F1 of label maps;
- `detection`: cell centres, Gaussian heatmaps, peak finding, point matching and the
  distance-transform baseline;
- `tiling`: a dense model's prediction on an image of any size, tile by tile, blended;
- `predictor`: a trained run loaded for prediction (its normalisation, task and classes);
- `outputs` and `commands`: ``dlcc segment predict`` and ``dlcc detect predict``.

Import the modules directly (``from dlcc.segmentation import metrics``): this package
imports none of them, so importing it costs nothing.
"""
