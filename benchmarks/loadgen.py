"""The load generator: one process per `GenSpec`, driven by the orchestrator over a pipe.

Conversation with the orchestrator (every wait is bounded):

    gen  -> ("ready",)
    orch -> ("connect", t_go)           all processes start connecting at the same instant
    gen  -> ("connected", stats)
    orch -> ("start", t0) | ("stop",)   load scenarios send for `duration` seconds from t0
    gen  -> ("done", results)           after sending ends and deliveries have drained
    orch -> ("stop",)                   close every socket and exit

Every message body is "<tag> <sender> <seq> <monotonic send time>"; CLOCK_MONOTONIC is one
clock for every process of the machine, so latency is receive time minus send time.
Deliveries are counted per client: a key seen twice by one client is a duplicate; a sent key
that a connected client never saw is lost.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.wsclient import WSClient

MESSAGE_PREFIX = b'{"type":"message"'
HELLO_PREFIX = b'{"type":"hello"'
ERROR_MARK = b'"type":"error"'
BODY_MARK = b'"body":"'


@dataclass
class ClientSpec:
    """One socket: where it connects, and its sender id (-1 for a listener)."""

    index: int
    host: str
    port: int
    sender: int = -1


@dataclass
class GenSpec:
    """What one generator process does."""

    gen: int
    tag: str
    clients: list[ClientSpec]
    mode: str = "rate"  # "rate" (open loop, `rate` msg/s per sender) or "window"
    rate: float = 10.0
    window: int = 10
    duration: float = 10.0
    connect_concurrency: int = 64
    connect_timeout: float = 30.0
    drain_max: float = 5.0
    quiet_after: float = 1.0
    total_senders: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def raise_open_files(wanted: int = 20000) -> int:
    """Raise the soft open-file limit (up to the hard limit); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Generator:
    """The sockets of one process and their counters."""

    def __init__(self, spec: GenSpec) -> None:
        self.spec = spec
        self.tag = spec.tag.encode()
        self.loop = asyncio.get_running_loop()
        self.clients: list[WSClient] = []
        self.every: list[WSClient] = []
        self.client_spec: dict[int, ClientSpec] = {}
        self.hello_at: dict[int, float] = {}
        self.hello_waiters: dict[int, asyncio.Future[None]] = {}
        self.seen: dict[int, set[int]] = {}
        self.received: Counter[int] = Counter()
        self.latency = array("d")
        self.sent_offset = array("d")
        self.duplicates = 0
        self.errors = 0
        self.error_codes: Counter[str] = Counter()
        self.closed_during_run = 0
        self.running = False
        self.t0 = 0.0
        self.end_send = 0.0
        self.last_delivery = 0.0
        # sender id -> next sequence number, and unacknowledged count (window mode)
        self.next_seq: dict[int, int] = {}
        self.inflight: dict[int, int] = {}
        self.acked: dict[int, int] = {}
        self.sender_socket: dict[int, WSClient] = {}

    # --- frames -------------------------------------------------------------------------
    def on_text(self, client: WSClient, payload: bytes) -> None:
        if payload.startswith(MESSAGE_PREFIX):
            start = payload.find(BODY_MARK)
            if start < 0:
                return
            start += len(BODY_MARK)
            end = payload.find(b'"', start)
            parts = payload[start:end].split(b" ")
            if len(parts) != 4 or parts[0] != self.tag:
                return  # history or another run's traffic
            now = time.monotonic()
            sender = int(parts[1])
            key = (sender << 32) | int(parts[2])
            seen = self.seen[id(client)]
            if key in seen:
                self.duplicates += 1
                return
            seen.add(key)
            self.received[key] += 1
            sent_at = float(parts[3])
            self.latency.append(now - sent_at)
            self.sent_offset.append(sent_at - self.t0)
            self.last_delivery = now
            if self.sender_socket.get(sender) is client:
                self._acknowledge(sender)
        elif payload.startswith(HELLO_PREFIX):
            waiter = self.hello_waiters.get(id(client))
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif ERROR_MARK in payload:
            self.errors += 1
            code_at = payload.find(b'"code":"')
            if code_at >= 0:
                code_end = payload.find(b'"', code_at + 8)
                self.error_codes[payload[code_at + 8 : code_end].decode()] += 1
            for sender, sock in self.sender_socket.items():
                if sock is client:
                    self._acknowledge(sender)

    def on_close(self, client: WSClient) -> None:
        if self.running:
            self.closed_during_run += 1

    # --- connecting ---------------------------------------------------------------------
    async def connect_all(self, t_go: float) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, t_go - time.monotonic()))
        gate = asyncio.Semaphore(self.spec.connect_concurrency)
        durations: list[float] = []
        failures: Counter[str] = Counter()
        deadline = t_go + self.spec.connect_timeout

        async def one(cs: ClientSpec) -> None:
            async with gate:
                started = time.monotonic()
                remaining = deadline - started
                if remaining <= 0:
                    failures["timeout"] += 1
                    return

                def factory() -> WSClient:
                    # Register the socket before any byte can arrive for it.
                    client = WSClient(
                        host=cs.host,
                        port=cs.port,
                        path=f"/ws/chat/?nick=b{cs.index}",
                        on_text=self.on_text,
                        on_close=self.on_close,
                    )
                    self.hello_waiters[id(client)] = self.loop.create_future()
                    self.seen[id(client)] = set()
                    self.clients.append(client)
                    self.every.append(client)
                    self.client_spec[id(client)] = cs
                    return client

                try:
                    async with asyncio.timeout(remaining):
                        _, client = await self.loop.create_connection(factory, cs.host, cs.port)
                        await client.upgraded
                        await self.hello_waiters[id(client)]
                except TimeoutError:
                    failures["timeout"] += 1
                    return
                except (OSError, ConnectionError) as exc:
                    failures[type(exc).__name__] += 1
                    return
                done = time.monotonic()
                self.hello_at[id(client)] = done
                durations.append(done - started)
                if cs.sender >= 0:
                    self.sender_socket[cs.sender] = client

        await asyncio.gather(*(one(cs) for cs in self.spec.clients))
        # A socket that never got its hello is not counted as connected.
        self.clients = [c for c in self.clients if id(c) in self.hello_at and not c.closed]
        return {
            "ok": len(self.clients),
            "failed": dict(failures),
            "durations": durations,
            "last_hello": max(self.hello_at.values(), default=t_go),
            "t_go": t_go,
        }

    # --- sending --------------------------------------------------------------------------
    def _send(self, sender: int) -> None:
        sock = self.sender_socket[sender]
        seq = self.next_seq.get(sender, 0)
        self.next_seq[sender] = seq + 1
        self.inflight[sender] = self.inflight.get(sender, 0) + 1
        body = f"{self.spec.tag} {sender} {seq} {time.monotonic():.6f}"
        sock.send_text(
            f'{{"type":"message","body":"{body}","client_id":"{self.spec.tag}-{sender}-{seq}"}}'
        )

    def _acknowledge(self, sender: int) -> None:
        self.inflight[sender] = max(0, self.inflight.get(sender, 0) - 1)
        self.acked[sender] = self.acked.get(sender, 0) + 1
        if (
            self.spec.mode == "window"
            and self.running
            and time.monotonic() < self.end_send
            and not self.sender_socket[sender].closed
        ):
            self._send(sender)

    async def _rate_sender(self, sender: int) -> None:
        interval = 1.0 / self.spec.rate
        # Spread the senders' phases so that they do not all fire at once.
        phase = interval * (sender / max(1, self.spec.total_senders))
        k = 0
        while True:
            due = self.t0 + phase + k * interval
            if due >= self.end_send:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.sender_socket[sender].closed:
                return
            self._send(sender)
            k += 1

    async def run_load(self, t0: float) -> dict[str, Any]:
        spec = self.spec
        self.t0 = t0
        self.end_send = t0 + spec.duration
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        cpu_before = _cpu_seconds()
        self.running = True
        senders = list(self.sender_socket)
        if spec.mode == "window":
            for sender in senders:
                for _ in range(spec.window):
                    self._send(sender)
        else:
            await asyncio.gather(*(self._rate_sender(s) for s in senders))
        # A process without senders (or whose senders ended early) listens until the end too.
        await asyncio.sleep(max(0.0, self.end_send - time.monotonic()))
        # Drain: until every own message is acknowledged and the stream went quiet, bounded.
        drain_end = time.monotonic() + spec.drain_max
        while time.monotonic() < drain_end:
            now = time.monotonic()
            pending = sum(self.inflight.values())
            if pending == 0 and now - self.last_delivery >= spec.quiet_after:
                break
            await asyncio.sleep(0.05)
        self.running = False
        finished = time.monotonic()
        cpu = _cpu_seconds() - cpu_before
        return {
            "sent": dict(self.next_seq),
            "acked": dict(self.acked),
            "received": dict(self.received),
            "latency": self.latency.tobytes(),
            "sent_offset": self.sent_offset.tobytes(),
            "duplicates": self.duplicates,
            "errors": self.errors,
            "error_codes": dict(self.error_codes),
            "connected": len(self.clients),
            "closed_during_run": self.closed_during_run,
            "cpu_seconds": cpu,
            "wall": finished - t0,
            "finished": finished,
            "last_delivery": self.last_delivery,
        }

    def close_all(self) -> None:
        for client in self.every:
            client.close()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _recv(conn: Connection, timeout: float) -> Any:
    """Receive from the orchestrator without blocking the event loop (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while not conn.poll(0):
        if time.monotonic() > deadline:
            raise TimeoutError("the orchestrator did not answer")
        ready = loop.create_future()
        loop.add_reader(conn.fileno(), _wake, ready)
        try:
            await asyncio.wait_for(ready, timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(conn.fileno())
    return conn.recv()


async def _main(conn: Connection, spec: GenSpec) -> None:
    gen = Generator(spec)
    try:
        conn.send(("ready",))
        command = await _recv(conn, 120)
        assert command[0] == "connect", command
        stats = await gen.connect_all(command[1])
        stats["cpu_seconds"] = _cpu_seconds()
        conn.send(("connected", stats))
        command = await _recv(conn, 300)
        if command[0] == "start":
            results = await gen.run_load(command[1])
            conn.send(("done", results))
            await _recv(conn, 300)
    finally:
        gen.close_all()
        await asyncio.sleep(0.1)


def generator_process(conn: Connection, spec: GenSpec) -> None:
    """Entry point of one generator process."""
    raise_open_files()
    try:
        asyncio.run(_main(conn, spec))
    finally:
        conn.close()
