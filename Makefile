GO ?= go
BIN := bin

.PHONY: build run cluster test test-short race vet fmt lint fuzz bench clean

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: build and start one node with its store in ./data and default flags.
run: build
	./$(BIN)/pushd

## cluster: build and start N nodes (default 3) as one cluster on loopback.
## Node i serves WebSocket on 127.0.0.1:8080+10i, HTTP on 8081+10i and
## gossips on 7946+10i, with its store in ./data/cluster/node-i. Ctrl-C
## stops them all.
N ?= 3
CLUSTER_KEY ?= pushd-local-cluster-key-change-me
cluster: build
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM; \
	for i in $$(seq 0 $$(($(N)-1))); do \
		join=""; [ $$i -gt 0 ] && join="-join 127.0.0.1:7946"; \
		PUSHD_CLUSTER_KEY=$(CLUSTER_KEY) ./$(BIN)/pushd -node-name node-$$i \
			-ws-addr 127.0.0.1:$$((8080+10*i)) -http-addr 127.0.0.1:$$((8081+10*i)) \
			-endpoint-url http://127.0.0.1:$$((8081+10*i)) -data-dir ./data/cluster/node-$$i \
			-cluster-addr 127.0.0.1:$$((7946+10*i)) $$join & \
		sleep 1; \
	done; \
	wait

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
	$(GO) test ./engine -run '^$$' -fuzz FuzzWire -fuzztime $(FUZZTIME)
	$(GO) test ./shardstore -run '^$$' -fuzz FuzzTransferRecord -fuzztime $(FUZZTIME)
	$(GO) test ./cluster -run '^$$' -fuzz FuzzTransportFrame -fuzztime $(FUZZTIME)
	$(GO) test ./cluster -run '^$$' -fuzz FuzzTransportHello -fuzztime $(FUZZTIME)
	$(GO) test ./cluster -run '^$$' -fuzz FuzzDecodeMeta -fuzztime $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
