"""The simulated platform: sync, router, logplex, dyno and drain services (docs/platform.md)."""
