"""What every benchmark prints about where it ran: CPU model and git commit."""
import os
import platform
import re
import shlex
import signal
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def sh(cmd, check=True):
    """stdout+stderr of `cmd` run in the repo root, or "unknown" when it cannot run."""
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=check)
        return (out.stdout + out.stderr).strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit():
    commit = sh(["git", "rev-parse", "--short=12", "HEAD"])
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"])
    return commit + (" (with uncommitted changes)" if dirty and dirty != "unknown" else "")


class ServerProcess:
    """A server process for a benchmark: started with its output in a temporary log, ready once
    the log matches `ready_pattern` (group 1, when there is one, is its port), stopped by PID
    (SIGTERM, then SIGKILL). Use start()/stop() or `with`."""

    def __init__(self, name, argv, ready_pattern=r"listening on http://[^\s:]+:(\d+)", env=None,
                 start_timeout_s=60, stop_timeout_s=30):
        self.name, self.argv, self.env = name, argv, env
        self.ready = re.compile(ready_pattern)
        self.start_timeout_s, self.stop_timeout_s = start_timeout_s, stop_timeout_s
        self.proc = self.port = self.log = None

    def start(self):
        self.log = tempfile.NamedTemporaryFile(prefix="bench-%s-" % self.name, suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            m = self.ready.search(self.log_text())
            if m:
                self.port = int(m.group(1)) if self.ready.groups else None
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        text = self.log_text()
        self.stop()
        raise RuntimeError("%s did not start (%s); log:\n%s"
                           % (self.name, shlex.join(self.argv), text))

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        """Stops the process; returns False when it had crashed (its log is then kept)."""
        if self.proc is None:
            return True
        crashed = self.proc.poll() is not None
        if not crashed:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()
        if not crashed:
            os.unlink(self.log.name)
        return not crashed

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
