#!/usr/bin/env python3
"""A TLS and SASL front for a plaintext Kafka-protocol broker, for paritygate's connectivity tests.

The test broker (tansu 0.6) parses `--cert`/`--key` but serves plaintext, and its SASL has no user
store (every SCRAM login answers "unknown user"). This front gives the tests what a managed cluster
offers, on the wire librdkafka speaks:

- TLS (`--cert`, `--key`), and mutual TLS (`--client-ca`: a client certificate signed by that CA is
  required);
- SASL (`--sasl PLAIN|SCRAM-SHA-256|SCRAM-SHA-512`, users from `--user name:password`):
  the client's ApiVersions request is passed to the broker, SaslHandshake and SaslAuthenticate
  (v0-v2) are answered here (SCRAM with the `scramp` library, RFC 5802/7677), and every other
  request before a successful login closes the connection, as Kafka does.

After the handshake the connection is a byte pipe to the broker. The broker must advertise this
front's address (`tansu --advertised-listener-url`), so clients come back through it for every
broker connection. One front serves one listener: start one per security setup.

Prints `ready <port>` on stdout once it listens.
"""

import argparse
import asyncio
import ssl
import struct
import sys

from scramp import ScramException, ScramMechanism

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE = 58, 33, 34


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="host:port (port 0: any free one)")
    p.add_argument("--backend", required=True, help="the plaintext broker, host:port")
    p.add_argument("--cert", help="server certificate chain (PEM)")
    p.add_argument("--key", help="server private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    p.add_argument("--sasl", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    p.add_argument("--user", action="append", default=[], help="name:password (repeatable)")
    return p.parse_args()


async def read_frame(reader):
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    return await reader.readexactly(size)


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def uvarint(data, at):
    shift = value = 0
    while True:
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, at
        shift += 7


def put_uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Request:
    """A request's header, and where its body starts."""

    def __init__(self, data):
        self.data = data
        self.api_key, self.version, self.correlation = struct.unpack(">hhi", data[:8])
        at = 8
        (client_len,) = struct.unpack(">h", data[at : at + 2])
        at += 2 + max(client_len, 0)
        if self.flexible():
            _, at = uvarint(data, at)  # tagged fields (none expected)
        self.body = at

    def flexible(self):
        # The request-header versions of the APIs this front reads: ApiVersions v3+ and
        # SaslAuthenticate v2+ use header v2 (tagged fields); SaslHandshake never does.
        return (self.api_key == API_VERSIONS and self.version >= 3) or (
            self.api_key == SASL_AUTHENTICATE and self.version >= 2
        )


class Login:
    """One connection's SASL state machine."""

    def __init__(self, mechanism, users):
        self.mechanism = mechanism
        self.users = users
        self.scram = None
        self.done = False

    def handshake(self, request):
        (n,) = struct.unpack(">h", request.data[request.body : request.body + 2])
        asked = request.data[request.body + 2 : request.body + 2 + n].decode()
        error = 0 if asked == self.mechanism else UNSUPPORTED_SASL_MECHANISM
        if error == 0 and self.mechanism.startswith("SCRAM"):
            mech = ScramMechanism(self.mechanism)
            infos = {u: mech.make_auth_info(p, iteration_count=4096) for u, p in self.users.items()}

            def auth_fn(user):
                if user not in infos:
                    raise ScramException("unknown user")
                return infos[user]

            self.scram = mech.make_server(auth_fn)
        body = struct.pack(">hi", error, 1) + struct.pack(">h", len(self.mechanism)) + self.mechanism.encode()
        return struct.pack(">i", request.correlation) + body, error == 0

    def authenticate(self, request):
        data, at = request.data, request.body
        if request.version >= 2:
            n, at = uvarint(data, at)
            token = data[at : at + n - 1]
        else:
            (n,) = struct.unpack(">i", data[at : at + 4])
            token = data[at + 4 : at + 4 + n]
        error, message, reply = 0, None, b""
        try:
            reply = self.step(token)
        except (ScramException, ValueError, UnicodeDecodeError) as e:
            error, message = SASL_AUTHENTICATION_FAILED, f"Authentication failed: {e}"
        return self.respond(request, error, message, reply), error == 0

    def step(self, token):
        if self.mechanism == "PLAIN":
            _, user, password = token.decode().split("\0")
            if self.users.get(user) != password:
                raise ValueError("invalid username or password")
            self.done = True
            return b""
        if self.scram is None:
            raise ValueError("no handshake")
        if self.scram.stage is None:
            self.scram.set_client_first(token.decode())
            return self.scram.get_server_first().encode()
        self.scram.set_client_final(token.decode())
        self.done = True
        return self.scram.get_server_final().encode()

    @staticmethod
    def respond(request, error, message, reply):
        head = struct.pack(">i", request.correlation)
        if request.version >= 2:
            msg = b"\x00" if message is None else put_uvarint(len(message) + 1) + message.encode()
            body = struct.pack(">h", error) + msg + put_uvarint(len(reply) + 1) + reply
            body += struct.pack(">q", 0) + b"\x00"
            return head + b"\x00" + body
        msg = struct.pack(">h", -1) if message is None else struct.pack(">h", len(message)) + message.encode()
        body = struct.pack(">h", error) + msg + struct.pack(">i", len(reply)) + reply
        if request.version >= 1:
            body += struct.pack(">q", 0)
        return head + body


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve_client(args, users, client_r, client_w):
    host, port = args.backend.rsplit(":", 1)
    try:
        broker_r, broker_w = await asyncio.open_connection(host, int(port))
    except OSError:
        client_w.close()
        return
    try:
        if args.sasl:
            login = Login(args.sasl, users)
            while not login.done:
                request = Request(await read_frame(client_r))
                if request.api_key == API_VERSIONS:
                    broker_w.write(frame(request.data))
                    await broker_w.drain()
                    client_w.write(frame(await read_frame(broker_r)))
                elif request.api_key == SASL_HANDSHAKE:
                    answer, ok = login.handshake(request)
                    client_w.write(frame(answer))
                    if not ok:
                        break
                elif request.api_key == SASL_AUTHENTICATE:
                    answer, ok = login.authenticate(request)
                    client_w.write(frame(answer))
                    if not ok:
                        await client_w.drain()
                        break
                else:
                    break  # a request before login: Kafka closes the connection
                await client_w.drain()
            if not login.done:
                client_w.close()
                broker_w.close()
                return
        await asyncio.gather(pipe(client_r, broker_w), pipe(broker_r, client_w))
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, struct.error, IndexError):
        client_w.close()
        broker_w.close()


async def main():
    args = parse_args()
    users = dict(u.split(":", 1) for u in args.user)
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.load_verify_locations(args.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(
        lambda r, w: serve_client(args, users, r, w), host, int(port), ssl=context
    )
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
