"""Byte transports to a board: one small interface over very different links.

Every transport provides ``open()``, ``write(data)``, ``read(timeout)`` (whatever bytes arrive
within ``timeout`` seconds, possibly none), ``readline(timeout)`` and ``read_until(terminator,
timeout)`` (the bytes up to and including the terminator, or what arrived before the timeout),
``reset_input()`` (drop what was received but not read) and ``close()``. Transports are context
managers.

Kinds (registered through ``register_transports``):

- ``serial``: any pyserial URL through ``serial.serial_for_url``: ``/dev/ttyACM0``,
  ``socket://127.0.0.1:4321``, ``rfc2217://host:port``, ``loop://``, and the pseudo-terminal
  path of a host firmware started by ``tinysnn board start host``;
- ``pty``: start a command (the host firmware) on a pseudo-terminal and talk to it;
- ``subprocess``: start a command and talk to its stdin/stdout pipes;
- ``flaky``: wrap another transport and drop or corrupt a seeded fraction of the bytes in
  both directions (for testing retries).
"""

from __future__ import annotations

import os
import random
import select
import shlex
import subprocess
import time
import tty
from dataclasses import dataclass

from tinysnn_core.errors import TinySNNError


class TransportError(TinySNNError):
    """The link could not be opened or broke."""


class Transport:
    """Base class: subclasses implement ``_open``, ``_write``, ``_read_some`` and ``_close``."""

    kind = "abstract"

    def __init__(self) -> None:
        self._buf = bytearray()
        self.is_open = False
        self.bytes_written = 0
        self.bytes_read = 0

    # -- to implement ---------------------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _read_some(self, timeout: float) -> bytes:
        """Return at least one byte if any arrives within ``timeout``, else b""."""
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # -- the interface --------------------------------------------------------------------
    def open(self) -> "Transport":
        if not self.is_open:
            self._open()
            self.is_open = True
        return self

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._close()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def write(self, data: bytes) -> None:
        self._require_open()
        self._write(bytes(data))
        self.bytes_written += len(data)

    def read(self, timeout: float = 0.0) -> bytes:
        """Buffered bytes, or whatever arrives within ``timeout`` seconds."""
        self._require_open()
        if not self._buf:
            self._fill(max(timeout, 0.0))
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def read_until(self, terminator: bytes = b"\n", timeout: float = 1.0) -> bytes:
        """Bytes up to and including ``terminator``; on timeout, what arrived so far."""
        self._require_open()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            idx = self._buf.find(terminator)
            if idx >= 0:
                end = idx + len(terminator)
                data = bytes(self._buf[:end])
                del self._buf[:end]
                return data
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                data = bytes(self._buf)
                self._buf.clear()
                return data
            self._fill(remaining)

    def readline(self, timeout: float = 1.0) -> bytes:
        return self.read_until(b"\n", timeout)

    def reset_input(self) -> None:
        """Forget everything received and not yet read (what is already here, not in flight)."""
        self._require_open()
        self._buf.clear()
        while self._fill(0.0):
            self._buf.clear()

    # -- helpers --------------------------------------------------------------------------
    def _fill(self, timeout: float) -> bool:
        data = self._read_some(timeout)
        if data:
            self._buf += data
            self.bytes_read += len(data)
            return True
        return False

    def _require_open(self) -> None:
        if not self.is_open:
            raise TransportError(f"{self.kind} transport is not open")

    def describe(self) -> str:
        return self.kind


class SerialTransport(Transport):
    """Any pyserial URL (``serial.serial_for_url``)."""

    kind = "serial"

    def __init__(self, url: str, *, baudrate: int = 115200, connect_timeout: float = 5.0,
                 **options) -> None:
        super().__init__()
        self.url = url
        self.baudrate = baudrate
        self.connect_timeout = connect_timeout
        self.options = options
        self._ser = None

    def _open(self) -> None:
        import serial  # pyserial

        deadline = time.monotonic() + self.connect_timeout
        while True:  # a board that is still starting refuses connections for a moment
            try:
                self._ser = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0,
                                                  **self.options)
                sock = getattr(self._ser, "_socket", None)  # socket:// and rfc2217://
                if sock is not None:
                    try:
                        import socket

                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    except OSError:
                        pass
                return
            except (serial.SerialException, OSError, ValueError) as exc:
                if time.monotonic() >= deadline:
                    raise TransportError(f"cannot open {self.url!r}: {exc}") from exc
                time.sleep(0.05)

    def _write(self, data: bytes) -> None:
        import serial

        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"write to {self.url!r} failed: {exc}") from exc

    def _read_some(self, timeout: float) -> bytes:
        import serial

        try:
            self._ser.timeout = timeout
            first = self._ser.read(1)
            if not first:
                return b""
            self._ser.timeout = 0
            waiting = self._ser.in_waiting
            return first + (self._ser.read(waiting) if waiting else b"")
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"read from {self.url!r} failed: {exc}") from exc

    def _close(self) -> None:
        if self._ser is not None:
            self._ser.close()
            self._ser = None

    def describe(self) -> str:
        return f"serial {self.url}"


class _FdTransport(Transport):
    """Shared code for transports over file descriptors (pipes, a pty master)."""

    _rfd: int = -1
    _wfd: int = -1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._wfd, view)
            except OSError as exc:
                raise TransportError(f"write failed: {exc}") from exc
            view = view[n:]

    def _read_some(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._rfd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self._rfd, 65536)
        except OSError:  # EIO: the other side of a pty has gone
            data = b""
        if not data:
            time.sleep(min(timeout, 0.01))  # end of file: behave like a silent link
        return data


def _argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


class SubprocessTransport(_FdTransport):
    """Start ``command`` and talk to its stdin/stdout pipes."""

    kind = "subprocess"

    def __init__(self, command, *, cwd=None) -> None:
        super().__init__()
        self.argv = _argv(command)
        self.cwd = cwd
        self.proc = None

    def _open(self) -> None:
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         cwd=self.cwd, bufsize=0)
        except OSError as exc:
            raise TransportError(f"cannot start {self.argv[0]!r}: {exc}") from exc
        self._rfd = self.proc.stdout.fileno()
        self._wfd = self.proc.stdin.fileno()

    def _close(self) -> None:
        _stop_process(self.proc)

    def describe(self) -> str:
        return f"subprocess {shlex.join(self.argv)}"


class PtyTransport(_FdTransport):
    """Start ``command`` on a pseudo-terminal (raw mode) and talk to the master side."""

    kind = "pty"

    def __init__(self, command, *, cwd=None) -> None:
        super().__init__()
        self.argv = _argv(command)
        self.cwd = cwd
        self.proc = None
        self._master = -1

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, no CR/LF translation
        try:
            self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, cwd=self.cwd,
                                         close_fds=True)
        except OSError as exc:
            os.close(master)
            raise TransportError(f"cannot start {self.argv[0]!r}: {exc}") from exc
        finally:
            os.close(slave)
        self._master = self._rfd = self._wfd = master

    def _close(self) -> None:
        _stop_process(self.proc)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def describe(self) -> str:
        return f"pty {shlex.join(self.argv)}"


def _stop_process(proc) -> None:
    if proc is None or proc.poll() is not None:
        return
    for stream in (proc.stdin,):
        try:
            if stream:
                stream.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class FlakyStats:
    sent_dropped: int = 0
    sent_corrupted: int = 0
    received_dropped: int = 0
    received_corrupted: int = 0

    @property
    def total(self) -> int:
        return (self.sent_dropped + self.sent_corrupted + self.received_dropped
                + self.received_corrupted)


class FlakyTransport(Transport):
    """A proxy that drops or corrupts bytes of an inner transport, reproducibly (seeded).

    Each byte, in either direction, is dropped with probability ``drop`` and otherwise
    replaced by a different random byte with probability ``corrupt``.
    """

    kind = "flaky"

    def __init__(self, inner: Transport, *, drop: float = 0.005, corrupt: float = 0.005,
                 seed: int = 0) -> None:
        super().__init__()
        if not (0 <= drop < 1 and 0 <= corrupt < 1):
            raise ValueError("drop and corrupt are probabilities in [0, 1)")
        self.inner = inner
        self.drop = drop
        self.corrupt = corrupt
        self.rng = random.Random(seed)
        self.stats = FlakyStats()

    def _mangle(self, data: bytes, direction: str) -> bytes:
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.drop:
                setattr(self.stats, f"{direction}_dropped",
                        getattr(self.stats, f"{direction}_dropped") + 1)
                continue
            if r < self.drop + self.corrupt:
                b ^= self.rng.randrange(1, 256)
                setattr(self.stats, f"{direction}_corrupted",
                        getattr(self.stats, f"{direction}_corrupted") + 1)
            out.append(b)
        return bytes(out)

    def _open(self) -> None:
        self.inner.open()

    def _write(self, data: bytes) -> None:
        self.inner.write(self._mangle(data, "sent"))

    def _read_some(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            data = self.inner.read(max(0.0, deadline - time.monotonic()))
            data = self._mangle(data, "received") if data else b""
            if data or time.monotonic() >= deadline:
                return data

    def _close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return (f"flaky(drop={self.drop}, corrupt={self.corrupt}) over "
                f"{self.inner.describe()}")


def open_transport(spec: str, **options) -> Transport:
    """A transport from a user-facing spec: ``pty:COMMAND``, ``subprocess:COMMAND``, or any
    pyserial URL / device path. Not opened yet."""
    if spec.startswith("pty:"):
        return PtyTransport(spec[4:], **options)
    if spec.startswith("subprocess:"):
        return SubprocessTransport(spec[len("subprocess:"):], **options)
    return SerialTransport(spec, **options)


TRANSPORTS = {
    "serial": (SerialTransport, "any pyserial URL: /dev/ttyACM0, socket://, rfc2217://, loop://"),
    "pty": (PtyTransport, "a command (the host firmware) on a pseudo-terminal"),
    "subprocess": (SubprocessTransport, "a command's stdin/stdout pipes"),
    "flaky": (FlakyTransport, "a proxy dropping/corrupting a seeded fraction of bytes"),
}
