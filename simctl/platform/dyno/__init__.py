"""The dyno service: a small web app with run-time switchable misbehaviour.

    app.py        DynoService (the web app, /control, logs, metrics)
    behaviour.py  the behaviours /control accepts, validated
    memory.py     memory growth for R14 drills
    command.py    the click command ``python -m simctl.platform dyno``
"""

from simctl.platform.dyno.app import DynoService
from simctl.platform.dyno.behaviour import Behaviour, BehaviourError, parse
from simctl.platform.dyno.command import command

__all__ = ["Behaviour", "BehaviourError", "DynoService", "command", "parse"]
