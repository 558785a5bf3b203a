"""Raw HTTP/1.1 over sockets for the protocol tests: exact bytes out, responses parsed back.

Standard library only. http.client cannot send pipelined requests, malformed framing or a
half-close, so these tests write bytes themselves and read responses with this parser.
"""
import resource
import socket
import time


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body        # bytes

    def text(self):
        return self.body.decode("utf-8")

    def __repr__(self):
        return f"Response({self.status}, {self.body[:200]!r})"


class Connection:
    """One client connection; `send` writes bytes, `read_response` reads one response."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def _read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_request=False):
        """Reads one final response (skipping 1xx interim ones unless asked for them)."""
        while True:
            response = self.read_any_response(head_request)
            if response.status >= 200:
                return response

    def read_any_response(self, head_request=False):
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status)
        body = b""
        if not head_request and status >= 200 and status not in (204, 304):
            body = self._read_exact(int(headers.get("content-length", "0")))
        return Response(status, reason, headers, body)

    def at_eof(self, timeout=5.0):
        """True if the server closes the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def request_bytes(method, path, body=b"", headers=None, version="HTTP/1.1"):
    """A well-formed request with Host and Content-Length (when there is a body)."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def requests_style(method, path, port, body, content_type=None):
    """The exact request python-requests sends for requests.get(url, data=...) (or json=...)."""
    if isinstance(body, str):
        body = body.encode()
    headers = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
               "User-Agent: python-requests/2.31.0", "Accept-Encoding: gzip, deflate",
               "Accept: */*", "Connection: keep-alive", f"Content-Length: {len(body)}"]
    if content_type:
        headers.append(f"Content-Type: {content_type}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body


def raise_open_files_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def timed(fn):
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start
