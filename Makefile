# Two commands on a fresh machine with only python3:
#   make demo   runs the main job (end-to-end demo on embedded defaults)
#   make test   runs the whole test suite, in random order (the seed is printed at the end;
#               make test SEED=<seed> runs that order again)
#   make mutate runs mutation testing (slow; not part of make test; docs/mutation.md)
# Both bootstrap uv into .tools/ and the locked environment into .venv/.

PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := .tools/bin/uv
RUN := $(UV) run --frozen --all-packages
# Empty: a new random test order each run. A number: the order that seed gives (pytest-randomly).
SEED ?=

.PHONY: demo test lint typecheck bench mutate env clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: $(UV) uv.lock pyproject.toml adapters/starlette/pyproject.toml adapters/langchain/pyproject.toml
	$(UV) sync --frozen --all-packages
	touch .venv/.synced

env: .venv/.synced

demo: env
	$(RUN) python -m examples.support_assistant

test: env
	$(RUN) pytest -q $(if $(SEED),--randomly-seed=$(SEED))
	$(RUN) ruff check .
	$(RUN) mypy

bench: env
	$(RUN) python -m benchmarks

# make mutate                      every module of mutation/modules.toml (about N min on 2 cores)
# make mutate MODULE=units         one module (or several: MODULE="units policy")
# make mutate MODULE=units JOBS=1  fewer mutmut workers on a shared machine
MODULE ?=
JOBS ?= 2
mutate: env
	$(RUN) python -m mutation --jobs $(JOBS) $(MODULE)

clean:
	rm -rf .tools .venv
