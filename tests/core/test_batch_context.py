"""explain-batch: stated --context values are part of the job; none stated keeps old fingerprints."""
from __future__ import annotations

from whyrec.batch import _fingerprint

JOB = {"format": 1, "pairs_sha256": "abc", "rows": 10, "chunk_rows": 5, "cold_start": "skip",
       "model": {"name": "m"}, "explainer": {"name": "tree-shap"}, "columns": ["row"]}


def test_context_values_change_the_job_and_no_context_keeps_the_fingerprint():
    plain = _fingerprint(JOB)
    assert _fingerprint({**JOB, "context": {}}) == plain  # jobs written before --context existed resume
    ios = _fingerprint({**JOB, "context": {"device": "ios"}})
    web = _fingerprint({**JOB, "context": {"device": "web"}})
    assert len({plain, ios, web}) == 3
