# FaceGuard developer commands. `make run` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TRAIN_STAMP := $(VENV)/.installed-train
export QT_QPA_PLATFORM ?= offscreen

.PHONY: run demo test lint unit test-train train-env bench dist dist-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Install and open the kiosk app (the built-in demo runs where no camera is present).
run: $(STAMP)
	QT_QPA_PLATFORM= $(BIN)/faceguard

demo: $(STAMP)
	QT_QPA_PLATFORM= $(BIN)/faceguard --demo

# Install and run every check: ruff, mypy, the import contract (core never imports Qt), pytest.
test: $(STAMP) lint unit

lint: $(STAMP)
	$(BIN)/ruff check faceguard tests tools installer docs
	$(BIN)/mypy faceguard tools docs/screenshots
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Training extra: CPU torch 2.13.0 (never a bare torch: that pulls a multi-GB CUDA build),
# dlib teacher, and facenet-pytorch without its stale pins (only its MTCNN weights are used).
$(TRAIN_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,train]"
	$(BIN)/python -m pip install --quiet --no-deps "facenet-pytorch==2.6.0"
	touch $(TRAIN_STAMP)

train-env: $(TRAIN_STAMP)

test-train: $(TRAIN_STAMP)
	$(BIN)/python -m pytest -q tests/test_training_model.py tests/test_teacher.py \
		tests/test_liveness.py tests/test_sface_torch.py tests/test_finetune_views.py \
		tests/test_gpu_views.py tests/test_online_distill.py tests/test_prune.py

bench: $(STAMP)
	$(BIN)/faceguard bench

# Linux bundle dist/FaceGuard/ and its tarball, built in a throw-away venv of its own
# (build/dist-venv: runtime dependencies + PyInstaller only). DIST_FLAGS=--release refuses
# to build without the product embedder. Windows and macOS: see installer/.
dist:
	bash installer/build_linux.sh $(DIST_FLAGS)

# Build the Linux bundle in a clean venv and run the frozen program's --self-test (slow).
dist-check: $(STAMP)
	$(BIN)/python -m pytest -q -rs -m slow tests/test_installer.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
