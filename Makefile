# waq: `make test` is what CI runs; `make dev` starts the demo.
GO        ?= go
PKGS      ?= ./...
BIN       := bin

.PHONY: test test-short lint dev bench build fuzz clean

build:
	$(GO) build -o $(BIN)/waq ./cmd/waq

test:
	$(GO) test -race -count=1 -timeout 25m $(PKGS)

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# fuzz runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./queue -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./graph -run '^$$' -fuzz FuzzDecodeAnswer -fuzztime $(FUZZTIME)
	$(GO) test ./policy -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN)
