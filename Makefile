# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# torch first: a bare `torch` requirement would pull a multi-GB CUDA build where none is installed
TORCH  ?= torch==2.13.0

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[all,test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/microdiff demo --out demo --overwrite

test: install
	$(BIN)/microdiff weights fetch || echo "weights could not be fetched: the tests that need them will skip"
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=10

clean:
	rm -rf $(VENV) demo .pytest_cache
