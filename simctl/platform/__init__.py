"""The simulated platform: sync, router, logplex, dyno and drain services (domain.md)."""
