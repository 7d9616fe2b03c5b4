"""GPG encryption of a backup bundle (python-gnupg driving Debian's `gpg`), file to file, never through memory.

    Keyring(home).recipients(["ops@example.com", FPR])   each must name exactly one public key, else ConfigError
    keyring.encrypt(bundle, out, fingerprints)           binary OpenPGP, no compression (pg_dump compressed it)
    keyring.decrypt(gpg_file, out, passphrase)           DecryptError saying why (no secret key, bad passphrase...)

Recipients come from --recipient or HARNESS_BACKUP_RECIPIENTS (comma-separated); the keyring from --gnupg-home or
GNUPGHOME (else ~/.gnupg). Keys are used as the operator imported them (`always_trust`): choosing the keyring is
the trust decision. The passphrase of a protected secret key comes from HARNESS_BACKUP_PASSPHRASE and goes to gpg
on its stdin pipe (python-gnupg's loopback pinentry), never on a command line.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import gnupg

from harness.errors import ConfigError
from harness.model.target_config import Secret

RECIPIENTS_VARIABLE = "HARNESS_BACKUP_RECIPIENTS"
PASSPHRASE_VARIABLE = "HARNESS_BACKUP_PASSPHRASE"


class DecryptError(Exception):
    """The bundle could not be decrypted; the message says why, in gpg's words."""


def recipients_from(values: Sequence[str] | None) -> list[str]:
    given = list(values or [])
    if not given:
        given = [v.strip() for v in os.environ.get(RECIPIENTS_VARIABLE, "").split(",") if v.strip()]
    if not given:
        raise ConfigError(
            f"no GPG recipient: give --recipient KEY (an email or fingerprint in the keyring; repeatable) or set "
            f"{RECIPIENTS_VARIABLE}=a@example.com,b@example.com"
        )
    return given


def passphrase_from_env() -> Secret | None:
    value = os.environ.get(PASSPHRASE_VARIABLE)
    return Secret(value) if value else None


class Keyring:
    def __init__(self, home: Path | None = None) -> None:
        if shutil.which("gpg") is None:
            raise ConfigError("gpg is not installed: install Debian's gnupg (./scripts/install does)")
        if home is not None and not home.is_dir():
            raise ConfigError(f"--gnupg-home {home}: no such directory; give the GnuPG home holding the backup keys")
        self.home = home
        self._gpg = gnupg.GPG(gnupghome=str(home) if home else None)

    def describe(self) -> str:
        return str(self.home or os.environ.get("GNUPGHOME") or "~/.gnupg")

    def recipients(self, names: Sequence[str]) -> list[str]:
        """The fingerprint of each recipient's public key; ConfigError when one is missing or ambiguous."""
        fingerprints: list[str] = []
        for name in names:
            keys = self._gpg.list_keys(keys=[name])
            if len(keys) != 1:
                found = "no public key" if not keys else f"{len(keys)} keys"
                raise ConfigError(
                    f"GPG recipient {name!r}: {found} in the keyring {self.describe()}; import the backup key "
                    "(gpg --import) or name it by its full fingerprint"
                )
            fingerprints.append(str(keys[0]["fingerprint"]))
        return fingerprints

    def encrypt(self, source: Path, out: Path, fingerprints: Sequence[str]) -> None:
        with source.open("rb") as stream:
            try:
                result = self._gpg.encrypt_file(
                    stream, list(fingerprints), output=str(out), armor=False, always_trust=True,
                    extra_args=["--compress-algo", "none"],
                )  # fmt: skip
            except OSError as exc:  # gpg exited early (its stdin pipe broke)
                raise ConfigError(f"gpg could not encrypt the backup ({exc}); check the keyring") from None
        if not result.ok:
            raise ConfigError(f"gpg could not encrypt the backup: {result.status} {_last_line(result.stderr)}")

    def decrypt(self, source: Path, out: Path, passphrase: Secret | None) -> None:
        # gpg reads the file itself (its name last on the command line), not from python-gnupg's stdin pipe: when
        # gpg stops early (a protected key, garbage) python-gnupg would raise a broken pipe and lose gpg's reason.
        # Loopback pinentry (python-gnupg sets it itself with a passphrase): a protected key without one fails at
        # once instead of launching a pinentry on whatever terminal there is (none under cron).
        loopback = [] if passphrase else ["--pinentry-mode", "loopback"]
        try:
            result = self._gpg.decrypt_file(
                io.BytesIO(b""), output=str(out), passphrase=passphrase.reveal() if passphrase else None,
                extra_args=[*loopback, "--", str(source)],
            )  # fmt: skip
        except ValueError:  # python-gnupg refuses a passphrase with a line break (gpg reads one line)
            raise DecryptError(
                f"cannot decrypt: {PASSPHRASE_VARIABLE} holds a line break; gpg reads one line"
            ) from None
        if not result.ok:
            stderr = result.stderr or ""
            hint = ""
            if "bad passphrase" in stderr.lower():
                hint = f": wrong passphrase for the secret key (set {PASSPHRASE_VARIABLE})"
            elif "MISSING_PASSPHRASE" in stderr or ("NEED_PASSPHRASE" in stderr and passphrase is None):
                hint = f": the secret key is protected; set {PASSPHRASE_VARIABLE}"
            elif "NO_SECKEY" in stderr:
                hint = f": the keyring {self.describe()} holds none of the secret keys it was encrypted to"
            raise DecryptError(f"cannot decrypt: {result.status or 'gpg failed'}{hint}")


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.startswith("gpg:")]
    return f"({lines[-1]})" if lines else ""
