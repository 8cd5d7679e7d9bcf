# The two commands of the README. Both set everything up on a fresh machine first.
PY := .venv/bin/python

.PHONY: setup demo test data
setup:
	bash tools/setup_env.sh

data: setup
	$(PY) tools/prepare_demo_data.py --out data/demo

# SdAE and MAE pretraining, then tools/evaluate.py --preset demo for both and for a random
# initialisation; the table is written to work_dirs/demo/results.md
demo: setup
	$(PY) tools/run_demo.py

test: setup
	$(PY) -m pytest tests -q -p no:cacheprovider --timeout=900
