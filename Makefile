.PHONY: test fuzz bench build run
test:
	bash scripts/test.sh

fuzz:
	bash scripts/fuzz.sh

bench:
	bash scripts/bench.sh

build:
	go build ./cmd/lempgw

run:
	go run ./cmd/lempgw serve
