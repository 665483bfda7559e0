# radotp — see README.md.
GO          ?= go
CONFIG      ?= config.example.toml
FUZZTIME    ?= 30s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-short lint fuzz bench bench-quick bench-go clean

all: build

build:
	$(GO) build -o bin/radotp ./cmd/radotp

# Start radotp with the example configuration (RADIUS 127.0.0.1:1812,
# metrics 127.0.0.1:9812, radotp.db and radotp.key beside the config file).
run: build
	./bin/radotp serve --config $(CONFIG)

# Every test, with the race detector. End-to-end tests drive the real binary
# with radclient/radtest and oathtool; they skip when those are missing unless
# RADOTP_E2E=1 (as in CI), which turns a skip into a failure.
test:
	$(GO) test -race -count=1 ./...

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Run every fuzz target for FUZZTIME each (the seed corpora in testdata/ run
# in `make test` as ordinary tests).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Side by side, in one run: radotp, FreeRADIUS 3.2 with rlm_totp (users file
# and SQLite, set up by ../shared/bench/freeradius/run.sh: needs root and apt)
# and the machine's ceiling, under the same load generator (cmd/radotp-bench);
# prints one table with the ratios (docs/benchmarks.md). About 7 minutes,
# plus about a minute the first time to build the million-user databases
# (kept in BENCH_WORK). BENCH_FLAGS=--freeradius=false measures radotp alone.
BENCH_WORK  ?= /tmp/radotp-bench
BENCH_FLAGS ?=
bench:
	$(GO) run ./bench --work $(BENCH_WORK) $(BENCH_FLAGS)

# The same with 5 s runs and one round (about 3 minutes once the databases exist).
bench-quick:
	$(GO) run ./bench --work $(BENCH_WORK) --quick $(BENCH_FLAGS)

# Go micro-benchmarks (verifier, packet path, store, import).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Ten minutes of mixed load against the real binary (10 % loss with NAS
# retransmits, junk and malformed packets), asserting one reply per request
# and flat RSS, goroutines and reply cache (cmd/radotp/soak_test.go). Not in
# CI; `make test` runs a short version.
.PHONY: soak
soak:
	RADOTP_SOAK=10m $(GO) test -run TestSoak -timeout 20m -v ./cmd/radotp

clean:
	rm -rf bin
