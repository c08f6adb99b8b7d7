# The two commands: `make reproduce` (every notebook, quick profile; PROFILE=full for paper scale) and `make test`.
PYTHON ?= python3
PROFILE ?= quick
VENV := .venv
PY := $(VENV)/bin/python
export MPLBACKEND := Agg

.PHONY: reproduce test setup data bench clean

reproduce: data
	$(PY) -m analysis.reproduce --profile $(PROFILE)

# Unit tests, then every notebook under nbval (figures to data/test-figures), then the figure regression check.
test: data
	rm -rf data/test-figures
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/bench.py

setup: $(VENV)/.installed

# Exact versions from constraints.txt (the tested set); pyproject.toml keeps only lower bounds.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[notebooks,test]'
	$(PY) -m ipykernel install --sys-prefix --name svcca --display-name "Python (svcca)"
	touch $@

# Fashion-MNIST: already here, else Debian's copy, else torchvision's download; offline on Debian as root,
# install Debian's dataset package and try again (exit status 3 = neither route worked).
data: setup
	$(PY) -m analysis.data fashion-mnist || { \
	  status=$$?; [ $$status -eq 3 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null || exit $$status; \
	  echo "Installing Debian's dataset-fashion-mnist"; \
	  apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; } || exit $$status; \
	  $(PY) -m analysis.data fashion-mnist; }

clean:
	rm -rf $(VENV) data/test-figures data/executed
