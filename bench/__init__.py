"""Load-test harness (see bench/README.md): data generator, bare reference app, partner servers, runner."""
