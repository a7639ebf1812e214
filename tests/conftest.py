"""The whole suite runs with experiment tracking off (DLCC_TRACK=0): the trainers are
called by hundreds of tests, and creating an MLflow database costs seconds. The tracking
tests (tests/tracking/) turn it on for themselves."""

import os

os.environ["DLCC_TRACK"] = "0"
