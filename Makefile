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

.PHONY: all build run test unit smoke bench fuzz lint generate tidy clean package package-test version

all: build

## build: build the distribution with the pinned ocb into distribution/_build/otelcsp (ocb's own go build, no PGO profile: see pgo-profile)
build: $(BIN)

$(BIN): $(SOURCES)
	$(TOOL) builder --config builder-config.yaml

## pgo-profile: refresh distribution/pgo/default.pgo, a CPU profile of both demo tiers under load (distribution/pgo/refresh.sh); make build does not use it, because PGO measured under 5% faster on the demo (docs/benchmarks.md, "Profile-guided optimisation")
## pgo-measure: the distribution built with and without default.pgo, compared on the demo workload taking turns (distribution/pgo/measure.sh; ROUNDS, PGO_TRACES), results in bench/results/pgo.txt
.PHONY: pgo-profile pgo-measure
PGO_PROFILE := distribution/pgo/default.pgo
PGO_BIN     := distribution/_build/otelcsp-pgo
pgo-profile: build
	distribution/pgo/refresh.sh $(CURDIR)/$(BIN)

# The same sources ocb generated and ocb's flags (cgo off, -trimpath,
# -ldflags '-s -w'), plus the profile.
$(PGO_BIN): $(BIN) $(PGO_PROFILE)
	cd distribution/_build && CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -pgo=$(CURDIR)/$(PGO_PROFILE) -o $(CURDIR)/$@ .

pgo-measure: $(BIN) $(PGO_BIN)
	mkdir -p bench/results
	NAME_A=nopgo NAME_B=pgo distribution/pgo/measure.sh $(CURDIR)/$(BIN) $(CURDIR)/$(PGO_BIN) > bench/results/pgo.txt
	cat bench/results/pgo.txt
	$(TOOL) benchstat -col /impl bench/results/pgo.txt

## run: build, then run the demo: distribution/demo.sh starts the backends (distribution/backends.yaml) and the front (distribution/config.yaml); Ctrl-C stops the front, which drains, then the backends
run: build
	distribution/demo.sh $(BIN)

## test: vet and race-test the module, then smoke-test the built binary, then package it for this machine's architecture and test the packages
test: unit smoke package-test

unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# OTELCSP_REQUIRE_BINARY=1: a test that would skip for want of the binary
# fails instead, so `make test` cannot pass without having run them.
smoke: build chromium
	OTELCSP_BINARY=$(CURDIR)/$(BIN) OTELCSP_REQUIRE_BINARY=1 $(GO) test -count=1 -run 'TestSmoke|TestE2E' ./distribution/ ./deploy/ ./e2e/

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

## fuzz: run every fuzz target of the module (func Fuzz* in *_test.go) for FUZZTIME each (minimizing a new input for at most FUZZMINIMIZETIME), one after the other
# `make test` already replays the committed seed corpora (testdata/fuzz/);
# this explores further. New inputs that fail land in testdata/fuzz/<Name>/.
FUZZTIME ?= 30s
# Minimizing a new input may take at most this long (Go's default, 60s, left
# some targets minimizing instead of exploring for all of FUZZTIME).
FUZZMINIMIZETIME ?= 5s
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v -e '^./distribution/_build/' -e '^./bench/' -e '^./tools/' | sort); do \
		d=./$$(dirname $${f#./}); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$name $$d for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$d || exit 1; \
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
	rm -rf distribution/_build bench/results dist tools/bin

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

## package: linux/amd64 and linux/arm64 static binaries, .deb and .rpm (systemd unit), CycloneDX SBOMs, the OCI image and SHA256 checksums into dist/ (packaging/README.md)
# One version for all of it: dist.version of builder-config.yaml, which ocb
# also compiles into the binary (`otelcsp --version`).
VERSION       = $(shell sed -n '/^dist:/,/^[^ ]/s/^  version: *//p' builder-config.yaml)
DESCRIPTION   = $(shell sed -n '/^dist:/,/^[^ ]/s/^  description: *//p' builder-config.yaml)
HOST_PLATFORM = $(shell $(GO) env GOOS)/$(shell $(GO) env GOARCH)
PKG_ARCHES   ?= amd64 arm64
DIST         := dist
# Every file in a package or image layer gets the last commit's time, so a
# commit's packages are the same bytes wherever they are built.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
RPM_ARCH_amd64 := x86_64
RPM_ARCH_arm64 := aarch64
PACKAGING_SOURCES := $(wildcard packaging/nfpm.yaml packaging/otelcsp.service packaging/config.yaml packaging/otelcsp.conf packaging/scripts/*.sh) \
                     $(wildcard testdata/deploy/*.yaml) CHANGELOG.md
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
# The image: what distribution/Dockerfile builds with an engine (same files,
# user, environment, ports, entrypoint, labels); packaging/image_test.go
# checks that the two agree. uid/gid 65532 as in docs/deploy.md.
IMAGE_FILES := /etc/otelcsp/config.yaml=distribution/container.yaml \
               /etc/otelcsp/agent.yaml=testdata/deploy/agent.yaml \
               /etc/otelcsp/gateway.yaml=testdata/deploy/gateway.yaml \
               /etc/passwd=packaging/image/passwd \
               /etc/group=packaging/image/group \
               /etc/ssl/certs/ca-certificates.crt=$(CA_CERTS)
IMAGE_ARGS   = -version $(VERSION) -title otelcsp \
               -binary-path /otelcsp -entrypoint /otelcsp -cmd --config -cmd /etc/otelcsp/config.yaml \
               -user 65532:65532 -env OTELCSP_LISTEN_HOST=0.0.0.0 \
               -port 4317/tcp -port 4318/tcp -port 8888/tcp -port 8889/tcp -port 13133/tcp \
               $(foreach f,$(IMAGE_FILES),-file $(f))
OCIIMAGE     := tools/bin/ociimage
PKG_BINS      = $(foreach a,$(PKG_ARCHES),$(DIST)/linux_$(a)/otelcsp)
PKG_FILES     = $(foreach a,$(PKG_ARCHES),$(DIST)/otelcsp_$(VERSION)_$(a).deb $(DIST)/otelcsp-$(VERSION)-1.$(RPM_ARCH_$(a)).rpm $(DIST)/otelcsp_$(VERSION)_linux_$(a).cdx.json) \
                $(DIST)/otelcsp_$(VERSION)_image.tar

package: $(DIST)/otelcsp_$(VERSION)_checksums.txt

$(DIST)/otelcsp_$(VERSION)_checksums.txt: $(PKG_FILES)
	cd $(DIST) && sha256sum $(notdir $^) > $(notdir $@)

# make build's binary is already static linux/amd64 (ocb builds with cgo off,
# -trimpath, -ldflags '-s -w'): the host's architecture reuses it, the others
# are compiled from the sources ocb generated, with ocb's flags.
$(DIST)/linux_%/otelcsp: $(BIN)
	@mkdir -p $(@D)
	if [ "linux/$*" = "$(HOST_PLATFORM)" ]; then cp $(BIN) $@; else \
		cd distribution/_build && CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -trimpath -ldflags='-s -w' -o $(CURDIR)/$@ .; fi

# nfpm <goarch> <deb|rpm> <output>
nfpm = VERSION=$(VERSION) PKG_ARCH=$(1) BINARY=$(DIST)/linux_$(1)/otelcsp DESCRIPTION='$(DESCRIPTION)' \
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(TOOL) nfpm package --config packaging/nfpm.yaml --packager $(2) --target $(3)

# cyclonedx-gomod writes `go env`'s GOARCH into the SBOM's package URLs, so
# it runs with the binary's; `go tool -n` only builds it (for this machine)
# and prints its path: `go tool` itself would build it for that GOARCH.
define package_rules
$(DIST)/otelcsp_$(VERSION)_$(1).deb: $(DIST)/linux_$(1)/otelcsp $(PACKAGING_SOURCES)
	$$(call nfpm,$(1),deb,$$@)
$(DIST)/otelcsp-$(VERSION)-1.$(RPM_ARCH_$(1)).rpm: $(DIST)/linux_$(1)/otelcsp $(PACKAGING_SOURCES)
	$$(call nfpm,$(1),rpm,$$@)
$(DIST)/otelcsp_$(VERSION)_linux_$(1).cdx.json: $(DIST)/linux_$(1)/otelcsp
	GOOS=linux GOARCH=$(1) $$$$($(TOOL) -n cyclonedx-gomod) bin -json -version v$(VERSION) -output $$@ $$<
endef
$(foreach a,amd64 arm64,$(eval $(call package_rules,$(a))))

$(OCIIMAGE): tools/go.mod tools/go.sum $(wildcard tools/ociimage/*.go)
	$(GO) -C tools build -o bin/ociimage ./ociimage

# The OCI image layout (dist/image) and the same as one tar (an oci-archive,
# for `podman load` or `skopeo copy oci-archive:`).
$(DIST)/otelcsp_$(VERSION)_image.tar: $(OCIIMAGE) $(PKG_BINS) $(foreach f,$(IMAGE_FILES),$(lastword $(subst =, ,$(f))))
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(OCIIMAGE) -layout $(DIST)/image $(foreach a,$(PKG_ARCHES),-binary linux/$(a)=$(DIST)/linux_$(a)/otelcsp) $(IMAGE_ARGS)
	tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner -C $(DIST)/image -cf $@ .

## package-test: `make package` for this machine's architecture only, then the tests of what it built (packaging/), which fail here instead of skipping
package-test:
	$(MAKE) package PKG_ARCHES=$(lastword $(subst /, ,$(HOST_PLATFORM)))
	OTELCSP_REQUIRE_PACKAGES=1 $(GO) test -count=1 ./packaging/

## version: print the release version (dist.version of builder-config.yaml)
version:
	@echo $(VERSION)
