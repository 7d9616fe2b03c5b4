"""MessagingUser: signs in, subscribes to its conversations, sends, reads history, types; its receivers record
end-to-end delivery (`DELIVERY message.delivery`). Run alone:

    locust -f locustfiles/messaging.py --headless -u 8 -r 4 -t 20s --host http://127.0.0.1:54320
"""

from __future__ import annotations

from locust import between, task

from harness.loadgen.plugin import ProfileShape  # noqa: F401  (wires the harness: result, CPU samples, load shape)
from harness.scenarios import register
from harness.scenarios.base import AccountUser
from harness.scenarios.chat import Chat, chat_for

register()


class MessagingUser(AccountUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        super().on_start()
        self.chat: Chat = chat_for(self)
        if self.signed_in():
            self.chat.subscribe()

    def on_stop(self) -> None:
        if hasattr(self, "chat"):
            self.chat.close()
        super().on_stop()

    def ready(self) -> bool:
        """Signed in and subscribed (each retried here, so an outage shows as counted failures, then recovery)."""
        return self.signed_in() and self.chat.subscribe()

    @task(4)
    def send_message(self) -> None:
        if self.ready():
            self.chat.send()

    @task(2)
    def read_history(self) -> None:
        if self.ready():
            self.chat.read_history()

    @task(1)
    def typing(self) -> None:
        if self.ready():
            self.chat.type()
