"""FileTransferUser: signs in, uploads attachments (HARNESS_FILE_SIZES, default mostly small, up to 10 MB),
downloads its own and other members' files, opens signed URLs (`STORAGE upload|download|sign|fetch signed`,
byte sizes in context). Run alone:

    locust -f locustfiles/files.py --headless -u 4 -r 4 -t 20s --host http://127.0.0.1:54320
"""

from __future__ import annotations

from locust import between, task

from harness.loadgen.plugin import ProfileShape  # noqa: F401  (wires the harness: result, CPU samples, load shape)
from harness.scenarios import register
from harness.scenarios.base import AccountUser
from harness.scenarios.files import Files, files_for

register()


class FileTransferUser(AccountUser):
    wait_time = between(1, 4)

    def on_start(self) -> None:
        super().on_start()
        self.files: Files = files_for(self)

    @task(3)
    def upload(self) -> None:
        if self.signed_in():
            self.files.upload()

    @task(3)
    def download(self) -> None:
        if self.signed_in() and self.files.download() is None:
            self.files.upload()  # nothing to download yet

    @task(1)
    def signed_download(self) -> None:
        if self.signed_in():
            self.files.signed_download()
