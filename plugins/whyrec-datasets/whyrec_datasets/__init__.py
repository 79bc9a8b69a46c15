"""whyrec-datasets: the user's own tables, MovieLens-100K, the Open Bandit Dataset and
simulators with known causal ground truth.

Registers the datasets ``table``, ``movielens-100k``, ``open-bandit``, ``sim-ecommerce``,
``sim-video`` and ``sim-finance``, and the ``whyrec datasets`` command group. Modules are
imported when a dataset is built, so loading the plugin stays cheap.
"""
from __future__ import annotations

import whyrec

__version__ = "0.1.0"


@whyrec.hookimpl
def register_datasets(register):
    from .movielens import MovieLens100K
    from .openbandit import OpenBandit
    from .simulators import SimEcommerce, SimFinance, SimVideo
    from .table import Table

    register("table", Table,
             description="Your own interactions, users and items from Parquet/CSV, columns declared in registry.toml.")

    register("movielens-100k", MovieLens100K,
             description="MovieLens-100K ratings as click labels, with genre, history and cross features.")
    register("open-bandit", OpenBandit,
             description="Open Bandit Dataset: real clicks logged under random and Thompson-sampling policies.")
    register("sim-ecommerce", SimEcommerce,
             description="Simulated shop with a known causal DAG: price, rating, discount, history -> purchase.")
    register("sim-video", SimVideo,
             description="Simulated video platform with a known causal DAG: duration, genre match, recency -> watch.")
    register("sim-finance", SimFinance,
             description="Simulated investment products with a known causal DAG: return, risk gap, fees -> adoption.")


@whyrec.hookimpl
def register_commands(cli):
    from .cli import datasets

    cli.add_command(datasets)
