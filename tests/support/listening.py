"""Which addresses processes listen on, read from /proc (no tool to install): each
process's socket inodes matched against the kernel's TCP and UDP tables."""
import ipaddress
import os
import socket
import struct
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

TCP_LISTEN = '0A'
TABLES = (('tcp', 'tcp', 4), ('tcp6', 'tcp', 6), ('udp', 'udp', 4), ('udp6', 'udp', 6))


def socket_inodes(pid: int) -> Set[str]:
    inodes = set()
    try:
        for fd in Path(f'/proc/{pid}/fd').iterdir():
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith('socket:['):
                inodes.add(target[8:-1])
    except OSError:  # the process is gone
        pass
    return inodes


def _address(hex_address: str, version: int) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = struct.unpack(f'<{len(raw) // 4}I', raw)
    packed = struct.pack(f'>{len(words)}I', *words)
    return socket.inet_ntop(socket.AF_INET if version == 4 else socket.AF_INET6, packed)


def listening(pids: Iterable[int]) -> List[Tuple[int, str, str, int]]:
    """(pid, protocol, address, port) of every TCP socket in LISTEN and every bound UDP
    socket that the processes ``pids`` hold."""
    owner: Dict[str, int] = {}
    for pid in pids:
        for inode in socket_inodes(pid):
            owner[inode] = pid
    found = []
    for table, protocol, version in TABLES:
        try:
            lines = Path(f'/proc/net/{table}').read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in owner or (protocol == 'tcp' and state != TCP_LISTEN):
                continue
            hex_address, hex_port = local.split(':')
            found.append((owner[inode], protocol, _address(hex_address, version), int(hex_port, 16)))
    return found


def beyond_loopback(sockets: Iterable[Tuple[int, str, str, int]]) -> List[Tuple[int, str, str, int]]:
    """The sockets reachable from another machine: bound to an address that is not loopback
    (0.0.0.0 and :: included). An IPv4 loopback mapped into IPv6 counts as loopback."""
    out = []
    for entry in sockets:
        address = ipaddress.ip_address(entry[2])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_loopback:
            out.append(entry)
    return out
