# radotp — see README.md.
GO          ?= go
CONFIG      ?= config.example.toml
FUZZTIME    ?= 30s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-short lint fuzz bench clean

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

# Go micro-benchmarks (verifier, packet path, store); the side-by-side
# FreeRADIUS comparison comes with the load generator.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
