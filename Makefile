# The two commands: `make demo` sets everything up and serves; `make test` runs the whole suite.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: demo test install bench

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --python 3.11

demo: install
	$(UV) run --frozen marketlake demo

test: install
	$(UV) run --frozen pytest

bench: install
	$(UV) run --frozen python -m benchmarks.run_all
