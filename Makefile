# waq: `make test` is what CI runs; `make dev` starts the demo.
GO        ?= go
PKGS      ?= ./...
BIN       := bin

.PHONY: test test-tools test-short lint dev bench bench-go bench-pipeline build image fuzz clean

build:
	$(GO) build -o $(BIN)/waq ./cmd/waq

# image writes $(BIN)/waq-image.tar, waq's OCI image (docker load -i it),
# with neither a Docker daemon nor a base image: a static binary, Debian's CA
# bundle, the nonroot user. deploy/kubernetes/kustomization.yaml names IMAGE.
IMAGE      ?= waq:1.0.0
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
image:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/linux-$(IMAGE_ARCH)/waq ./cmd/waq
	$(GO) run ./cmd/waq-image --binary $(BIN)/linux-$(IMAGE_ARCH)/waq --arch $(IMAGE_ARCH) --tag $(IMAGE) --out $(BIN)/waq-image.tar

test: test-tools
	$(GO) test -race -count=1 -timeout 25m $(PKGS)

# test-tools lists the programs the tests need that are missing: in CI
# (CI=true) any of them stops here; elsewhere the browser and promtool
# tests skip, and this says so (go test shows skips only with -v).
test-tools:
	@./.ci/check-tools

test-short:
	$(GO) test -short -count=1 $(PKGS)

$(BIN)/staticcheck: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

lint: $(BIN)/staticcheck
	$(GO) vet $(PKGS)
	$(BIN)/staticcheck $(PKGS)
	@test -z "$$(gofmt -l . | grep -v '^tools/' | tee /dev/stderr)" || (echo "gofmt: the files above need formatting" >&2; exit 1)

dev:
	$(GO) run ./cmd/waq dev

# bench runs the Go benchmarks and a short pipeline benchmark against its
# baseline; bench-pipeline alone takes BENCH_ARGS (see waq bench -h).
bench: bench-go bench-pipeline

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

BENCH_ARGS ?= --jobs 20000 --baseline
bench-pipeline: build
	$(BIN)/waq bench $(BENCH_ARGS)

# fuzz runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./queue -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./graph -run '^$$' -fuzz FuzzDecodeAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./policy -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./webhook -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./fakegraph -run '^$$' -fuzz FuzzDecodeScenario -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN)
