# Vercel Resource Sync: the README's commands. Every Python package of the repository (the core in
# layers/sync_core and the tools) is installed into .venv (`pip install -e .`): no PYTHONPATH needed.
#   make venv   .venv (Python 3.13): the hashed lock, then the repository itself, editable
#   make demo   the product end to end: moto server, the Vercel emulator, the local runner, the real handlers
#   make test   unit and integration tests
#   make run    the handlers on every events/ file, over real HTTP (moto server + the Vercel emulator)
#   make emulator   the Vercel API emulator alone, on 127.0.0.1:8787 (ARGS="--token icfg_x=TOKEN ...")
#   make local-aws  moto server on 127.0.0.1:5000 with template.yaml's resources, for the local runner
#   make bench  the benchmark suite: ours vs a naive baseline vs the ideal, one table (ARGS="--cases 1,2 --quick --json F")
#   make bench-emulator   the emulator's own throughput (a load run of 10,000 requests)
#   make backfill / make replay / make replay-stream-failures   the operations tools (ARGS="..."; docs/operations.md)
#   make chaos-full   the chaos suite at its full size (5,000 changes to 300 resources per scenario)
#   make lint   ruff (lint, format) and mypy over every package; make format rewrites what ruff can fix
#   make security   the static security scan: bandit (code), cfn-lint with security rules (template)
#   make validate / make build   sam validate --lint and cfn-lint / sam build, then bytecode (tools/compile_build.py)
#   make sam-venv   .venv-sam: the SAM CLI in a virtual environment of its own (validate, build)
#   make lock   the hashed locks (layers/sync_core/requirements.txt, requirements-dev.txt) from their .in files
#   make audit  pip-audit over both locks; fails, saying so, where the vulnerability service cannot be reached
#   make ci     what CI runs (.ci/run); make clean removes the virtual environments, the build and the caches

# The Lambda runtime is Python 3.13. With pyenv, select it by name; elsewhere put python3.13 on PATH.
export PYENV_VERSION ?= 3.13.0
export SAM_CLI_TELEMETRY ?= 0
PYTHON ?= python3.13
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam

.PHONY: venv sam-venv lock audit demo run emulator local-aws bench bench-emulator backfill replay replay-stream-failures test chaos-full lint security format validate build ci clean

# From the hashed lock only (pip, setuptools included), then the repository itself: editable, so it
# has no hash to check; without dependencies or build isolation, so nothing unlocked comes in.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt layers/sync_core/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(PY) -m pip install -qq --no-deps --no-build-isolation -e .
	touch $@

# Regenerate the locks after editing a .in file (or to take new versions: ARGS=--upgrade).
# --allow-unsafe pins pip and setuptools too; no index or find-links of this machine is written.
PIP_COMPILE = $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(ARGS)
lock: venv
	$(PIP_COMPILE) --output-file layers/sync_core/requirements.txt layers/sync_core/requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

audit: venv
	$(PY) tools/audit.py layers/sync_core/requirements.txt requirements-dev.txt $(ARGS)

# aws-sam-cli pins boto3, click and pydantic below what the project uses: a venv of its own.
sam-venv: $(SAM_VENV)/.installed
$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

demo: venv
	$(PY) -m demo $(ARGS)

run: venv
	$(PY) -m tools.run_events $(ARGS)

emulator: venv
	$(VENV)/bin/vercel-emulator $(ARGS)

local-aws: venv
	$(PY) -m local_aws $(ARGS)

bench: venv
	$(PY) -m bench $(ARGS)

bench-emulator: venv
	$(PY) bench/emulator_load.py $(ARGS)

# Operations (docs/operations.md). AWS credentials and endpoints from the environment, as for the AWS CLI.
backfill: venv
	$(PY) -m operations backfill $(ARGS)

replay: venv
	$(PY) -m operations replay $(ARGS)

replay-stream-failures: venv
	$(PY) -m operations replay-stream-failures $(ARGS)

test: venv
	$(PY) -m pytest $(ARGS)

chaos-full: venv
	CHAOS_SCALE=full $(PY) -m pytest tests/chaos -p no:logging $(ARGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

security: venv sam-venv
	PY=$(PY) SAM_PY=$(SAM_VENV)/bin/python bash .ci/security

format: venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

validate: sam-venv venv
	$(SAM) validate --lint
	$(VENV)/bin/cfn-lint template.yaml

# sam build, then bytecode for every module (tools/compile_build.py says why: cold starts).
# SAM installs the layer's lock with the pip of the first python3.13 on PATH: .venv-sam's. SAM's
# first pass downloads the lock (hash-checked); its second fetches each compiled package's arm64
# wheel by name and version only, so the lock is also the constraint file, whose hashes this pip
# checks, and PIP_REQUIRE_HASHES refuses any file without one (a pip that ignored them fails the build).
build: sam-venv venv
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" PIP_REQUIRE_HASHES=1 \
		PIP_CONSTRAINT="$(CURDIR)/layers/sync_core/requirements.txt" $(SAM) build
	$(PY) tools/compile_build.py .aws-sam/build

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache build *.egg-info
