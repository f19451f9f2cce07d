# Two commands do all set-up on a fresh machine:
#   make book   builds the rendered book in _build/html (every chapter executed)
#   make test   runs every test: unit tests, nbval over the chapters, and a strict book build
# Both create or update the virtual environment in .venv from requirements.txt first.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements-installed

.PHONY: book test unit notebooks venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going

unit: $(STAMP)
	$(PY) -m pytest tests

notebooks: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env -p no:randomly book

test: unit notebooks book

clean:
	rm -rf _build
