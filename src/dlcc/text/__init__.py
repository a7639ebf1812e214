"""dlcc.text: what a trained character language model does after training.

`sampling.sample_run(RUN_DIR, ...)` draws text from a run of either track (``dlcc train``
with the language_model task, or ``dlcc numpy train --model char_lstm``);
``dlcc text sample`` is its command.
"""
