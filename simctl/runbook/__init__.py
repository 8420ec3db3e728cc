"""Markdown runbooks: ``parser.parse_runbook``, ``check.check_runbook``, ``steps.run_step``.

This module imports nothing, so its submodules can import each other freely.
"""
