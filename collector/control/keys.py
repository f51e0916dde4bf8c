"""The collector's command signing key: `citygate-collector command-key init|show`, and loading it for `serve`.

The private key (Ed25519, PKCS#8 PEM, mode 0600) stays on the collector; several collector
instances share the one file. Each gateway's config carries the public key
(`[mqtt] command_key`), so a gateway runs only commands this key signed
(citygate_wire.mqtt.authenticate_command). `init` never overwrites a key: every gateway would
refuse commands until its config got the new public key.
"""

from __future__ import annotations

import stat
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from citygate_wire.mqtt import public_key_text
from collector.tokens import check_writable, write_private

KEY_ENV = "CITYGATE_COMMAND_KEY_FILE"
#: A PEM Ed25519 key is 119 bytes; reading stops well past it.
MAX_KEY_BYTES = 16 * 1024


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and the reason."""


def new_key_pem() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return key, pem


def load_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in `path`; KeyFileError if it cannot be read, is not one, or others may read it."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_KEY_BYTES + 1)
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from None
    if mode & 0o077:
        # a signing key others can read lets them command every gateway
        raise KeyFileError(f"{path}: mode {mode:04o}, readable by others than its owner: chmod 600")
    if len(raw) > MAX_KEY_BYTES:
        raise KeyFileError(f"{path}: larger than {MAX_KEY_BYTES} bytes, not a key file")
    try:
        key = load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, expected an Ed25519 key (`command-key init`)")
    return key


key_file_option = click.option(
    "--key-file", required=True, envvar=KEY_ENV, type=click.Path(dir_okay=False, path_type=Path),
    help=f"The collector's private command key (PEM, mode 600); default ${KEY_ENV}.",
)


@click.group("command-key")
def command_key() -> None:
    """The key that signs commands; gateways run only what it signed."""


@command_key.command("init")
@key_file_option
def init(key_file: Path) -> None:
    """Create the signing key (mode 600) and print the public key for the gateways' configs."""
    if key_file.exists():
        raise click.ClickException(f"{key_file} exists: a new key would make every gateway refuse commands "
                                   "until its config has the new public key; remove the file first to replace it")
    unwritable = check_writable(key_file)
    if unwritable:
        raise click.BadParameter(unwritable, param_hint="--key-file")
    key, pem = new_key_pem()
    write_private(key_file, pem, 0o600)
    click.echo(f"signing key written to {key_file}; put this line in the [mqtt] section of every gateway:", err=True)
    click.echo(f'command_key = "{public_key_text(key.public_key())}"')


@command_key.command("show")
@key_file_option
def show(key_file: Path) -> None:
    """Print the public key line of an existing signing key (for a gateway's [mqtt] section)."""
    try:
        key = load_key(key_file)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f'command_key = "{public_key_text(key.public_key())}"')
