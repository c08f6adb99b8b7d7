"""Progress bars: tqdm's widget in Jupyter, text on a terminal, and text inside notebooks that the
reproduction runner executes (`SVCCA_TEXT_PROGRESS` set), whose output it shows on the terminal."""
from __future__ import annotations

import os


def progress_bar(*args, **kwargs):
    """A tqdm bar (same arguments as `tqdm`); as text, refreshed every 10 s, when `SVCCA_TEXT_PROGRESS` is set."""
    if os.environ.get("SVCCA_TEXT_PROGRESS"):
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 10.0)
        return tqdm(*args, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(*args, **kwargs)
