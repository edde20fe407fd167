# pgbq — the two commands a newcomer runs: `make demo` and `make test`.
.PHONY: demo test test-clocks bench chaos mutations scale trial lint build stack-up stack-down cloud-check

## demo: the whole pipeline on a local stack (PostgreSQL, BigQuery emulator, Pub/Sub fake)
demo:
	bash dev/demo.sh

## test: start PostgreSQL and the BigQuery emulator, then go vet and go test ./...
test:
	bash dev/test.sh

## test-clocks: the date-sensitive packages with the clock pinned at 00:30 and 23:59 UTC, and at a year's end
test-clocks:
	bash dev/test-clocks.sh

## bench: 5M-row activity_logs: COPY throughput, extract+encode, chunk flatness, end-to-end sync, peak RSS,
## latency hiding (the 2M-row day with 3 s BigQuery jobs vs none)
bench:
	bash dev/bench.sh

## chaos: the full fault-injection run (1M rows, 10 dates, >= 52 kill -9s, every fault kind)
chaos:
	bash dev/chaos.sh

## mutations: a table whose rows are inserted into past days, updated, deleted and moved to other days,
## loaders killed meanwhile; compares every column (stale, missing, extra, duplicated must be 0)
mutations:
	bash dev/mutations.sh $(ARGS)

## scale: a back-fill of 200 small dates by 20 pull loaders through the fidelity layer (3 s jobs);
## prints efficiency, dead letters, lost/duplicated rows. `make scale ARGS="--mode push"` shows the old design.
scale:
	bash dev/scale.sh $(ARGS)

## trial: the README's own-table steps run literally on a table with 400 dates of history: they must end
## by themselves with every date finished and worked once (`make test` runs 40 dates)
trial:
	bash dev/trial.sh

## lint: gofmt, go vet, go mod tidy check, golangci-lint (.golangci.yml; pinned in go.mod), terraform fmt,
## and no tracked file over 5 MB (binaries and build output belong in .gitignore)
lint:
	@big="$$(git ls-files -z | xargs -0 -r stat -c '%s %n' | awk '$$1 > 5000000 {print $$2}')"; \
	  test -z "$$big" || { echo "lint: tracked files over 5 MB (build output?): $$big"; exit 1; }
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	go mod tidy -diff
	go tool golangci-lint run ./...
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; fi

## build: both binaries in bin/; --version prints VERSION (default: git describe, else dev)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
build:
	CGO_ENABLED=0 go build -ldflags "-X github.com/pgbq/pgbq/internal/cli.Version=$(VERSION)" -o bin/ ./planner ./loader

## stack-up / stack-down: BigQuery emulator + Pub/Sub fake for your own PostgreSQL (docs/getting-started.md)
stack-up:
	bash dev/devstack.sh up
stack-down:
	bash dev/devstack.sh down

## cloud-check: sync a small table through a real BigQuery project (needs BQ_PROJECT and
## application-default credentials); creates and deletes a scratch dataset. Not part of `make test`.
cloud-check:
	bash dev/cloudcheck.sh
