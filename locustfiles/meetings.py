"""MeetingUser: signs in, gets a join token (minted, or from the `livekit-token` function), joins `/rtc`, stays
HARNESS_MEETING_STAY_S pinging (`MEETING meeting.join`, `MEETING meeting.rtt`), leaves. Run alone:

    HARNESS_MEETING_STAY_S=5 locust -f locustfiles/meetings.py --headless -u 4 -r 4 -t 20s \\
        --host http://127.0.0.1:54320
"""

from __future__ import annotations

from locust import between, task

from harness.loadgen.plugin import ProfileShape  # noqa: F401  (wires the harness: result, CPU samples, load shape)
from harness.scenarios import register
from harness.scenarios.base import AccountUser
from harness.scenarios.meeting import Meeting, meeting_for

register()


class MeetingUser(AccountUser):
    wait_time = between(2, 5)

    def on_start(self) -> None:
        super().on_start()
        self.meeting: Meeting = meeting_for(self)

    def on_stop(self) -> None:
        if hasattr(self, "meeting"):
            self.meeting.close()
        super().on_stop()

    @task
    def meet(self) -> None:
        if self.signed_in():
            self.meeting.meet()
