# mtrec: two commands do everything on a fresh machine with Python 3.11 and pip.
#   make tour   fetch data, run the experiments, execute every notebook (outputs stored),
#               regenerate benchmark tables
#   make test   fetch data, run the unit tests and the notebooks under nbval
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Notebooks and tests never touch the network after `mtrec data fetch`.
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MTREC_OFFLINE=1 \
           TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg PYTHONHASHSEED=0
# Stored notebooks keep their figures: the kernel draws with the inline backend (tests use Agg).
INLINE := MPLBACKEND=module://matplotlib_inline.backend_inline
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
EXERCISES := $(sort $(wildcard notebooks/exercises/*.ipynb notebooks/exercises/solutions/*.ipynb))

# Tables that need more compute than a notebook's 90 s: each command writes its rows to
# benchmarks/results/ and its notebook shows them beside a small live run of the same code.
EXPERIMENTS := transfer kg multiscenario multitask llm tuning sequential generative allocation text_tuning

.PHONY: install data test tour experiments notebooks lint format bench report site clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

data: $(STAMP)
	$(VENV)/bin/mtrec data fetch

test: data
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check mtrec tests notebooks site
	$(OFFLINE) $(PY) -m pytest -p no:cacheprovider --timeout=900 --durations=15 tests
	$(OFFLINE) $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-cell-timeout=600 --durations=0 --durations-min=1.0 \
		--nbval-current-env notebooks

notebooks: data
	for nb in $(NOTEBOOKS) $(EXERCISES); do \
		echo "executing $$nb"; \
		$(OFFLINE) $(INLINE) MTREC_WRITE_RESULTS=1 $(VENV)/bin/jupyter nbconvert --to notebook --execute \
			--inplace --ExecutePreprocessor.timeout=900 "$$nb"; \
	done

experiments: data
	for name in $(EXPERIMENTS); do \
		echo "mtrec run $$name"; \
		$(OFFLINE) MTREC_WRITE_RESULTS=1 $(VENV)/bin/mtrec run $$name; \
	done

report: $(STAMP)
	$(PY) -m mtrec.cli bench --report-only

tour: experiments notebooks report

# The course as a static website, from the outputs stored in the notebooks: nothing is executed
# and nothing fetched (site/conf.py refuses any connection off loopback). Warnings are errors.
# tests/test_site.py builds it the same way and checks it in Chromium.
SITE := site/_build
site: $(STAMP)
	$(OFFLINE) $(PY) -m sphinx -b html -c site -d $(SITE)/doctrees -W --keep-going -q . $(SITE)/html
	@echo "Website built: open $(SITE)/html/index.html in a browser, or serve it with"
	@echo "  $(PY) -m http.server -d $(SITE)/html 8000   and open http://127.0.0.1:8000"

# every throughput and goal row, then torch.compile against eager for the models it could help
bench: data
	$(VENV)/bin/mtrec bench
	$(VENV)/bin/mtrec bench --compile --models mmoe ple star sasrec

lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check mtrec tests notebooks site
	$(VENV)/bin/ruff format --check mtrec tests site

format: $(STAMP)
	$(VENV)/bin/ruff format mtrec tests site
	$(VENV)/bin/ruff check --fix mtrec tests site

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(SITE)
