"""One rtnetlink socket that pipelines requests (runs in the daemon).

Requests are queued with :meth:`RtnlSocket.queue` and sent, many per
``send()``, by :meth:`RtnlSocket.flush`, which then collects one answer
per request. Answers are matched by sequence number.

NOTE(vpd): rtnetlink handles a request inside the sender's ``send()``
call, so by the time ``send()`` returns the acks of that chunk are
already queued on the socket; reading them chunk by chunk costs no extra
waiting and keeps the receive buffer from overflowing (a lost ack would
leave a request's fate unknown).
"""

import errno as errno_mod
import os
import socket
from collections.abc import Callable
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import nlmsg

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
SO_RCVBUFFORCE = 33
#: Bytes of requests sent per ``send()``.
CHUNK = 32 * 1024
_RCVBUF = 4 * 1024 * 1024
_RECV = 256 * 1024

#: One answer: (cookie, errno (0 = success), kernel message, payload).
Answer = tuple[Any, int, str | None, bytes | None]


class RtnlSocket:
    """A NETLINK_ROUTE socket with pipelined requests.

    :param sock: an already bound socket (tests); a new one by default.
    """

    def __init__(self, sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.socket(socket.AF_NETLINK,
                                 socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                 NETLINK_ROUTE)
            try:
                _configure(sock)
                sock.bind((0, 0))
            except OSError:
                sock.close()
                raise
        self.sock = sock
        self._seq = 0
        self._pending: list[tuple[int, bytes, Any]] = []
        # NOTE(vpd): one receive buffer for the socket's life. recv(n)
        # would allocate n bytes per answer; above glibc's mmap threshold
        # that is an mmap + page faults + munmap each time (measured: 1000
        # lookups 0.2 s instead of 0.02 s).
        self._buf = bytearray(_RECV)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> 'RtnlSocket':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_seq(self) -> int:
        """Return a fresh sequence number."""
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    @property
    def pending(self) -> int:
        """How many queued requests :meth:`flush` has not sent yet."""
        return len(self._pending)

    def queue(self, build: Callable[[int], bytes], cookie: Any) -> None:
        """Queue a request.

        :param build: called with a sequence number, returns the message.
        :param cookie: handed back with the request's answer.
        """
        seq = self.next_seq()
        self._pending.append((seq, build(seq), cookie))

    def flush(self) -> list[Answer]:
        """Send every queued request, many per ``send()``, and collect
        one answer for each.

        :returns: answers in request order.
        :raises OSError: the socket failed (not a request: those errors
            are answers).
        """
        pending, self._pending = self._pending, []
        answers: list[Answer] = []
        start = 0
        while start < len(pending):
            size, stop = 0, start
            while stop < len(pending) and (
                    stop == start or size + len(pending[stop][1]) <= CHUNK):
                size += len(pending[stop][1])
                stop += 1
            chunk = pending[start:stop]
            self.sock.sendall(b''.join(item[1] for item in chunk))
            answers.extend(self._collect(chunk))
            start = stop
        return answers

    def _collect(self, chunk: list[tuple[int, bytes, Any]]
                 ) -> list[Answer]:
        waiting = {seq: i for i, (seq, _msg, _cookie) in enumerate(chunk)}
        found: list[Answer | None] = [None] * len(chunk)
        while waiting:
            buf = self._recv()
            for mtype, flags, seq, start, end in nlmsg.messages(buf):
                slot = waiting.pop(seq, None)
                if slot is None:
                    continue
                cookie = chunk[slot][2]
                if mtype == nlmsg.NLMSG_ERROR:
                    err, text = nlmsg.parse_error(buf, start, end, flags)
                    found[slot] = (cookie, err, text, None)
                else:
                    found[slot] = (cookie, 0, None, bytes(buf[start:end]))
        return [a for a in found if a is not None]

    def _recv(self) -> memoryview:
        size = self.sock.recv_into(self._buf)
        return memoryview(self._buf)[:size]

    def request(self, build: Callable[[int], bytes]) -> Answer:
        """Send one request now and return its answer (pending requests
        are flushed first)."""
        self.queue(build, None)
        return self.flush()[-1]

    def dump(self, build: Callable[[int], bytes],
             visit: Callable[[memoryview, int, int], None] | None = None
             ) -> list[bytes]:
        """Run a dump request.

        :param build: called with a sequence number, returns the request.
        :param visit: called with (buffer, payload start, payload end) for
            every answer instead of collecting copies (the buffer is
            reused: copy what you keep).
        :returns: the payload of every answer (empty with ``visit``).
        :raises OSError: the kernel refused the dump (``errno`` set).
        :raises RuntimeError: requests are still queued (flush first: their
            answers would be lost).
        """
        if self._pending:
            raise RuntimeError('flush queued requests before a dump')
        seq = self.next_seq()
        self.sock.sendall(build(seq))
        out: list[bytes] = []
        while True:
            buf = self._recv()
            for mtype, flags, mseq, start, end in nlmsg.messages(buf):
                if mseq != seq:
                    continue
                if mtype == nlmsg.NLMSG_DONE:
                    return out
                if mtype == nlmsg.NLMSG_ERROR:
                    err, text = nlmsg.parse_error(buf, start, end, flags)
                    if err:
                        raise OSError(err, text or os.strerror(err))
                    return out
                if visit is None:
                    out.append(bytes(buf[start:end]))
                else:
                    visit(buf, start, end)


def _configure(sock: socket.socket) -> None:
    """Large buffers, capped acks, extended ack messages."""
    try:
        # NOTE(vpd): SO_RCVBUFFORCE is allowed with CAP_NET_ADMIN and
        # ignores net.core.rmem_max; fall back to what is allowed.
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _RCVBUF)
    for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
        try:
            sock.setsockopt(SOL_NETLINK, opt, 1)
        except OSError:
            # NOTE(vpd): older kernels lack them; acks only get longer
            # and error texts fall back to strerror().
            pass


#: What a terse kernel refusal means for the operations of this library.
#: NOTE(vpd): a Linux bridge numbers its ports in 10 bits (port 0 is
#: reserved): the 1024th port is refused with "Exchange full" and no
#: extended ack.
HINTS = {errno_mod.EXFULL: 'the master has no free port: a Linux bridge '
                           'holds at most 1023'}


def reason(err: int, text: str | None) -> str:
    """The best description of a kernel error: its extended-ack message
    when given, else strerror(), and what it means where that is not
    obvious (:data:`HINTS`)."""
    base = os.strerror(err) if err else 'success'
    if text:
        base = '%s: %s' % (base, text)
    hint = HINTS.get(err)
    return '%s (%s)' % (base, hint) if hint else base


#: errno values that mean "no such device" in rtnetlink answers.
NO_DEVICE = frozenset({errno_mod.ENODEV, errno_mod.ENOENT})


def kernel_error(operation: str, device: str, err: int,
                 text: str | None = None
                 ) -> exception.NetlinkOperationFailed:
    """The typed error for a kernel refusal."""
    return exception.NetlinkOperationFailed(
        operation=operation, device=device, errno=err,
        reason=reason(err, text))
