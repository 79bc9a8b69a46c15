# Two commands: `make demo` (install + run the default pipeline) and `make test`.
# Everything installs into .venv/ from the package registries; nothing else is needed.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The data cache is whyrec's one default (WHYREC_CACHE, else XDG_CACHE_HOME/whyrec, else ~/.cache/whyrec), the
# same for `make` and for `whyrec` run by hand: no second copy, no download on the first `explain`.

# The first-party plugins, in dependency order (each its own distribution).
PLUGINS := whyrec-datasets whyrec-lightgbm whyrec-shap whyrec-torch whyrec-causalnex \
           whyrec-distill whyrec-feedback whyrec-ray whyrec-mlflow whyrec-lime whyrec-kg whyrec-serve
PLUGIN_DIRS := $(wildcard $(addprefix plugins/,$(PLUGINS)))
# Optional extras installed with a plugin here (its heavy dependency, or what its tests need).
EXTRAS_whyrec-lime  := [lime]
EXTRAS_whyrec-serve := [test]
EXTRAS_whyrec-ray   := [serve]
EXTRAS_whyrec-distill := [torchao]
PLUGIN_ARGS := $(foreach d,$(PLUGIN_DIRS),-e "./$(d)$(EXTRAS_$(notdir $(d)))")
# torch: the CPU wheel on this machine's disk when present (plain `torch` is a multi-GB CUDA build).
TORCH_FIND := $(if $(wildcard /opt/wheels/torch-2.13.0*),--find-links /opt/wheels,)

.PHONY: demo test install data clean help

help:
	@echo "make demo   install into .venv/ and run the default pipeline (report path printed)"
	@echo "make test   install into .venv/ and run all tests"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24" wheel

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml $(wildcard plugins/*/pyproject.toml) docs/examples/whyrec-example-plugin/pyproject.toml Makefile
	$(PIP) install --quiet $(TORCH_FIND) "torch==2.13.0"
	$(PIP) install --quiet -e ".[test]" $(PLUGIN_ARGS) -e ./docs/examples/whyrec-example-plugin
	@# causalnex 0.12.2 declares Requires-Python <3.11 and old pins; its real needs are pinned by whyrec-causalnex.
	$(if $(wildcard plugins/whyrec-causalnex),$(PIP) install --quiet --no-deps --ignore-requires-python "causalnex==0.12.2")
	touch $@

install: $(VENV)/.installed

data: install
	$(VENV)/bin/whyrec datasets fetch

demo: data
	$(VENV)/bin/whyrec run

test: data
	$(PY) -m pytest tests docs/examples/whyrec-example-plugin/tests -q

# Mutation scores of the modules that compute what users trust (not part of `make test`; slow).
# Mutates a scratch copy, never this tree. MUTATION_ARGS e.g. "--only whyrec.metrics --sample 4".
MUTMUT := .cache/mutmut-venv/bin/mutmut
$(MUTMUT):
	$(PYTHON) -m venv .cache/mutmut-venv
	.cache/mutmut-venv/bin/pip install --quiet "mutmut==2.5.1"

.PHONY: mutation
mutation: data $(MUTMUT)
	nice -n 10 $(PY) tools/mutation/run.py --mutmut $(MUTMUT) $(MUTATION_ARGS)

# CausalNex's own tests, from a checkout of its repository (the release installed here, 0.12.x; its
# tests are not copied into this one), run in a temporary copy with a 7-line test-side port to
# numpy 2 / pandas 3 (git apply), against the installed causalnex under whyrec_causalnex.compat.
# Not part of `make test`. Result and skipped tests: docs/benchmarks.md.
.PHONY: causalnex-suite
causalnex-suite:
	@if [ -z "$(CAUSALNEX_SRC)" ]; then echo "causalnex-suite: give CAUSALNEX_SRC=/path/to/causalnex-checkout (CausalNex's repository at the installed release)" >&2; exit 2; fi
	@if [ ! -d "$(CAUSALNEX_SRC)/tests" ]; then echo "causalnex-suite: $(CAUSALNEX_SRC) has no tests/ folder; CAUSALNEX_SRC must be a checkout of CausalNex's repository" >&2; exit 2; fi
	@$(MAKE) --no-print-directory install
	$(PY) tools/causalnex_suite/run.py "$(CAUSALNEX_SRC)" $(CAUSALNEX_SUITE_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
