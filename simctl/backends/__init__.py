"""Backends run the stack definition: `local` (child processes) and `compose` (Docker)."""
