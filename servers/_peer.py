"""Which local user is on the other end of a loopback TCP connection (Linux: /proc/net/tcp).

TCP has no SO_PEERCRED, but on Linux every socket of this network namespace is listed in
/proc/net/tcp (tcp6 for IPv6) with the uid that created it. The client's end of a connection
is the row whose local address is the client's address and whose remote address is ours.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

__all__ = ["PROC_NET", "peer_uid", "peer_lookup_available"]

PROC_NET = Path("/proc/net")
_TABLES = ("tcp", "tcp6")


def peer_lookup_available() -> bool:
    """Whether this system lists its TCP sockets with their owners (Linux with /proc)."""
    return (PROC_NET / "tcp").is_file()


def peer_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid owning the client end of the connection `client` -> `server`; None if unknown.

    Both are (address, port) as an ASGI server reports them. None when no such socket is
    listed: the connection is gone, or it does not come from this machine's network namespace.
    """
    client_forms, server_forms = _forms(*client), _forms(*server)
    for table in _TABLES:
        try:
            text = (PROC_NET / table).read_text()
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[9] == "0":  # inode 0: an orphan, no owner left
                continue
            if fields[1] in client_forms and fields[2] in server_forms:
                return int(fields[7])
    return None


def _forms(host: str, port: int) -> set[str]:
    """How /proc/net/tcp{,6} write this address and port: 32-bit words in host byte order."""
    address = ipaddress.ip_address(host.strip("[]"))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 client of a dual-stack socket
    packed = [address.packed]
    if isinstance(address, ipaddress.IPv4Address):
        packed.append(ipaddress.IPv6Address(f"::ffff:{address}").packed)
    return {f"{_words(raw)}:{port:04X}" for raw in packed}


def _words(raw: bytes) -> str:
    count = len(raw) // 4
    return "".join(f"{word:08X}" for word in struct.unpack(f"={count}I", raw))
