"""Waterfall labels are built from feature values even when pandas hands back a read-only array."""
from __future__ import annotations

import numpy as np
import pandas as pd

from whyrec_shap.plots import _display_view


def test_display_view_rounds_float_frames_without_writing_into_pandas():
    values = pd.DataFrame({"price": [12.345678, 3.0], "rating": [4.56789, 1.25]})
    before = values.copy()
    out = _display_view(values, ["price", "rating"])
    assert out.tolist() == [[12.35, 4.568], [3.0, 1.25]]
    pd.testing.assert_frame_equal(values, before)
    assert out.flags.writeable and not np.shares_memory(out, values.to_numpy())
