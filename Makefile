# otelcsp: everything a fresh machine with only Go needs goes through here.
# Tools are pinned in tools/go.mod and run with `go tool`.

GO      ?= go
TOOL    := $(GO) tool -modfile=$(CURDIR)/tools/go.mod
BIN     := distribution/_build/otelcsp
SOURCES := $(shell find . -name '*.go' -not -path './distribution/_build/*' -not -path './bench/*' -not -path './tools/*') \
           go.mod go.sum builder-config.yaml
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
# The contrib span metrics connector version the bench/ module compares with,
# read from bench/go.mod so chart titles name the version actually measured.
SPANMETRICS_VERSION := $(shell awk '/connector\/spanmetricsconnector /{print $$2; exit}' bench/go.mod)
# Likewise for contrib's delta-to-cumulative processor.
DELTATOCUMULATIVE_VERSION := $(shell awk '/processor\/deltatocumulativeprocessor /{print $$2; exit}' bench/go.mod)

.PHONY: all build run test unit smoke bench fuzz lint generate tidy clean

all: build

## build: build the distribution with the pinned ocb into distribution/_build/otelcsp
build: $(BIN)

$(BIN): $(SOURCES)
	$(TOOL) builder --config builder-config.yaml

## run: build, then run the demo: distribution/demo.sh starts the backends (distribution/backends.yaml) and the front (distribution/config.yaml); Ctrl-C stops the front, which drains, then the backends
run: build
	distribution/demo.sh $(BIN)

## test: vet and race-test the module, then smoke-test the built binary
test: unit smoke

unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

smoke: build chromium
	OTELCSP_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 -run 'TestSmoke|TestE2E' ./distribution/ ./deploy/ ./e2e/

## chromium: install the headless browser e2e/statuspage_test.go loads the breaker status page in (Debian package), when it is missing
.PHONY: chromium
chromium:
	command -v chromium || (apt-get update && apt-get install -y chromium)

## bench: every benchmark of the module (BENCHTIME, BENCHCOUNT) summarised by benchstat, then the side-by-side comparisons (bench-compare)
bench:
	mkdir -p bench/results
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./... | tee bench/results/module.txt
	$(TOOL) benchstat bench/results/module.txt
	$(TOOL) benchstat -col /impl -filter '.name:EndToEnd' bench/results/module.txt
	cd bench && $(GO) run ./cmd/benchchart -key impl -unit spans/s -title "fanout to 3 servers vs core otlp exporter to 1, loopback gRPC" -o ../docs/img/fanout-vs-otlp.png results/module.txt
	$(MAKE) bench-compare

## fuzz: run every fuzz target of the module (func Fuzz* in *_test.go) for FUZZTIME each, one after the other
# `make test` already replays the committed seed corpora (testdata/fuzz/);
# this explores further. New inputs that fail land in testdata/fuzz/<Name>/.
FUZZTIME ?= 30s
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v -e '^./distribution/_build/' -e '^./bench/' -e '^./tools/' | sort); do \
		d=./$$(dirname $${f#./}); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$name $$d for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$d || exit 1; \
		done; \
	done

## lint: golangci-lint over the module
lint:
	$(TOOL) golangci-lint run ./...

## generate: regenerate metadata code (mdatagen) for every component
# mdatagen is pinned at v0.159.0 in tools/go.mod, the newest release the module
# proxy serves that builds; its generated code builds against core v1.67.0 / v0.161.0.
generate:
	@for f in $$(find . -name metadata.yaml -not -path './distribution/_build/*'); do \
		echo "mdatagen $$f"; (cd $$(dirname $$f) && $(TOOL) mdatagen metadata.yaml) || exit 1; \
	done

## tidy: tidy the module and the tools module
tidy:
	$(GO) mod tidy
	cd tools && $(GO) mod tidy

## clean: remove build output
clean:
	rm -rf distribution/_build bench/results

## bench-compare: side-by-side benchmarks against peers (the bench/ module), results in bench/results/, compared by benchstat
# The test binary runs BENCHCOUNT rounds of every sub-benchmark (-count 1 each)
# rather than -count BENCHCOUNT, so each sample of an implementation is taken
# right next to its peer's: load that comes and goes on the machine then
# spreads over both instead of biasing one.
.PHONY: bench-compare
bench-compare:
	mkdir -p bench/results
	rm -f bench/results/spanmetrics.txt bench/results/breaker.txt bench/results/deltamerge.txt bench/results/spanlogs.txt
	cd bench && $(GO) test -c -o results/bench.test .
	cd bench && results/bench.test -test.run '^TestSpanMetricsEquivalent$$'
	cd bench && results/bench.test -test.run '^(TestDeltaMergeEquivalent|TestDeltaMergeLoss)$$' -test.v
	cd bench && results/bench.test -test.run '^TestSpanLogsEquivalent$$'
	cd bench && for i in $$(seq $(BENCHCOUNT)); do \
		echo "round $$i/$(BENCHCOUNT)"; \
		results/bench.test -test.run '^$$' -test.bench '^BenchmarkSpanMetrics$$' -test.benchmem -test.benchtime $(BENCHTIME) >> results/spanmetrics.txt || exit 1; \
		results/bench.test -test.run '^$$' -test.bench '^BenchmarkBreaker$$' -test.benchmem -test.benchtime $(BENCHTIME) >> results/breaker.txt || exit 1; \
		results/bench.test -test.run '^$$' -test.bench '^BenchmarkDeltaMerge$$' -test.benchmem -test.benchtime $(BENCHTIME) >> results/deltamerge.txt || exit 1; \
		results/bench.test -test.run '^$$' -test.bench '^BenchmarkSpanLogs$$' -test.benchmem -test.benchtime $(BENCHTIME) >> results/spanlogs.txt || exit 1; \
	done
	$(TOOL) benchstat -col /impl bench/results/spanmetrics.txt
	$(TOOL) benchstat -col /impl bench/results/breaker.txt
	$(TOOL) benchstat -col /impl bench/results/deltamerge.txt
	$(TOOL) benchstat -col /impl bench/results/spanlogs.txt
	cd bench && $(GO) run ./cmd/benchchart -key impl -unit spans/s -title "redmetrics vs contrib spanmetrics $(SPANMETRICS_VERSION)" -o ../docs/img/redmetrics-vs-spanmetrics.png results/spanmetrics.txt
	cd bench && $(GO) run ./cmd/benchchart -key impl -unit ns/op -title "breaker Allow+Done vs gobreaker and failsafe-go (lower is better)" -o ../docs/img/breaker-vs-peers.png results/breaker.txt
	cd bench && $(GO) run ./cmd/benchchart -key impl -unit points/s -title "deltamerge vs contrib deltatocumulative $(DELTATOCUMULATIVE_VERSION), 10k streams x 3 writers" -o ../docs/img/deltamerge-vs-deltatocumulative.png results/deltamerge.txt
	cd bench && $(GO) run ./cmd/benchchart -key impl -unit spans/s -title "spanlogs vs plainexceptions (stand-in for contrib exceptions, not served by the proxy)" -o ../docs/img/spanlogs-vs-plainexceptions.png results/spanlogs.txt
