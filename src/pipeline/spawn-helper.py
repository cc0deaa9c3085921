"""vqd spawn helper: starts the programs of pipeline steps on behalf of the daemon.

Why it exists: Node.js starts a child by fork() + exec(). fork() copies the page tables of the
whole daemon and leaves its memory copy-on-write until the child has exec'd, which costs the
daemon ~1.5-2 ms of CPU per program, and the child as much again to tear the copy down. This
small process starts programs with posix_spawn() (vfork semantics in glibc: nothing is copied),
so a step's ffprobe or ffmpeg costs a fraction of that. See docs/decisions.md.

Protocol: one JSON object per line. The daemon writes requests on our stdin:

  {"op": "spawn", "id": 7, "file": "/usr/bin/ffmpeg", "argv": ["ffmpeg", ...],
   "cwd": "/some/dir" or null, "env": {"K": "V"} or null (null: our own environment)}

and we answer on stdout, for each id, in this order:

  {"id": 7, "t": "spawn", "pid": 1234}              the program runs, in a session of its own
  {"id": 7, "t": "error", "code": "ENOENT", "syscall": "spawn" or "chdir", "message": "..."}
                                                     instead of "spawn": it could not be started
  {"id": 7, "t": "out", "d": "..."}                 text the program wrote on stdout (UTF-8)
  {"id": 7, "t": "err", "d": "..."}                 ... and on stderr
  {"id": 7, "t": "exit", "code": 0, "signal": null} it ended (code null and a signal name if killed)
  {"id": 7, "t": "close"}                           the last event: its output is all delivered

The program's stdin is /dev/null. The daemon signals process groups itself (kill(-pid)); we only
reap. When our stdin ends (the daemon exited, or died: the kernel closes its end), every program
still running gets SIGKILL on its process group and we exit, so no step outlives the daemon.

Only the standard library; Python 3.9 or newer (os.posix_spawn with setsid).
"""

import codecs
import errno
import json
import os
import selectors
import signal
import sys
import time

# After a program exits, how long output still arriving on its pipes (from a grandchild that
# kept them open) is read before the pipes are closed and "close" is sent.
CLOSE_GRACE_S = 1.0
READ_SIZE = 65536
# Python ignores these; ignored signals stay ignored across exec, so they are reset for programs.
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


class Child:
    __slots__ = ("id", "pid", "fds", "decoders", "exited_at")

    def __init__(self, request_id, pid):
        self.id = request_id
        self.pid = pid
        # Its open pipes: fd -> "out" or "err".
        self.fds = {}
        self.decoders = {
            "out": codecs.getincrementaldecoder("utf-8")("replace"),
            "err": codecs.getincrementaldecoder("utf-8")("replace"),
        }
        self.exited_at = None


class Helper:
    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.by_pid = {}
        self.closing = []
        self.pending_input = b""
        self.outbox = []
        # Our environment as a plain dict of bytes: os.environ would be decoded and re-encoded
        # variable by variable in Python on every spawn (~0.3 ms each).
        self.environ = dict(os.environb)
        self.home_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        # SIGCHLD wakes the loop through this pipe; the Python-level handler does nothing.
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.wake_r = wake_r
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, "stdin")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")

    # ------------------------------------------------------------------ output to the daemon

    def emit(self, event):
        self.outbox.append(json.dumps(event, separators=(",", ":")))

    def flush(self):
        """Sends what this turn of the loop produced in one write (a write wakes the daemon)."""
        if not self.outbox:
            return
        view = memoryview(("\n".join(self.outbox) + "\n").encode())
        self.outbox.clear()
        while view:
            written = os.write(1, view)
            view = view[written:]

    # ------------------------------------------------------------------ requests

    def on_stdin(self):
        try:
            chunk = os.read(0, READ_SIZE)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        lines = (self.pending_input + chunk).split(b"\n")
        self.pending_input = lines.pop()
        for line in lines:
            if line.strip():
                self.on_request(line)
        return True

    def on_request(self, line):
        try:
            request = json.loads(line)
            request_id = request["id"]
        except (ValueError, KeyError, TypeError) as e:
            sys.stderr.write("vqd spawn helper: ignoring a malformed request (%s): %r\n" % (e, line[:200]))
            return
        try:
            op = request.get("op")
            if op != "spawn":
                raise ValueError("unknown op %r" % (op,))
            file, argv = request["file"], request["argv"]
            if not isinstance(file, str) or not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise ValueError("file must be a string and argv a list of strings")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.emit({"id": request_id, "t": "error", "code": "EINVAL", "syscall": "spawn", "message": "bad request: %s" % (e,)})
            return
        self.spawn(request_id, file, argv, request.get("cwd"), request.get("env"))

    def spawn(self, request_id, file, argv, cwd, env):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        syscall = "spawn"
        try:
            if cwd:
                syscall = "chdir"
                os.chdir(cwd)
                syscall = "spawn"
            pid = os.posix_spawn(
                file,
                argv,
                self.environ if env is None else env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
                # A session of its own, as Node's `detached` gives: no controlling terminal, its
                # own process group (pgid = pid), and under autogroup scheduling its own CPU share.
                setsid=True,
                setsigdef=RESET_SIGNALS,
                setsigmask=(),
            )
        except (OSError, ValueError, TypeError) as e:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            code = errno.errorcode.get(getattr(e, "errno", None) or 0, "EINVAL")
            self.emit({"id": request_id, "t": "error", "code": code, "syscall": syscall, "message": getattr(e, "strerror", None) or str(e)})
            return
        finally:
            if cwd:
                os.fchdir(self.home_fd)
        os.close(out_w)
        os.close(err_w)
        child = Child(request_id, pid)
        for fd, kind in ((out_r, "out"), (err_r, "err")):
            os.set_blocking(fd, False)
            child.fds[fd] = kind
            self.selector.register(fd, selectors.EVENT_READ, child)
        self.by_pid[pid] = child
        self.emit({"id": request_id, "t": "spawn", "pid": pid})

    # ------------------------------------------------------------------ programs

    def on_output(self, fd, child):
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            kind = child.fds[fd]
            text = child.decoders[kind].decode(data)
            if text:
                self.emit({"id": child.id, "t": kind, "d": text})
            return
        self.close_pipe(child, fd)
        self.maybe_close(child)

    def close_pipe(self, child, fd):
        self.selector.unregister(fd)
        os.close(fd)
        kind = child.fds.pop(fd)
        rest = child.decoders[kind].decode(b"", final=True)
        if rest:
            self.emit({"id": child.id, "t": kind, "d": rest})

    def maybe_close(self, child):
        if child.exited_at is not None and not child.fds:
            if child in self.closing:
                self.closing.remove(child)
            self.emit({"id": child.id, "t": "close"})

    def reap(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.by_pid.pop(pid, None)
            if child is None:
                continue
            if os.WIFSIGNALED(status):
                number = os.WTERMSIG(status)
                try:
                    name = signal.Signals(number).name
                except ValueError:
                    name = "SIG%d" % number
                self.emit({"id": child.id, "t": "exit", "code": None, "signal": name})
            else:
                self.emit({"id": child.id, "t": "exit", "code": os.WEXITSTATUS(status), "signal": None})
            child.exited_at = time.monotonic()
            if child.fds:
                self.closing.append(child)
            else:
                self.maybe_close(child)

    def give_up_on_pipes(self):
        now = time.monotonic()
        for child in list(self.closing):
            if now - child.exited_at >= CLOSE_GRACE_S:
                for fd in list(child.fds):
                    self.close_pipe(child, fd)
                self.maybe_close(child)

    def next_timeout(self):
        if not self.closing:
            return None
        first = min(child.exited_at for child in self.closing)
        return max(0.0, first + CLOSE_GRACE_S - time.monotonic())

    # ------------------------------------------------------------------ the loop

    def run(self):
        while True:
            for key, _ in self.selector.select(self.next_timeout()):
                if key.data == "stdin":
                    if not self.on_stdin():
                        return
                elif key.data == "wake":
                    self.reap()
                elif key.fd in key.data.fds:
                    # (A key whose pipe closed earlier in this batch is skipped: its fd may
                    # already belong to a newer program.)
                    self.on_output(key.fd, key.data)
            self.give_up_on_pipes()
            self.flush()

    def kill_all(self):
        for pid in list(self.by_pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


def main():
    if sys.version_info < (3, 9):
        # posix_spawn's setsid needs 3.9. Exiting before any request is answered makes the daemon
        # start those programs itself (and give up on the helper after a few tries).
        sys.stderr.write("vqd spawn helper: needs Python 3.9 or newer, this is %s\n" % sys.version.split()[0])
        sys.exit(3)
    helper = Helper()
    try:
        helper.run()
        helper.flush()
    except BrokenPipeError:
        pass
    finally:
        # The daemon is gone (or we failed): nothing we started may outlive us.
        helper.kill_all()


if __name__ == "__main__":
    main()
