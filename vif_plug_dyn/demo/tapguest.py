"""A stand-in guest NIC on a tap: answers ARP and ICMP echo for one IP.

Run inside the tap's namespace (the tap is found by name there)::

    ip netns exec NS python3 -m \
        vif_plug_dyn.demo.tapguest \
        --tap vpd0123 --mac 52:54:00:00:00:01 --ip 192.0.2.10

It attaches to the existing tap exactly as QEMU does (TUNSETIFF on
/dev/net/tun), prints ``READY`` and then answers until killed, printing a
``RX n`` line every time it answers. This lets functional tests prove that
frames really cross a tap-based endpoint without booting a guest.
"""

import argparse
import fcntl
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def _answer(frame: bytes, mac: bytes, ip: bytes) -> bytes | None:
    if len(frame) < 14:
        return None
    dst, src, ethertype = frame[:6], frame[6:12], frame[12:14]
    if ethertype == b'\x08\x06' and len(frame) >= 42:
        op = frame[20:22]
        sender_mac, sender_ip = frame[22:28], frame[28:32]
        target_ip = frame[38:42]
        if op == b'\x00\x01' and target_ip == ip:
            arp = (b'\x00\x01\x08\x00\x06\x04\x00\x02' + mac + ip +
                   sender_mac + sender_ip)
            return src + mac + b'\x08\x06' + arp
        return None
    if ethertype != b'\x08\x00' or dst != mac:
        return None
    ihl = (frame[14] & 0x0f) * 4
    header = frame[14:14 + ihl]
    if len(header) < 20 or header[9] != 1 or header[16:20] != ip:
        return None
    icmp = frame[14 + ihl:]
    if not icmp or icmp[0] != 8:
        return None
    reply_icmp = b'\x00\x00\x00\x00' + icmp[4:]
    reply_icmp = (reply_icmp[:2] + struct.pack('!H', _checksum(reply_icmp)) +
                  reply_icmp[4:])
    reply_header = bytearray(header)
    reply_header[12:16], reply_header[16:20] = header[16:20], header[12:16]
    reply_header[10:12] = b'\0\0'
    reply_header[10:12] = struct.pack('!H', _checksum(bytes(reply_header)))
    return src + mac + b'\x08\x00' + bytes(reply_header) + reply_icmp


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--tap', required=True)
    parser.add_argument('--mac', required=True)
    parser.add_argument('--ip', required=True)
    args = parser.parse_args()
    mac = bytes.fromhex(args.mac.replace(':', ''))
    ip = socket.inet_aton(args.ip)
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', args.tap.encode(),
                                           IFF_TAP | IFF_NO_PI))
    print('READY', flush=True)
    answered = 0
    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            frame = os.read(fd, 65536)
        except OSError:
            # NOTE(vpd): the tap was deleted under us: the guest's NIC is
            # gone, and so is this stand-in.
            return 0
        reply = _answer(frame, mac, ip)
        if reply is not None:
            os.write(fd, reply)
            answered += 1
            print('RX %d' % answered, flush=True)


if __name__ == '__main__':
    sys.exit(main())
