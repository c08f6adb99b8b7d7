# The two commands: `make reproduce` (every notebook, quick profile; PROFILE=full for paper scale) and `make test`.
PYTHON ?= python3
PROFILE ?= quick
VENV := .venv
PY := $(VENV)/bin/python
# one code path for training on every x86-64 CPU with AVX2 or better (see analysis/networks/__init__.py)
export ATEN_CPU_CAPABILITY ?= avx2
export ONEDNN_MAX_CPU_ISA ?= AVX2
export MKL_CBWR ?= AVX2

.PHONY: reproduce test setup data bench lab clean

# Writes under data/reproduction/; exit status 1 if a notebook failed, a verdict changed or a number drifted.
reproduce: data
	$(PY) -m analysis.pipeline.reproduce --profile $(PROFILE)

# Lint, unit tests, then every notebook under nbval (figures to data/test-figures), then the figure regression check.
test: data
	$(PY) -m ruff check analysis tests benchmarks
	rm -rf data/test-figures
	$(PY) -m pytest

# JupyterLab on the notebooks with the project's kernel ("Python (svcca)"); --allow-root for containers run as root.
lab: data
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --allow-root

bench: setup
	$(PY) benchmarks/bench.py

setup: $(VENV)/.installed

# Exact versions from constraints.txt (the tested set); pyproject.toml keeps only lower bounds.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[notebooks,test]'
	$(PY) -m ipykernel install --sys-prefix --name svcca --display-name "Python (svcca)"
	touch $@

# The profile's data, checked file by file. quick: Fashion-MNIST (already here, else Debian's copy, else
# torchvision's download) and the fortunes text corpus (Debian's package); offline on Debian as root, install
# Debian's packages and try again. full: CIFAR-10 (torchvision's download) and WikiText-2 (placed by hand: the
# message says where). Exit status 3 = a dataset could not be had.
DATASETS_quick := fashion-mnist fortunes
DATASETS_full := cifar10 wikitext-2
DATASETS := $(DATASETS_$(PROFILE))
DEBIAN_PACKAGES := dataset-fashion-mnist fortunes
data: setup
	$(PY) -m analysis.networks.data $(DATASETS) || { \
	  status=$$?; [ $$status -eq 3 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null || exit $$status; \
	  echo "Installing Debian's $(DEBIAN_PACKAGES)"; \
	  apt-get install -y $(DEBIAN_PACKAGES) || { apt-get update && apt-get install -y $(DEBIAN_PACKAGES); } || exit $$status; \
	  $(PY) -m analysis.networks.data $(DATASETS); }

clean:
	rm -rf $(VENV) data/test-figures data/reproduction data/figures
