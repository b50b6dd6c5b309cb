# One virtual environment with the core and every first-party plugin, editable, with the plugins' test extras
# (bind-audio's tests compare against torchaudio's Kaldi fbank and resampler).
PYTHON ?= python3
VENV ?= .venv
PLUGINS := $(sort $(wildcard plugins/bind-*))
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test lint
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e ".[dev]" $(foreach p,$(PLUGINS),-e "$(p)[test]")
	touch $@

demo: install
	$(VENV)/bin/bindcore train recipes/demo.yaml --out runs/demo

test: install
	$(VENV)/bin/python -m pytest -n 2 --durations=15

lint: install
	$(VENV)/bin/ruff check .
