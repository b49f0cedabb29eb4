"""The format rules of CreateInstances (spec instances.md §0, §6, README §7), as pure functions:
name patterns, passwords, SSH keys, RAID, partitions and NIC names. Each raises the spec's error
for the first rule a value breaks."""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from zbmc import errors

MAX_NAME = 64
MAX_AMOUNT = 100
_PATTERN = re.compile(r"\[(\d*),(\d*)\]")
NAME_CHARS = re.compile(r"^[A-Za-z0-9.\-_]+$")
HOSTNAME_CHARS = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?$")

# spec Q-I11: the documented list `1~!@$^*-_=+` minus the leading `1` (a typo: it is a digit)
PASSWORD_SPECIALS = frozenset("~!@$^*-_=+")
_PASSWORD_ALLOWED = frozenset(string.ascii_letters + string.digits) | PASSWORD_SPECIALS

SSH_KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-ed25519",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
MAX_SSH_KEYS = 5

# Disks a RAID level needs: (minimum, multiple of)
RAID_DISKS = {0: (1, 1), 1: (2, 2), 5: (3, 1), 10: (4, 2)}

LINUX_FS = ("ext2", "ext3", "ext4")
WINDOWS_FS = ("NTFS",)
WINDOWS_DRIVES = "CDEFGH"
_NIC = re.compile(r"^[A-Za-z][A-Za-z0-9]{3,9}$")


class BadPattern(ValueError):
    pass


def expand(template: str, amount: int) -> list[str]:
    """spec Q12: each ``[begin,bits]`` becomes ``begin + i`` zero-padded to ``bits`` digits, for
    i in 0..amount-1 (begin 0-99999, default 0; bits 1-6, default 6); other text is kept."""
    parts: list[tuple[int, int]] = []
    for match in _PATTERN.finditer(template):
        begin = int(match.group(1)) if match.group(1) else 0
        bits = int(match.group(2)) if match.group(2) else 6
        if not (0 <= begin <= 99999 and 1 <= bits <= 6):
            raise BadPattern(match.group(0))
        parts.append((begin, bits))
    if not parts:
        return [template] * amount
    pieces = _PATTERN.split(template)[:: _PATTERN.groups + 1]  # the literal text around them
    names = []
    for i in range(amount):
        name = pieces[0]
        for (begin, bits), after in zip(parts, pieces[1:], strict=True):
            name += str(begin + i).zfill(bits) + after
        names.append(name)
    return names


def instance_names(template: str, amount: int) -> list[str]:
    try:
        names = expand(template, amount)
    except BadPattern:
        raise errors.InstanceNameExceed() from None
    for name in names:
        if not name or len(name) > MAX_NAME or not NAME_CHARS.match(name):
            raise errors.InstanceNameExceed()
    return names


def hostnames(template: str, amount: int) -> list[str]:
    try:
        names = expand(template, amount)
    except BadPattern:
        raise errors.HostnameMalformed(hostname=template) from None
    for name in names:
        if len(name) > MAX_NAME:
            raise errors.HostnameExceed(hostname=name)
        if not HOSTNAME_CHARS.match(name):
            raise errors.HostnameMalformed(hostname=name)
    return names


def check_password(password: str) -> None:
    ok = (
        8 <= len(password) <= 16
        and set(password) <= _PASSWORD_ALLOWED
        and any(c.isupper() for c in password)
        and any(c.islower() for c in password)
        and any(c.isdigit() for c in password)
        and any(c in PASSWORD_SPECIALS for c in password)
    )
    if not ok:
        raise errors.PasswordMalformed()


def check_login(password: str | None, key_id: str | None, ssh_keys: Sequence[str] | None) -> None:
    given = [value for value in (password, key_id, ssh_keys) if value]
    if len(given) > 1:
        raise errors.LoginConflict()
    if password:
        check_password(password)
    if ssh_keys:
        check_ssh_keys(ssh_keys)


def check_ssh_keys(keys: Sequence[str]) -> None:
    """OpenSSH public keys (``type base64 [comment]``) whose blob names the same type."""
    if len(keys) > MAX_SSH_KEYS:
        raise errors.SshKeyMalformed(detail=f"at most {MAX_SSH_KEYS} sshKeys are allowed")
    seen: set[tuple[str, str]] = set()
    for key in keys:
        fields = key.strip().split()
        if len(fields) < 2 or fields[0] not in SSH_KEY_TYPES:
            raise errors.SshKeyMalformed(detail="an sshKeys entry is not an OpenSSH public key")
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except (binascii.Error, ValueError):
            raise errors.SshKeyMalformed(detail="an sshKeys entry is not valid base64") from None
        length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
        if blob[4 : 4 + length].decode("latin-1") != fields[0]:
            raise errors.SshKeyMalformed(detail="an sshKeys entry's key does not match its type")
        if (fields[0], fields[1]) in seen:
            raise errors.SshKeyDuplicate()
        seen.add((fields[0], fields[1]))


@dataclass(frozen=True)
class Model:
    """What the RAID and partition rules need of an instance type."""

    instance_type_id: str
    support_raids: tuple[int, ...]
    disk_sizes: tuple[int, ...]  # GB of disk 1..n


def disk_sizes(disks: Sequence[dict[str, int]]) -> tuple[int, ...]:
    """diskInfo.disks in order, one entry per disk (spec README §7: 880x2, 220x2 → 1..4)."""
    return tuple(d["diskSize"] for d in disks for _ in range(d["diskCount"]))


def _level_fits(level: int, count: int) -> bool:
    minimum, multiple = RAID_DISKS.get(level, (1, 1))
    return count >= minimum and count % multiple == 0


def _volume(level: int, sizes: Sequence[int]) -> int:
    if level == 0:
        return sum(sizes)
    if level == 5:
        return sum(sizes) - max(sizes)
    return sum(sizes) // 2  # RAID 1 and 10 mirror


def check_raid(model: Model, raid_type: int | None, custom: Sequence[tuple[int, list[int]]]) -> int:
    """Validate a RAID config; return the size in GB of the system volume (the first one)."""
    count = len(model.disk_sizes)
    if raid_type is not None and custom:
        raise errors.RaidFastCustomConflict()
    if raid_type is not None:
        if raid_type not in model.support_raids:
            raise errors.RaidNotSupport(
                instance_type_id=model.instance_type_id, raid_type=raid_type
            )
        if not _level_fits(raid_type, count):
            raise errors.RaidDiskMismatch(
                detail=f"RAID {raid_type} cannot be built from the {count} disks of "
                f"instance type `{model.instance_type_id}`."
            )
        return _volume(raid_type, model.disk_sizes)
    if not custom:
        return model.disk_sizes[0] if model.disk_sizes else 0
    used: set[int] = set()
    first = 0
    for index, (level, sequence) in enumerate(custom):
        if level not in model.support_raids:
            raise errors.RaidNotSupport(instance_type_id=model.instance_type_id, raid_type=level)
        for disk in sequence:
            if not 1 <= disk <= count:
                raise errors.RaidDiskSequenceRange(disk=disk, count=count)
            if disk in used:
                raise errors.RaidDiskSequenceDuplicate(disk=disk)
            used.add(disk)
        if not sequence or list(sequence) != list(range(sequence[0], sequence[0] + len(sequence))):
            raise errors.RaidDiskDisorder(sequence=list(sequence))
        if not _level_fits(level, len(sequence)):
            raise errors.RaidDiskMismatch(
                detail=f"RAID {level} cannot be built from the {len(sequence)} disks "
                f"{list(sequence)}."
            )
        volume = _volume(level, [model.disk_sizes[d - 1] for d in sequence])
        if index == 0:
            first = volume
    return first


def check_partitions(
    partitions: Sequence[tuple[str, str, int]],
    os_type: str | None,
    catalog: str | None,
    capacity: int,
) -> None:
    """(fsPath, fsType, size GB) laid out on the system volume of ``capacity`` GB; the last
    partition also takes what is left (spec README §7)."""
    if os_type is None:
        raise errors.PartitionImageNotSet()
    if catalog == "esxi":
        raise errors.PartitionMalformed(detail="ESXi images do not take custom partitions.")
    windows = os_type == "windows"
    allowed = WINDOWS_FS if windows else LINUX_FS
    required = "C" if windows else "/"
    paths: list[str] = []
    for path, fs_type, size in partitions:
        if windows:
            if len(path) != 1 or path not in WINDOWS_DRIVES:
                raise errors.PartitionMalformed(
                    detail=f"fsPath `{path}` must be a drive letter C to H on Windows."
                )
        elif not path.startswith("/") or "//" in path or any(c.isspace() for c in path):
            raise errors.PartitionMalformed(detail=f"fsPath `{path}` must be an absolute path.")
        if fs_type not in allowed:
            raise errors.PartitionNoType(
                fs_type=fs_type, os_type=os_type, allowed="/".join(allowed)
            )
        if size < 1:
            raise errors.PartitionMalformed(detail=f"size of `{path}` must be at least 1 GB.")
        if path in paths:
            raise errors.PartitionDuplicateFilePath(path=path)
        paths.append(path)
    if required not in paths:
        raise errors.PartitionMissingRequiredFilePath(path=required)
    if paths[0] != required:
        raise errors.PartitionInvalidOrder(detail=f"the first partition must be `{required}`.")
    if windows and paths != sorted(paths):
        raise errors.PartitionInvalidOrder(detail="Windows drive letters must be in order.")
    needed = sum(size for _, _, size in partitions)
    if needed > capacity:
        raise errors.PartitionSizeNotFull(needed=needed, capacity=capacity)


def nic_names(wan: str | None, lan: str | None, is_ha: bool) -> tuple[str, str]:
    """The NIC names to use, defaults for the omitted ones (non-HA wan0/lan0, HA bond0/bond1)."""
    wan = wan if wan is not None else ("bond0" if is_ha else "wan0")
    lan = lan if lan is not None else ("bond1" if is_ha else "lan0")
    for name, forbidden in ((wan, "lan"), (lan, "wan")):
        if not _NIC.match(name) or name.lower().startswith(forbidden):
            raise errors.NicNameMalformed(name=name)
    if wan == lan:
        raise errors.NicNameConflict()
    return wan, lan
