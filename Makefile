# The two commands of the quick start are `make demo` and `make test`; the rest are for
# developers. Every target installs what it needs through scripts/deps first.

CARGO ?= cargo
# scripts/deps may have just installed Rust with rustup.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: demo test test-long bench synth deps fmt clippy build

## Runs the appliance's main job on the embedded default: four replicas (verityd processes
## ordering by BFT consensus on loopback) on simulated cards, loaded for 10 s by
## `verity load` through every replica, their state roots compared, stopped cleanly; no card,
## no server.
demo: deps
	$(CARGO) build --locked --release -p verity-host --bins
	$(CARGO) run --locked --release -p verity-host --bin verity -- demo

## The whole suite: formatting, lints, every test of every crate (optimised test profile).
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) test --locked --workspace

## The long sweeps, too slow for CI: the ECC engine's Verilog against the interpreter on 400
## more signatures (a few minutes).
test-long: deps
	$(CARGO) test --locked --workspace -- --ignored

## Criterion benchmarks with tables of ratios against the references they name: the CPU
## verifier against the reference crates, the XDMA path against ed25519-dalek's verify time,
## the replica's pipeline end to end against the CPU backend's raw rate, four replicas
## ordering by consensus against that rate shared by the verifications each transaction costs,
## `verity replay` of a 1M-transaction capture against the same sends from memory, and
## re-margining 100,000 option accounts after a mark change — the arithmetic alone, and the
## ledger's block that moves the mark (re-margin and liquidations) — against its 50 ms target,
## a second of the state store's receipts 2M receipts in, against the same second of empty
## blocks, a version of its account tree against the same blocks changing no account, and
## the ledger executing a block of transfers (its cost per transaction).
bench: deps
	$(CARGO) bench --locked -p verity-drivers --bench cpu_verify
	$(CARGO) bench --locked -p verity-drivers --bench xdma_path
	$(CARGO) bench --locked -p verity-host --bench pipeline
	$(CARGO) bench --locked -p verity-host --bench cluster
	$(CARGO) bench --locked -p verity-host --bench pcap
	$(CARGO) bench --locked -p verity-host --bench margin
	$(CARGO) bench --locked -p verity-host --bench store
	$(CARGO) bench --locked -p verity-host --bench ledger

## Synthesis of HDL blocks: UltraScale+ resources and logic depth (Yosys synth_xilinx), ECP5
## place-and-route and Fmax (nextpnr). One block with BLOCK=NAME (`verity hdl list`), else all;
## the card with K engines (default 1) in LANES lanes (default one per four engines):
## `make synth BLOCK=card K=8`.
BLOCK ?= sha512 sha256 merkle field_mul field_linear reg_file ecc_engine scalar_unit \
	record_parser crc32 instr_check image_check reg_block request_hasher card
K ?= 1
LANES ?=
synth:
	@scripts/deps synth
	@for block in $(BLOCK); do K=$(K) LANES=$(LANES) scripts/synth $$block || exit 1; done

build: deps
	$(CARGO) build --locked --release --workspace

fmt:
	$(CARGO) fmt --all

clippy: deps
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

deps:
	@scripts/deps
