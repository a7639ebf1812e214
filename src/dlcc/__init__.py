"""dlcc: the Deep Learning Crash Course as software."""

__version__ = "0.1.0"
