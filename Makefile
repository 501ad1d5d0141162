# The two commands: `make demo` sets everything up and serves; `make test` runs the whole suite.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
# torch stays out of uv.lock (uv would resolve a multi-GB CUDA build): the CPU wheel shipped on our
# build machines is used when present, otherwise the CPU build from PyTorch's index. --no-config: the
# project's override that keeps torch out of uv's resolution must not apply to this install.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-cp311-*.whl))
TORCH_SOURCE := $(if $(TORCH_WHEEL),$(TORCH_WHEEL),torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)

.PHONY: demo test install bench

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --inexact --python 3.11
	@$(UV) run --frozen --no-sync python -c "import torch" 2>/dev/null || $(UV) pip install --no-config --python .venv $(TORCH_SOURCE)
	@$(UV) run --frozen --no-sync python -c "import torch" || (echo "torch could not be installed" >&2; exit 1)

demo: install
	$(UV) run --frozen --no-sync marketlake demo

test: install
	$(UV) run --frozen --no-sync pytest

bench: install
	$(UV) run --frozen --no-sync python -m benchmarks.run_all
