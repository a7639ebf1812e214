"""The ECG detector behind the server: JSON, CSV and WFDB uploads, and their refusals."""

from __future__ import annotations

import numpy as np
import pytest

from dlcc.deploy.examples import EXAMPLE_FS, ecg_example_csv

PREDICT = "/models/ecg/predict"


@pytest.fixture
def client(make_client, ecg_model):
    return make_client({"ecg": ecg_model})


def _example() -> np.ndarray:
    rows = ecg_example_csv().decode().splitlines()[1:]
    return np.array([float(row.split(",")[1]) for row in rows])


def test_example_csv_beats_match_the_detector(client, ecg_model):
    body = client.post(PREDICT, files={"file": ("ecg.csv", ecg_example_csv(), "text/csv")}).json()
    want = ecg_model.detector.detect(_example(), EXAMPLE_FS)
    assert body["beats"] == want.tolist()
    assert body["fs"] == EXAMPLE_FS and 60 < body["heart_rate_bpm"] < 85
    assert len(body["display"]["signal"]) == 3000
    (described,) = client.get("/models").json()["models"]
    assert described["kind"] == "ecg_beats"


def test_json_signal_and_one_column_csv_with_fs(client):
    signal = _example()
    body = client.post(PREDICT, json={"signal": signal.tolist(), "fs": EXAMPLE_FS}).json()
    column = "\n".join(f"{v}" for v in signal).encode()
    upload = client.post(PREDICT, data={"fs": "250"}, files={"file": ("a.csv", column)})
    assert upload.json()["beats"] == body["beats"]


def test_wfdb_upload(client, tmp_path):
    import wfdb

    signal = _example()
    wfdb.wrsamp("rec", fs=EXAMPLE_FS, units=["mV"], sig_name=["MLII"],
                p_signal=signal[:, None], fmt=["16"], write_dir=str(tmp_path))  # fmt: skip
    files = [("file", (p.name, p.read_bytes())) for p in sorted(tmp_path.iterdir())]
    body = client.post(PREDICT, files=files).json()
    csv = client.post(PREDICT, files={"file": ("ecg.csv", ecg_example_csv())}).json()
    assert abs(len(body["beats"]) - len(csv["beats"])) <= 1 and len(body["beats"]) > 10


@pytest.mark.parametrize(
    ("files", "data", "words"),
    [
        ([("file", ("a.csv", b"1\n2\n3\n"))], None, ["fs"]),
        ([("file", ("a.csv", b"0,1\n0.004,2\n"))], None, ["s long"]),
        ([("file", ("a.csv", b"t,v\n0,1\nx,2\n"))], None, ["not a number"]),
        ([("file", ("a.csv", b"0,nan\n1,2\n"))], None, ["NaN"]),
        ([("file", ("a.csv", b"1\n2\n"))], {"fs": "10"}, ["100..100000"]),
        ([("file", ("a.hea", b"a 1 250 3000\n../../etc/passwd 16 200 16 0 0 0 0 MLII\n"))],
         None, ["plain file names"]),
        ([("file", ("a.hea", b"a 1 250 3000\na.dat 16 200 16 0 0 0 0 MLII\n"))], None,
         ["not\nuploaded".replace("\n", " ")]),
        ([("file", ("a.hea", b"x")), ("file", ("a.dat", b"\0" * 10))], None, ["WFDB header"]),
    ],
)  # fmt: skip
def test_bad_records_are_refused(client, files, data, words):
    response = client.post(PREDICT, files=files, data=data)
    assert response.status_code == 422, response.text
    for word in words:
        assert word in response.json()["message"]


def test_bad_json_signals(client):
    for payload, word in [
        ({"signal": [1.0] * 10}, "'fs'"),
        ({"signal": [[1.0]], "fs": 250}, "(N,)"),
        ({"signal": [1.0] * 100, "fs": True}, "number"),
        ({"signal": [1.0] * 100, "fs": 250}, "s long"),
    ]:
        response = client.post(PREDICT, json=payload)
        assert response.status_code == 422 and word in response.json()["message"], response.text
