"""whyrec-datasets: the user's own tables, MovieLens-100K, the Open Bandit Dataset and
simulators with known causal ground truth.

Registers the datasets ``table``, ``movielens-100k``, ``open-bandit``, ``sim-ecommerce``,
``sim-video``, ``sim-finance`` and ``random-scm``, and the ``whyrec datasets`` command group. Factories are
``lazy``: pandas-heavy modules are imported when a dataset is built, not when plugins load.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"

DATASETS = {
    "table": ("table:Table",
              "Your own interactions, users and items from Parquet/CSV, columns declared in registry.toml."),
    "movielens-100k": ("movielens:MovieLens100K",
                       "MovieLens-100K ratings as click labels, with genre, history and cross features."),
    "open-bandit": ("openbandit:OpenBandit",
                    "Open Bandit Dataset: real clicks logged under random and Thompson-sampling policies."),
    "sim-ecommerce": ("simulators:SimEcommerce",
                      "Simulated shop with a known causal DAG: price, rating, discount, history -> purchase."),
    "sim-video": ("simulators:SimVideo",
                  "Simulated video platform with a known causal DAG: duration, genre match, recency, history -> watch."),
    "sim-finance": ("simulators:SimFinance",
                    "Simulated investment products with a known causal DAG: return, risk vs tolerance, fees -> adoption."),
    "random-scm": ("scm:RandomSCMDataset",
                   "Random structural causal model (mixed variables, optional hidden confounders) with its true DAG "
                   "and do-effects."),
}


@whyrec.hookimpl
def register_datasets(register):
    for name, (target, description) in DATASETS.items():
        register(name, lazy(f"{__name__}.{target}", description), description=description)


@whyrec.hookimpl
def register_commands(cli):
    from .cli import datasets

    cli.add_command(datasets)
