# The two commands of the README. Both set everything up on a fresh machine first.
PY := .venv/bin/python

.PHONY: setup demo test data
setup:
	bash tools/setup_env.sh

data: setup
	$(PY) tools/prepare_demo_data.py --out data/demo

demo: setup
	$(PY) tools/run_demo.py

test: setup
	$(PY) -m pytest tests -q -p no:cacheprovider --timeout=900
