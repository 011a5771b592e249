"""Announce a new sandbox's address on the Pod network: a gratuitous ARP (stdlib only).

Run by the pod runner as ``python -I -S garp.py NETNS_PATH INTERFACE IP`` once a sandbox is
made: it enters the sandbox's network namespace and broadcasts, from ``INTERFACE``, an ARP
request and an ARP reply that both say "``IP`` is at this interface's MAC", as a CNI plugin
does for a new Pod. A Pod IP is reused once its Pod is gone; every neighbour that still
remembers the old sandbox's MAC for it (the host, and each other Pod that talked to the old
one) replaces the entry on hearing this, instead of sending to a MAC nobody has until the
entry expires (~30-45 s). Linux updates an existing entry from a gratuitous ARP whatever
``arp_accept`` says; it creates none.

Exit status 0 when both frames were sent; 1 with a message on stderr otherwise.
"""

import ctypes
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
ARP_REQUEST = 1
ARP_REPLY = 2


def frame(mac: bytes, ip: str, operation: int) -> bytes:
    """An Ethernet broadcast carrying a gratuitous ARP ``operation`` for ``ip`` at ``mac``:
    sender and target address are both ``ip``."""
    address = socket.inet_aton(ip)
    target_mac = BROADCAST if operation == ARP_REPLY else b"\x00" * 6
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, operation)
    arp += mac + address + target_mac + address
    return BROADCAST + mac + struct.pack("!H", ETH_P_ARP) + arp


def announce(netns: str, interface: str, ip: str) -> None:
    """Enter ``netns`` (a path under /run/netns) and send both frames from ``interface``."""
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {netns}: {os.strerror(errno)}")
    finally:
        os.close(fd)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((interface, ETH_P_ARP))
        mac = sock.getsockname()[4]
        for operation in (ARP_REQUEST, ARP_REPLY):
            sock.send(frame(mac, ip, operation))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: garp.py NETNS_PATH INTERFACE IP", file=sys.stderr)
        return 1
    try:
        announce(*argv)
    except OSError as error:
        print(f"garp: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
