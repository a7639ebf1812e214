"""The PyTorch training engine: plain, readable loops a learner can follow.

- `config`: recipes (YAML) read into typed, validated settings;
- `data`: the dlcc.data arrays as tensors, seeded and sharded samplers;
- `transforms`: batch-level augmentation (random crop, flip, normalise);
- `loop`: train / validate / test, checkpoints, resume, AMP, DDP;
- `checkpoint`: atomic save, safe load (weights_only=True) with clear errors;
- `schedules`: learning-rate schedules stepped once per batch;
- `logging`: the metrics-logger interface and its CSV/JSON backend;
- `distributed`: torchrun / DDP set-up and metric reduction;
- `debug`: overfit-one-batch, the learning-rate finder, the NaN/Inf detector.
- `autograd_basics`: autograd in small pieces (gradients, Jacobians, a custom Function).
"""
