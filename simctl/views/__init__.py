"""What on-call looks at: `simctl dashboard` (terminal) and `simctl web` (browser).

Both read only Prometheus's HTTP API v1 (the stack's monitor, or any Prometheus) and the
routers' `GET /admin/logs`; docs/dashboards.md describes the panels.
"""
