"""Every user class, weighted: the profile's [scenarios] in a harness run, else HARNESS_SCENARIO_WEIGHTS, else
60 messaging / 5 meetings / 10 files / 25 web. Run alone:

    locust -f locustfiles/mixed.py --headless -u 20 -r 5 -t 30s --host http://127.0.0.1:54320
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling locustfiles, however Locust was started

from files import FileTransferUser
from meetings import MeetingUser
from messaging import MessagingUser
from web import WebUser

from harness.loadgen.env import PROFILE
from harness.loadgen.plugin import ProfileShape  # noqa: F401  (the harness applies profile weights itself)
from harness.scenarios.settings import ScenarioSettings


def _apply_env_weights() -> None:
    """HARNESS_SCENARIO_WEIGHTS (or the default mix) as class weights; a class weighted 0 leaves the module.

    A function, not a module-level loop: Locust runs every User class it finds in this module's namespace, and a
    loop variable left there (the last class again) made Locust see WebUser twice and refuse to start."""
    weights = ScenarioSettings.from_env().weights
    for cls in (MessagingUser, MeetingUser, FileTransferUser, WebUser):
        cls.weight = weights.get(cls.__name__, 0)
        if cls.weight == 0:
            del globals()[cls.__name__]


if not os.environ.get(PROFILE):  # in a harness run the plugin applies the profile's [scenarios] instead
    _apply_env_weights()
