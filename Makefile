GO ?= go
BIN := bin

.PHONY: build run test test-short race vet fmt lint fuzz bench clean

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: build and start one node with its store in ./data and default flags.
run: build
	./$(BIN)/pushd

## test: every test, with the race detector, including the multi-process ones.
test:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) test -race -count=1 -timeout 20m ./...

## test-short: the fast suite.
test-short:
	$(GO) test -short ./...

lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

## fuzz: a short run of every fuzz target (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	$(GO) test ./internal/wsframe -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME)
	$(GO) test ./internal/wsframe -run '^$$' -fuzz FuzzHandshake -fuzztime $(FUZZTIME)
	$(GO) test ./internal/protocol -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./internal/token -run '^$$' -fuzz FuzzOpen -fuzztime $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
