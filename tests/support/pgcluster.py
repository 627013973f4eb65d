"""A throw-away PostgreSQL cluster for tests.

The cluster listens on 127.0.0.1 on a free port, trusts every local
connection and runs with durability switched off, so it starts in a couple
of seconds and is fast enough for migrations and integration tests.

Usage::

    bin_dir = find_pg_bin()
    if bin_dir is None:
        need(False, "PostgreSQL binaries not found")  # skips locally, fails in CI
    cluster = PgCluster(tmp_path_factory.mktemp("pg"))
    cluster.start()
    try:
        url = cluster.create_database("app")
        ...
    finally:
        cluster.stop()

``initdb`` and ``postgres`` refuse to run as root.  When the test process is
root, both ``initdb`` and ``pg_ctl`` are run as the ``postgres`` OS user via
``runuser`` and the cluster lives in a directory that user owns.  Nothing is
registered globally (no atexit hooks, no signal handlers): whoever calls
``start()`` must call ``stop()``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

__all__ = ["PgCluster", "find_pg_bin"]

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# The OS user that owns the cluster when the test process runs as root.
_PG_OS_USER = "postgres"
# The database superuser created by initdb.
_PG_DB_USER = "postgres"

# sun_path holds 108 bytes including the NUL; the server appends
# "/.s.PGSQL.NNNNN" (15 bytes) to the socket directory.
_MAX_SOCKET_DIR_LEN = 90

_START_ATTEMPTS = 5
_INITDB_TIMEOUT = 180
_PG_CTL_WAIT = 60  # seconds, passed to pg_ctl -t
_LOG_TAIL_LINES = 40


def _version_key(name: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return None


def _has_pg_tools(directory: pathlib.Path) -> bool:
    return all(
        os.path.isfile(directory / tool) and os.access(directory / tool, os.X_OK)
        for tool in ("initdb", "pg_ctl")
    )


def find_pg_bin() -> pathlib.Path | None:
    """Directory holding initdb and pg_ctl, or None.

    Checks PATH, then /usr/lib/postgresql/*/bin (highest version).
    """
    initdb = shutil.which("initdb")
    if initdb is not None:
        directory = pathlib.Path(initdb).parent
        if _has_pg_tools(directory):
            return directory

    versions: list[tuple[tuple[int, ...], pathlib.Path]] = []
    for candidate in pathlib.Path("/usr/lib/postgresql").glob("*/bin"):
        key = _version_key(candidate.parent.name)
        if key is not None and _has_pg_tools(candidate):
            versions.append((key, candidate))
    if not versions:
        return None
    return max(versions)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"invalid database name: {name!r} (must match {_NAME_RE.pattern})")
    return name


def _tail(path: pathlib.Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError as exc:
        return f"<log file {path} unreadable: {exc}>"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:]) or "<log file empty>"


class PgCluster:
    """A throw-away PostgreSQL cluster on 127.0.0.1 on a free port."""

    def __init__(self, base_dir: pathlib.Path, *, bin_dir: pathlib.Path | None = None):
        self.base_dir = pathlib.Path(base_dir)
        self._bin_dir = pathlib.Path(bin_dir) if bin_dir is not None else None
        self._as_root = os.geteuid() == 0
        self._runuser: str | None = None
        self._pg_uid: int | None = None
        self._pg_gid: int | None = None
        # Directories removed by stop().
        self._cleanup: list[pathlib.Path] = []
        self.root: pathlib.Path | None = None
        self.data_dir: pathlib.Path | None = None
        self.socket_dir: pathlib.Path | None = None
        self.log_file: pathlib.Path | None = None
        self._port: int | None = None
        self._running = False

    # -- public API ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None or not self._running:
            raise RuntimeError("cluster is not running")
        return self._port

    @property
    def bin_dir(self) -> pathlib.Path:
        if self._bin_dir is None:
            found = find_pg_bin()
            if found is None:
                raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
            self._bin_dir = found
        return self._bin_dir

    def start(self) -> None:
        """initdb + pg_ctl start; returns once the server accepts connections."""
        if self._running:
            raise RuntimeError("cluster already started")
        if self._as_root:
            self._resolve_os_user()
        bin_dir = self.bin_dir
        try:
            self._make_dirs()
            self._initdb(bin_dir)
            self._start_server(bin_dir)
        except BaseException:
            self._teardown()
            raise

    def stop(self) -> None:
        """pg_ctl stop -m immediate, then remove the cluster's directories. Idempotent."""
        self._teardown()

    def url(self, dbname: str = "postgres") -> str:
        _check_name(dbname)
        return f"postgresql+psycopg://{_PG_DB_USER}@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        _check_name(dbname)
        return f"host=127.0.0.1 port={self.port} user={_PG_DB_USER} dbname={dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE name [TEMPLATE template]; returns the new database's URL.

        PostgreSQL refuses to copy a template that has other sessions open,
        so dispose of engines connected to ``template`` first.
        """
        from psycopg import sql

        _check_name(name)
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            _check_name(template)
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self._execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS name WITH (FORCE); terminates its sessions."""
        from psycopg import sql

        _check_name(name)
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._running else "stopped"
        return f"<PgCluster {self.root or self.base_dir} {state}>"

    # -- internals ----------------------------------------------------------

    def _execute(self, statement: object) -> None:
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def _resolve_os_user(self) -> None:
        try:
            entry = pwd.getpwnam(_PG_OS_USER)
        except KeyError:
            raise RuntimeError(
                f"running as root but there is no {_PG_OS_USER!r} OS user to run PostgreSQL as"
            ) from None
        self._pg_uid, self._pg_gid = entry.pw_uid, entry.pw_gid
        runuser = shutil.which("runuser")
        if runuser is None:
            for candidate in ("/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"):
                if os.access(candidate, os.X_OK):
                    runuser = candidate
                    break
        if runuser is None:
            raise RuntimeError("running as root but runuser is not available")
        self._runuser = runuser

    def _command(self, *args: str | os.PathLike[str]) -> list[str]:
        argv = [os.fspath(arg) for arg in args]
        if self._as_root:
            assert self._runuser is not None
            return [self._runuser, "-u", _PG_OS_USER, "--", *argv]
        return argv

    def _env(self) -> dict[str, str]:
        # PG* variables of the caller (PGDATA, PGPORT, PGHOST, ...) must not leak
        # into the throw-away cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_MESSAGES"] = "C"
        return env

    def _run(
        self, *args: str | os.PathLike[str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(*args),
            cwd=self.root,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _give_to_pg(self, path: pathlib.Path) -> None:
        if self._as_root:
            assert self._pg_uid is not None and self._pg_gid is not None
            os.chown(path, self._pg_uid, self._pg_gid)

    def _pg_can_use(self, path: pathlib.Path) -> bool:
        """True if the postgres OS user can reach and write ``path``.

        access(2) as that user also checks search permission on every parent.
        """
        if not self._as_root:
            return True
        try:
            result = self._run("test", "-x", path, "-a", "-w", path, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0

    def _make_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        root = pathlib.Path(tempfile.mkdtemp(prefix="pgcluster-", dir=self.base_dir))
        self._cleanup.append(root)
        self._give_to_pg(root)
        if not self._pg_can_use(root):
            # e.g. pytest's /tmp/pytest-of-root is 0700: postgres cannot get in.
            shutil.rmtree(root, ignore_errors=True)
            self._cleanup.remove(root)
            root = pathlib.Path(tempfile.mkdtemp(prefix="pgcluster-"))
            self._cleanup.append(root)
            os.chmod(root, 0o755)
            self._give_to_pg(root)
            if not self._pg_can_use(root):
                raise RuntimeError(
                    f"the {_PG_OS_USER!r} OS user can use neither {self.base_dir} nor {root}"
                )
        self.root = root
        self.data_dir = root / "data"  # created by initdb
        self.log_file = root / "postgres.log"

        socket_dir = root / "sock"
        if len(os.fsencode(socket_dir)) > _MAX_SOCKET_DIR_LEN:
            socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="pgsock-"))
            self._cleanup.append(socket_dir)
        else:
            socket_dir.mkdir(mode=0o700)
        self._give_to_pg(socket_dir)
        self.socket_dir = socket_dir

    def _initdb(self, bin_dir: pathlib.Path) -> None:
        assert self.data_dir is not None
        failures = []
        for locale in ("C.UTF-8", "C"):
            if self.data_dir.exists():  # initdb normally cleans up after itself
                shutil.rmtree(self.data_dir, ignore_errors=True)
            result = self._run(
                bin_dir / "initdb",
                "-D",
                self.data_dir,
                "-A",
                "trust",
                "-U",
                _PG_DB_USER,
                "--no-sync",
                "-E",
                "UTF8",
                f"--locale={locale}",
                timeout=_INITDB_TIMEOUT,
            )
            if result.returncode == 0:
                return
            failures.append(
                f"--locale={locale}: exit {result.returncode}\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        raise RuntimeError("initdb failed:\n" + "\n".join(failures))

    def _start_server(self, bin_dir: pathlib.Path) -> None:
        assert self.data_dir is not None and self.log_file is not None
        assert self.socket_dir is not None
        last_error = ""
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            # pg_ctl hands -o to /bin/sh, hence the quoting of the path.
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} "
                f"-k {shlex.quote(os.fspath(self.socket_dir))} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            result = self._run(
                bin_dir / "pg_ctl",
                "-w",
                "-t",
                str(_PG_CTL_WAIT),
                "-D",
                self.data_dir,
                "-o",
                options,
                "-l",
                self.log_file,
                "start",
                timeout=_PG_CTL_WAIT + 30,
            )
            if result.returncode == 0:
                self._port = port
                self._running = True
                return
            log_tail = _tail(self.log_file, offset)
            last_error = (
                f"pg_ctl start failed (exit {result.returncode}, port {port}):\n"
                f"{result.stdout}{result.stderr}\n"
                f"--- tail of {self.log_file} ---\n{log_tail}"
            )
            # A timed-out start may leave a postmaster behind.
            self._stop_server(bin_dir)
            if "could not bind" not in log_tail and "already in use" not in log_tail:
                break  # not a port race: retrying will not help
        raise RuntimeError(last_error)

    def _postmaster_pid(self) -> int | None:
        assert self.data_dir is not None
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first_line.strip())
        except (OSError, IndexError, ValueError):
            return None

    def _is_our_postmaster(self, pid: int) -> bool:
        """Guard against a stale pid file naming a recycled pid."""
        assert self.data_dir is not None
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return os.fsencode(self.data_dir) in cmdline

    def _stop_server(self, bin_dir: pathlib.Path | None) -> None:
        if self.data_dir is None or not (self.data_dir / "postmaster.pid").exists():
            return
        if bin_dir is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run(
                    bin_dir / "pg_ctl",
                    "-w",
                    "-t",
                    str(_PG_CTL_WAIT),
                    "-D",
                    self.data_dir,
                    "-m",
                    "immediate",
                    "stop",
                    timeout=_PG_CTL_WAIT + 30,
                )
        # Last resort: the pid file survived, so signal that very postmaster.
        pid = self._postmaster_pid()
        if pid is None or not self._is_our_postmaster(pid):
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            except PermissionError:
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def _teardown(self) -> None:
        try:
            self._stop_server(self._bin_dir)
        finally:
            self._running = False
            self._port = None
            for path in self._cleanup:
                shutil.rmtree(path, ignore_errors=True)
            self._cleanup.clear()
            self.root = self.data_dir = self.socket_dir = self.log_file = None
