# Weir build. `make run` starts the platform with the demo tenant and jobs; `make test` runs every test.
GO        ?= go
BIN       := bin/weir
EXAMPLES  := wordcount windowed-sum fraud bench nexmark
WASM      := $(foreach e,$(EXAMPLES),examples/$(e)/$(e).wasm)
GOFILES   := $(shell find . -name '*.go' -not -path './.git/*' 2>/dev/null)

.PHONY: all build wasm test test-short run wordcount bench bench-checkpoint bench-platform bench-nexmark fuzz vet clean proto

all: build wasm

build: $(BIN)

$(BIN): $(GOFILES) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/weir

wasm: $(WASM)

examples/%.wasm: $(GOFILES)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o $@ ./$(dir $@)

# The platform on the embedded default (one process, data in ./weir-data):
# creates the demo tenant, prints the API address and a demo API key,
# uploads the example modules and deploys the demo jobs. Ctrl-C stops it.
LISTEN ?= :8080
run: build wasm
	$(BIN) standalone --listen $(LISTEN) --demo examples

# The word-count example as one job in this process (no platform).
wordcount: build wasm
	$(BIN) run examples/wordcount/job.yaml
	@echo "--- examples/wordcount/output/ (first lines, sorted)"
	@cat examples/wordcount/output/part-* | sort | head -20

# The whole test suite: race detector on, plus a short fuzz run per target.
test: wasm minio
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# A short run of every fuzz target (batch decoder, SDK dispatch, host
# functions fed random guest pointers, JSON scanner, snapshot import, row
# encoding, the Nexmark queries' bid decoder); longer: make fuzz FUZZTIME=5m
FUZZTIME ?= 8s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME) ./abi
	$(GO) test -run '^$$' -fuzz '^FuzzProcess$$' -fuzztime $(FUZZTIME) ./sdk
	$(GO) test -run '^$$' -fuzz '^FuzzHostCalls$$' -fuzztime $(FUZZTIME) ./wasmhost
	$(GO) test -run '^$$' -fuzz '^FuzzValidJSONObject$$' -fuzztime $(FUZZTIME) ./connectors
	$(GO) test -run '^$$' -fuzz '^FuzzImport$$' -fuzztime $(FUZZTIME) ./state
	$(GO) test -run '^$$' -fuzz '^FuzzValid$$' -fuzztime $(FUZZTIME) ./abi/row
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBid$$' -fuzztime $(FUZZTIME) ./examples/nexmark/queries

# The MinIO server the S3 checkpoint-storage tests start: built once from the
# Go module proxy at the version scripts/minio.sh pins (a few minutes), cached
# under ~/.cache/weir/bin. Without it those tests fail saying so (WEIR_SKIP_S3=1 skips them).
.PHONY: minio
minio:
	@if [ "$$WEIR_SKIP_S3" = 1 ]; then echo "WEIR_SKIP_S3=1: not building MinIO"; else scripts/minio.sh; fi

bench: wasm
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./examples/bench/

# Checkpoint overhead (every 1 s vs none); the 1 GiB incremental-checkpoint
# and recovery benchmarks: make bench-checkpoint LARGE=1 (tens of minutes).
bench-checkpoint: minio
	$(GO) test -run '^$$' -bench CheckpointOverhead -benchtime 4x -count 1 -v ./examples/bench/ckpt/
	WEIR_BENCH_LARGE=$(LARGE) $(GO) test -run '^$$' -bench 'Incremental|Recovery' -benchtime 1x -count 1 -timeout 60m -v ./examples/bench/ckpt/

# The platform benchmarks (docs/BENCHMARKS.md, "Platform"), through the REST
# API of a real server on 127.0.0.1: noisy neighbour, API latency under 200
# clients (and the default rate quota), module upload and validation (~3 min).
bench-platform:
	$(GO) test -run '^$$' -bench 'NoisyNeighbour|APILatency' -benchtime 3x -count 1 -timeout 30m -v ./platform/
	$(GO) test -run '^$$' -bench 'ModuleUpload' -benchtime 20x -count 1 -timeout 30m -v ./platform/

# Nexmark q0-q8 (generator -> query -> blackhole, 1 M events, parallelism
# 1), each with its operators in Wasm and compiled natively in the same run,
# events per busy core; then Kafka source -> Wasm map -> Kafka sink on kfake,
# at-least-once and exactly-once (docs/BENCHMARKS.md, "Nexmark and Kafka").
bench-nexmark: wasm
	$(GO) test -run '^$$' -bench Nexmark -benchtime 3x -count 1 -timeout 60m -v ./examples/nexmark/
	$(GO) test -run '^$$' -bench KafkaPipeline -benchtime 3x -count 1 -timeout 30m -v ./examples/bench/kafka/

clean:
	rm -rf bin $(WASM) examples/*/output

# Regenerates the Go code of the cluster protocol (platform/cluster/clusterpb)
# from cluster.proto. The generated files are committed, so only whoever edits
# the .proto needs protoc (Debian package protobuf-compiler); a test there
# fails when they are stale. The two protoc plugins are the versions go.mod
# pins (its tool directives, so that the generator and the protobuf runtime
# the code links against cannot drift apart), built into .tools/bin: protoc
# is handed their paths and never picks up a protoc-gen-go from PATH.
PROTO_DIR     := platform/cluster/clusterpb
TOOLS_BIN     := $(CURDIR)/.tools/bin
PROTO_PLUGINS := google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

proto:
	@command -v protoc >/dev/null 2>&1 || { echo "make proto: protoc not found on PATH; install the Debian package protobuf-compiler (apt-get install -y protobuf-compiler)" >&2; exit 1; }
	@for pkg in $(PROTO_PLUGINS); do \
	  bin=$(TOOLS_BIN)/$${pkg##*/}; \
	  mod=$$($(GO) list -f '{{.Module.Path}}' $$pkg) && want=$$($(GO) list -f '{{.Module.Version}}' $$pkg) || exit 1; \
	  have=$$($(GO) version -m $$bin 2>/dev/null | awk -v m=$$mod '($$1 == "dep" || $$1 == "mod") && $$2 == m { print $$3 }'); \
	  if [ "$$have" != "$$want" ]; then \
	    echo "building $${pkg##*/} $$want into $(TOOLS_BIN)"; \
	    rm -f $$bin && $(GO) build -o $$bin $$pkg || exit 1; \
	  fi; \
	done
	protoc --version
	protoc --proto_path=$(PROTO_DIR) \
	  --plugin=protoc-gen-go=$(TOOLS_BIN)/protoc-gen-go \
	  --plugin=protoc-gen-go-grpc=$(TOOLS_BIN)/protoc-gen-go-grpc \
	  --go_out=$(PROTO_DIR) --go_opt=paths=source_relative \
	  --go-grpc_out=$(PROTO_DIR) --go-grpc_opt=paths=source_relative \
	  $(PROTO_DIR)/cluster.proto
