.PHONY: test fuzz build run
test:
	bash scripts/test.sh

fuzz:
	bash scripts/fuzz.sh

build:
	go build ./cmd/lempgw

run:
	go run ./cmd/lempgw serve
