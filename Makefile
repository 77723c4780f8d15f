# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo smoke test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)  ## run the whole system on this machine and print its addresses
	$(BIN)/seabridge demo

smoke: $(STAMP)  ## headless self-test: a few messages each way, exit 0 only if all arrive once
	$(BIN)/seabridge demo --smoke

test: $(STAMP)  ## the whole test suite (needs /usr/sbin/mosquitto; .ci/run installs it)
	$(BIN)/ruff check seabridge common wire gateway shore simulators firmware_profiles tests bench
	$(BIN)/pytest -q -rs

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
