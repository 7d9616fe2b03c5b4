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

from harness.loadgen.plugin import ProfileShape  # noqa: F401  (the harness applies profile weights itself)
from harness.loadgen.env import PROFILE
from harness.scenarios.settings import ScenarioSettings

if not os.environ.get(PROFILE):  # in a harness run the plugin applies the profile's [scenarios] instead
    _weights = ScenarioSettings.from_env().weights
    for _cls in (MessagingUser, MeetingUser, FileTransferUser, WebUser):
        _cls.weight = _weights.get(_cls.__name__, 0)
        if _cls.weight == 0:
            del globals()[_cls.__name__]  # Locust runs every User class in this module's namespace
