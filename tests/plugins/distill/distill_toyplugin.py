"""A test plugin registering the toy data as dataset "distill-toy" (for runner and CLI tests)."""
from __future__ import annotations

import whyrec

from distill_toy import make_toy_data


class DistillToy:
    """The distill tests' toy data."""

    def __init__(self, n_users: int = 50, seed: int = 0) -> None:
        self.n_users, self.seed = n_users, seed

    def load(self):
        return make_toy_data(n_users=self.n_users, seed=self.seed)


@whyrec.hookimpl
def register_datasets(register):
    register("distill-toy", DistillToy)
