"""simctl: incident simulation and runbook rehearsal on a miniature HTTP routing stack."""

__version__ = "0.1.0"
