"""The stack's monitor: scrapes every service, keeps a bounded history and evaluates alert
rules with Prometheus semantics, behind Prometheus's HTTP API (docs/alerts.md)."""
