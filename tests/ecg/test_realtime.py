"""The real-time stages are exact under any chunking, and the stream equals the whole."""

import numpy as np
import pytest
import torch

from dlcc.ecg.realtime import (
    CausalNormaliser,
    LinearResampler,
    StreamingDetector,
    causal_preprocess,
    latencies_ms,
    resample_linear,
    run_stream,
)
from dlcc.ecg.synth import random_record
from dlcc.errors import DataError
from dlcc.models.ecg import BeatNet

CHUNKS = (1, 3, 17, 250, 4096)


@pytest.mark.parametrize("fs_in", [128.0, 250.0, 360.0, 500.0])
def test_linear_resampling_is_interpolation_at_the_output_times(fs_in):
    x = np.random.default_rng(0).normal(size=3000)
    y = resample_linear(x, fs_in)
    times = np.arange(len(y)) * fs_in / 250.0
    assert times[-1] <= len(x) - 1 < times[-1] + fs_in / 250.0  # every output that is known
    np.testing.assert_allclose(y, np.interp(times, np.arange(len(x)), x), atol=1e-12)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_resampler_and_normaliser_give_the_same_samples_in_any_chunks(chunk):
    x = random_record(np.random.default_rng(1), 20.0, fs=360.0).signal
    whole = causal_preprocess(x, 360.0)
    resampler, normaliser = LinearResampler(360.0), CausalNormaliser()
    parts = [normaliser.push(resampler.push(x[i : i + chunk])) for i in range(0, len(x), chunk)]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-9, atol=1e-9)


def test_the_normaliser_scale_is_a_running_mean_of_the_deviation():
    x = np.concatenate([np.zeros(1), np.full(5000, 2.0)])  # a step: baseline catches up
    y = CausalNormaliser(fs=250.0, baseline_s=0.2, scale_s=1.0).push(x)
    assert y[0] == 0 and np.all(np.abs(y) <= 50)
    assert abs(y[-1]) < 0.05  # the baseline has reached 2.0: nothing left to show
    # constant scale: a sine's normalised amplitude is near pi/2 (peak / mean |sin|)
    t = np.arange(20_000) / 250.0
    z = CausalNormaliser(baseline_s=5.0, scale_s=5.0).push(np.sin(2 * np.pi * 3 * t) * 7)
    assert np.max(np.abs(z[-2500:])) == pytest.approx(np.pi / 2, rel=0.1)


def _causal_model():
    torch.manual_seed(0)
    model = BeatNet(body="gru", width=8, hidden=8, layers=1, causal=True, head_bias=0.0)
    return model.eval()


@pytest.mark.parametrize("chunk", [7, 360, 5000])
def test_streaming_triggers_equal_the_offline_run_of_the_same_model(chunk):
    record = random_record(np.random.default_rng(2), 15.0, fs=360.0)
    model = _causal_model()
    offline = StreamingDetector(model, 360.0, threshold=0.5)
    whole = offline.push(record.signal)  # one chunk: the offline run
    stream = run_stream(StreamingDetector(model, 360.0, threshold=0.5), record.signal, chunk)
    assert len(whole) > 0
    assert [t.r_peak for t in stream] == [t.r_peak for t in whole]
    # decided no earlier than the R-peak estimate's crossing, and no later than the chunk
    assert all(t.decided_at >= t.r_peak for t in stream)


def test_latency_is_measured_from_the_true_beat_to_the_decision():
    from dlcc.ecg.realtime import Trigger

    triggers = [Trigger(r_peak=100, decided_at=118), Trigger(r_peak=400, decided_at=436)]
    np.testing.assert_allclose(latencies_ms(triggers, np.array([98, 402]), 360.0),
                               [20 / 360 * 1000, 34 / 360 * 1000])  # fmt: skip


def test_only_a_causal_model_runs_in_real_time():
    with pytest.raises(DataError, match="causal"):
        StreamingDetector(BeatNet(body="gru", width=4, hidden=4, layers=1), 360.0)


def test_causal_windows_are_the_stream_preparation_with_delayed_targets():
    from dlcc.ecg.dataset import build_windows
    from dlcc.ecg.preprocess import FS, windows

    kwargs = dict(seed=0, n_train_records=1, n_val_records=0, n_test_records=0,
                  record_s=20.0, use_mitdb=False)  # fmt: skip
    plain = build_windows(**kwargs)
    causal = build_windows(**kwargs, causal=True, target_delay_s=0.05)
    (record_id,) = causal.records
    info, plain_info = causal.records[record_id], plain.records[record_id]
    delay = round(0.05 * FS)
    # the same beats (mapped by rounding), each moved by the delay
    assert np.all(np.abs(info.beats - (plain_info.beats + delay)) <= 1)
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(3)[0])
    synth = random_record(rng, 20.0)
    expected = windows(causal_preprocess(synth.signal, synth.fs), causal.window, causal.train_hop)
    np.testing.assert_allclose(causal.train.x[:, 0], expected.astype(np.float32), atol=1e-5)
