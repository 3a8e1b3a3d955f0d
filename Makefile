# Two commands do everything on a fresh machine:
#   make demo   set up, then `qa-console up`: the biography bot from its dataset to a live API
#               on the embedded local AWS (ending in the chat at a terminal)
#   make test   set up, then run the tests (what CI runs, plus lint and type checks in .ci/run)

VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo up walkthrough test wheel-smoke lint typecheck check bench clean

install:
	@bash scripts/install.sh

demo: install
	$(BIN)/qa-console up

up: demo

# The same flow step by step, one qa-console command at a time (what `up` does for you).
walkthrough: install
	@bash scripts/biography_bot.sh

test: install
	$(BIN)/python -m pytest

# Only the wheel smoke (also part of `make test`): build the wheel, install it in a fresh venv,
# and run the biography bot's commands from a folder outside the checkout.
wheel-smoke: install
	$(BIN)/python -m pytest tests/test_wheel_install.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
