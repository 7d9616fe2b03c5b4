"""WebUser: loads the web app through the edge with Accept-Encoding (HARNESS_ACCEPT_ENCODING) and checks its
compression, cache and security headers (`WEB <asset>`; a wrong header is a failure naming it). No account.
Run alone:

    locust -f locustfiles/web.py --headless -u 4 -r 4 -t 20s --host http://127.0.0.1:54320
"""

from __future__ import annotations

from locust import User, between, task

from harness.loadgen.plugin import ProfileShape  # noqa: F401  (wires the harness: result, CPU samples, load shape)
from harness.scenarios import register
from harness.scenarios.base import run_state
from harness.scenarios.web import WebShell, web_shell_for

register()


class WebUser(User):
    wait_time = between(2, 6)

    def on_start(self) -> None:
        state = run_state(self)
        self.shell: WebShell = web_shell_for(self, state, next(state.visitors))
        self.shell.load()  # a browser's first visit fills its cache; later visits mostly revalidate

    def on_stop(self) -> None:
        if hasattr(self, "shell"):
            self.shell.close()

    @task(1)
    def first_visit(self) -> None:
        """A visitor with an empty cache (new device, cleared cache): the whole 2 MB shell again."""
        self.shell.load()

    @task(9)
    def return_visit(self) -> None:
        """Hashed assets are immutable, so a returning browser only revalidates the un-hashed entry points."""
        self.shell.revalidate()
