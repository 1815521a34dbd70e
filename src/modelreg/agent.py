"""The deployment agent: keeps a folder serving the version that holds a stage.

``modelreg agent --model fraud --stage production --dir /srv/fraud --env prod-eu``

Layout of ``--dir``::

    current -> fraud-7-3f2a9c1b04de     the symlink a model server reads
    fraud-7-3f2a9c1b04de/               one folder per deployed version, verified
    .modelreg-agent.json                the agent's state: feed cursor, what it deployed

The agent follows the event feed. Whenever an event may have changed who holds the
stage, and once at start-up, it *reconciles*: it asks which version holds the stage now
and, if that is not what ``current`` points at, pulls it (every byte verified, into a
hidden folder renamed into place only when complete), switches ``current`` atomically
(a new symlink under a temporary name, then ``os.replace``) and records the deployment.

Crash safety: reconciling compares the registry with what ``current`` really points at,
so it is idempotent. Restarting after any crash catches up with every promotion made
meanwhile (only the newest holder is deployed) and never switches twice to one version.
The cursor is saved only after a reconcile, so an event is never skipped. A download that
fails verification is refused: ``current`` keeps pointing at the old version, the failure
is recorded once for that version, and the agent tries again on its next round.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from modelreg.artifacts import files
from modelreg.domain.entities import ModelVersion
from modelreg.domain.names import validate_model_name
from modelreg.errors import ModelregError, NotFound, StorageError
from modelreg.protocol import Registry

log = logging.getLogger("modelreg.agent")

LINK = "current"
STATE_FILE = ".modelreg-agent.json"
# The event kinds that can change which version holds a stage.
KINDS = ("stage_changed", "version_deleted", "model_deleted")


@dataclass
class AgentState:
    """What the agent remembers between runs."""

    cursor: int = 0  # the last event id handled
    version: int | None = None  # the version ``current`` was switched to
    recorded: bool = False  # whether that deployment was recorded in the registry
    failed_version: int | None = None  # a version whose deployment failure was recorded


def folder_name(version: ModelVersion) -> str:
    """The folder of a deployed version: name, number and the start of its digest."""
    digest = version.manifest_digest.removeprefix("sha256:")[:12]
    return f"{version.name}-{version.version}-{digest}"


class Agent:
    """Keeps ``directory/current`` pointing at the holder of ``model@stage``."""

    def __init__(
        self,
        registry: Registry,
        *,
        model: str,
        stage: str,
        directory: str | os.PathLike[str],
        environment: str,
        wait: float = 30.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.model = validate_model_name(model)
        self.stage = stage.lower()
        self.dir = Path(directory)
        self.environment = environment
        self.wait = wait
        self.say = say or log.info
        self.note = f"modelreg agent on {socket.gethostname()}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.dir}: {exc.strerror}") from exc
        self.state = self._load()

    # ------------------------------------------------------------------ running

    def run(self, *, rounds: int | None = None) -> None:
        """Reconcile, then follow the feed (``rounds`` long polls, or forever)."""
        self.check_environment()
        pending = not self.reconcile()
        done = 0
        while rounds is None or done < rounds:
            pending = self.step(pending)
            done += 1

    def step(self, pending: bool = False) -> bool:
        """One long poll of the feed; reconcile if an event may have moved the stage or
        a previous attempt failed. Returns whether an attempt is still pending."""
        batch = self.registry.events(
            after=self.state.cursor, wait=self.wait, model=self.model, kinds=KINDS
        )
        if pending or any(self._relevant(e.kind, e.from_stage, e.to_stage) for e in batch.events):
            pending = not self.reconcile()
        # Saved after reconciling: a crash before this line re-reads the same events.
        self.state.cursor = batch.cursor
        self._save()
        return pending

    def _relevant(self, kind: str, from_stage: str | None, to_stage: str | None) -> bool:
        if kind == "stage_changed":
            return self.stage in (from_stage, to_stage)
        return True

    def reconcile(self) -> bool:
        """Make ``current`` serve the stage's holder; False if that failed (and the old
        version keeps serving)."""
        try:
            holder = self.registry.resolve(f"{self.model}@{self.stage}")
        except NotFound:
            self.say(f"no version of {self.model} is in {self.stage}; nothing to deploy")
            return True
        except ModelregError as exc:
            self.say(f"cannot ask the registry: {exc}")
            return False
        try:
            self._deploy(holder)
        except ModelregError as exc:
            self.say(f"refused {holder.ref}: {exc}; {self._serving()} keeps serving")
            self._record_failure(holder, exc)
            return False
        if self.state.recorded:
            return True
        try:
            self._record(holder)
        except ModelregError as exc:
            self.say(f"{holder.ref} is serving, but recording it failed: {exc}")
            return False
        return True

    def check_environment(self) -> None:
        """NotFound unless the environment exists: found before anything is switched."""
        if not any(e.name == self.environment for e in self.registry.list_environments().all()):
            raise NotFound(
                f"environment {self.environment!r} does not exist; create it with "
                f"`modelreg env create {self.environment}`"
            )

    # --------------------------------------------------------------- deploying

    def _deploy(self, version: ModelVersion) -> None:
        """Pull (unless present) and switch to ``version``; a no-op when it is current."""
        name = folder_name(version)
        if self.linked() == name:
            if self.state.version != version.version:
                # Switched before a crash that lost the state: not known to be recorded.
                self.state.version, self.state.recorded = version.version, False
            return
        final = self.dir / name
        if not final.is_dir():
            self._pull(version, final)
        self._switch(name)
        self.state.version, self.state.recorded = version.version, False
        self._save()
        self.say(f"switched {self.dir / LINK} to {version.ref}")

    def _pull(self, version: ModelVersion, final: Path) -> None:
        incoming = self.dir / f".incoming-{uuid.uuid4().hex}"
        try:
            # Pinned by number: the stage may move on while the bytes download.
            self.registry.pull(version.ref, incoming)
            # A pull leaves small files in the page cache: flushed here, or a power cut
            # after the switch could leave ``current`` naming files that never reached
            # the disk, and a restart would keep them (the folder exists).
            files.sync_tree(incoming)
            os.rename(incoming, final)
            files.fsync_dir(self.dir)  # the folder's name is durable before a link names it
        except OSError as exc:
            raise StorageError(f"cannot place {version.ref} in {final}: {exc}") from exc
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def _switch(self, name: str) -> None:
        temporary = self.dir / f".{LINK}-{uuid.uuid4().hex}"
        try:
            os.symlink(name, temporary)
            # rename(2) replaces the old link in one step: readers see old or new.
            os.replace(temporary, self.dir / LINK)
            files.fsync_dir(self.dir)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StorageError(f"cannot switch {self.dir / LINK}: {exc}") from exc

    def _record(self, version: ModelVersion) -> None:
        self.registry.record_deployment(version.ref, self.environment, note=self.note)
        self.state.recorded = True
        self.state.failed_version = None
        self._save()

    def _record_failure(self, version: ModelVersion, exc: ModelregError) -> None:
        if self.state.failed_version == version.version:
            return  # recorded once per version, not on every retry
        try:
            self.registry.record_deployment(
                version.ref, self.environment, status="failed", note=f"{exc.code}: {exc}"[:2000]
            )
        except ModelregError as again:
            self.say(f"cannot record the failure: {again}")
            return
        self.state.failed_version = version.version
        self._save()

    # ------------------------------------------------------------------- disk

    def linked(self) -> str | None:
        """The folder ``current`` points at, if any."""
        try:
            return os.readlink(self.dir / LINK)
        except OSError:
            return None

    def _serving(self) -> str:
        return self.linked() or "nothing"

    def _load(self) -> AgentState:
        path = self.dir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return AgentState()
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the agent state {path}: {exc}") from exc
        if not isinstance(data, dict) or set(data) - set(asdict(AgentState())):
            raise StorageError(f"{path} is not an agent state file")
        return AgentState(**data)

    def _save(self) -> None:
        path = self.dir / STATE_FILE
        temporary = path.with_name(f"{STATE_FILE}.{uuid.uuid4().hex}")
        try:
            with open(temporary, "w") as out:
                json.dump(asdict(self.state), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StorageError(f"cannot save the agent state {path}: {exc}") from exc
