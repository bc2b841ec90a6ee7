# upgate — build, run, test. `make run` and `make test` are all a fresh machine needs.
CARGO ?= cargo
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= head chunked h1_conn path register_form callback_url callback_answer multipart resumable_headers etcd_watch tls_bytes tls_records

.PHONY: stress-lifecycle build run test test-deps lint fmt doc bench bench-peers fuzz layering demo cluster-demo browser-check client-memory soak

build:
	$(CARGO) build --release

## Start the node on embedded defaults: 127.0.0.1:8080, data under ./data.
run:
	$(CARGO) run --release -- serve

## Every test: unit, end-to-end over loopback, property tests, the fuzz seed replay. Installs
## what the tests need first (test-deps).
test: test-deps layering
	$(CARGO) test --workspace --all-features -- --test-threads=4
	$(MAKE) browser-check

## The system packages the tests need (.ci/packages: curl, promtool, chromium, python3-venv,
## nodejs), installed with apt-get only when missing (scripts/test-deps.sh; needs root then), and
## the real tus clients of tests/tus_interop.rs (tuspy from PyPI; tus-js-client, @uppy/core,
## @uppy/tus from npm) cached under target/interop (scripts/interop-deps.sh). Prints one line
## each when there is nothing to do.
test-deps:
	@bash scripts/test-deps.sh

## Formatting and clippy with warnings denied.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

doc:
	$(CARGO) doc --no-deps

## Criterion benches of the protocol layer, then the node against nginx (bench-peers).
bench:
	$(CARGO) bench --bench parse_head --bench head_ratio --bench decode_body --bench multipart --bench resumable_headers
	$(MAKE) bench-peers

## upgate and nginx side by side under `upgate bench`, with the machine's limits
## (benches/peers/run.sh; installs nginx and iperf3 with apt-get if missing; 5-10 minutes).
## Writes target/peers/results.md.
bench-peers:
	benches/peers/run.sh

## Each fuzz target for FUZZ_SECONDS (cargo-fuzz on the stable toolchain via RUSTC_BOOTSTRAP).
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## The protocol crate is sans-IO: its only dependencies are base64, bytes, httparse, memchr and smallvec
## (the compiler enforces the rest); this checks that list, that the driver imports no handler,
## and that no two files import each other, directly or around a circle. The tools
## (crates/upgate-tools) never depend on the node, and only the node's binary (src/main.rs)
## uses them, not its library.
layering:
	@deps=$$($(CARGO) tree -p upgate-http -e normal --depth 1 --prefix none | tail -n +2 | cut -d' ' -f1 | sort | tr '\n' ' '); \
		[ "$$deps" = "base64 bytes httparse memchr smallvec " ] || { echo "upgate-http depends on: $$deps"; exit 1; }
	@! $(CARGO) tree -p upgate-tools -e normal --prefix none | grep -q '^upgate v' \
		|| (echo 'upgate-tools must not depend on the node crate upgate (see docs/architecture.md, "Crates")'; exit 1)
	@! grep -rn 'upgate_tools' src --include='*.rs' | grep -v '^src/main.rs:' | grep -vE '^[^:]+:[0-9]+: *//' \
		|| (echo 'the node library (src/) must not use upgate_tools; only src/main.rs does'; exit 1)
	@! grep -nE 'crate::(routes|upload|download|register|health|node|app)\b' src/server/*.rs \
		|| (echo 'src/server (the driver) must not import handlers (see docs/architecture.md)'; exit 1)
	@python3 scripts/import-cycles.py src crates/*/src

## The whole system on loopback, step by step: node, demo app, two uploads, a veto, the
## notifications, downloads compared by SHA-256; stops everything it started. Uses the
## release build (the one `make run` built).
demo:
	PROFILE=release bash scripts/demo.sh

## Three nodes sharing one registry in etcd, on loopback (scripts/cluster-demo.sh): register
## once, upload anywhere, etcd stopped and started again. Installs etcd-server when missing.
cluster-demo:
	PROFILE=release bash scripts/cluster-demo.sh

## The demo app's page in headless Chromium: the upload is listed and linked; writes
## target/demo-page.png. Then uploads from the browser straight to the node (form endpoint,
## CORS, upload tokens; XMLHttpRequest, fetch, Uppy from npm cached under target/npm, the demo
## page itself), compared by SHA-256 (scripts/browser-form-check.sh). Part of `make test`.
browser-check: test-deps
	bash scripts/browser-check.sh
	bash scripts/browser-form-check.sh

## Peak resident memory of `upgate upload` sending a 2 GiB sparse file (must stay under 32 MiB);
## TLS=1 sends it over HTTPS (the node's tls_listen, --cacert).
client-memory:
	bash scripts/client-memory.sh

## server_lifecycle over and over beside the storm tests, STRESS_SECS (600) long: the hunt for
## the one unexplained failure (docs/reliability.md, "Limits").
stress-lifecycle:
	bash scripts/stress-lifecycle.sh

## Crash-consistency soak: the crash loop and the tus crash loop (tests/tus_crash.rs) with 300
## kill -9s each (about 10 minutes each, bounded by 20);
## SOAK_SEED replays a seed.
soak:
	UPGATE_SOAK_KILLS=300 UPGATE_SOAK_SECS=1200 $(if $(SOAK_SEED),UPGATE_SOAK_SEED=$(SOAK_SEED)) \
		$(CARGO) test --release --test crash_loop --test tus_crash -- --nocapture
