"""The deployment agent: switches on promotion, catches up after a restart without a
double switch, refuses a corrupted download while the old version keeps serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg.agent import LINK, STATE_FILE, Agent
from modelreg.artifacts import files
from modelreg.artifacts.local import LocalArtifactStore
from modelreg.config import Config
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import NotFound, StorageError
from modelreg.protocol import Registry

CONSOLE_SCRIPT = Path(sys.executable).with_name("modelreg")


@pytest.fixture
def fleet(reg: Registry, model_dir: Callable[..., Path]) -> Registry:
    """fraud/1..3 in staging, environment prod-eu."""
    for seed in "123":
        mv = reg.register("fraud", model_dir(files={"model.bin": f"weights {seed}".encode()}))
        reg.transition(mv.ref, "staging")
    reg.create_environment("prod-eu")
    return reg


def agent(reg: Registry, directory: Path) -> Agent:
    return Agent(
        reg, model="fraud", stage="production", directory=directory, environment="prod-eu", wait=0
    )


def serving(directory: Path) -> bytes:
    return (directory / LINK / "model.bin").read_bytes()


def deployed(reg: Registry) -> list[tuple[int, str]]:
    """The deployment log, oldest first."""
    log = reg.list_deployments(model="fraud", current=False).all()
    return [(d.version, d.status) for d in reversed(list(log))]


def test_a_promotion_switches_the_link_and_is_recorded(fleet: Registry, tmp_path: Path) -> None:
    target = tmp_path / "srv"
    runner = agent(fleet, target)
    runner.run(rounds=1)
    assert not (target / LINK).exists()  # nothing in production yet
    fleet.transition("fraud/1", "production")
    runner.run(rounds=1)
    assert serving(target) == b"weights 1"
    assert (target / LINK).is_symlink()
    assert not os.path.isabs(os.readlink(target / LINK))
    assert deployed(fleet) == [(1, "deployed")]
    (record,) = fleet.list_deployments(environment="prod-eu").items
    assert (record.ref, record.deployed_by) == ("fraud/1", "alice")
    fleet.transition("fraud/2", "production")
    runner.step()
    assert serving(target) == b"weights 2"
    runner.step()  # nothing new: no second switch, no second record
    assert deployed(fleet) == [(1, "deployed"), (2, "deployed")]
    hidden = [p.name for p in target.iterdir() if p.name.startswith(".")]
    assert hidden == [STATE_FILE]  # no temporary folders or links left behind


def test_pulled_files_are_flushed_before_they_can_be_switched_to(
    fleet: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "srv"
    flushed: list[tuple[Path, list[str], bool]] = []
    real_sync = files.sync_tree

    def sync_tree(root: Path) -> None:
        # What was flushed, and whether ``current`` could already name it.
        contents = sorted(p.name for p in root.iterdir())
        flushed.append((root, contents, (target / LINK).exists()))
        real_sync(root)

    monkeypatch.setattr(files, "sync_tree", sync_tree)
    fleet.transition("fraud/1", "production")
    agent(fleet, target).run(rounds=1)
    assert serving(target) == b"weights 1"
    ((root, contents, switched),) = flushed
    assert root.parent == target
    assert root.name.startswith(".incoming-")
    assert contents == ["model.bin"]
    assert not switched


def test_after_a_restart_the_agent_catches_up_once(fleet: Registry, tmp_path: Path) -> None:
    target = tmp_path / "srv"
    fleet.transition("fraud/1", "production")
    agent(fleet, target).run(rounds=1)
    assert serving(target) == b"weights 1"
    # Stopped: two promotions happen meanwhile.
    fleet.transition("fraud/2", "production")
    fleet.transition("fraud/3", "production")
    restarted = agent(fleet, target)
    assert restarted.state.version == 1
    restarted.run(rounds=2)
    assert serving(target) == b"weights 3"
    assert deployed(fleet) == [(1, "deployed"), (3, "deployed")]
    # Restarting again changes nothing.
    agent(fleet, target).run(rounds=1)
    assert deployed(fleet) == [(1, "deployed"), (3, "deployed")]


def test_a_switch_whose_record_was_lost_is_recorded_without_switching_again(
    fleet: Registry, tmp_path: Path
) -> None:
    target = tmp_path / "srv"
    fleet.transition("fraud/1", "production")
    agent(fleet, target).run(rounds=0)
    link_before = os.lstat(target / LINK)
    (target / STATE_FILE).unlink()  # as if the process died right after the switch
    agent(fleet, target).run(rounds=0)
    assert os.lstat(target / LINK).st_ino == link_before.st_ino
    assert deployed(fleet) == [(1, "deployed"), (1, "deployed")]


def test_a_corrupted_download_is_refused_and_the_old_version_keeps_serving(
    fleet: Registry, backing: EmbeddedRegistry, tmp_path: Path
) -> None:
    target = tmp_path / "srv"
    fleet.transition("fraud/1", "production")
    runner = agent(fleet, target)
    runner.run(rounds=0)
    blob = fleet.get("fraud/2").files[0]
    assert isinstance(backing.blobs, LocalArtifactStore)
    path = backing.blobs.path_of(blob.sha256)
    good = path.read_bytes()
    path.write_bytes(b"X" * len(good))  # same size, other bytes
    fleet.transition("fraud/2", "production")
    pending = runner.step()
    assert pending
    assert serving(target) == b"weights 1"
    assert runner.step(pending)  # still refused, and not recorded twice
    assert deployed(fleet) == [(1, "deployed"), (2, "failed")]
    failure = fleet.list_deployments(model="fraud", current=False).items[0]
    assert "INTEGRITY_ERROR" in failure.note
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [LINK, STATE_FILE, os.readlink(target / LINK)]
    )
    path.write_bytes(good)  # repaired: the next round deploys it
    assert not runner.step(True)
    assert serving(target) == b"weights 2"
    assert deployed(fleet) == [(1, "deployed"), (2, "failed"), (2, "deployed")]


def test_an_unknown_environment_is_refused_before_anything_happens(
    fleet: Registry, tmp_path: Path
) -> None:
    fleet.transition("fraud/1", "production")
    runner = Agent(fleet, model="fraud", stage="production", directory=tmp_path, environment="x")
    with pytest.raises(NotFound, match="environment 'x' does not exist"):
        runner.run(rounds=0)
    assert not (tmp_path / LINK).exists()


def test_a_damaged_state_file_is_an_error(fleet: Registry, tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(StorageError, match="agent state"):
        agent(fleet, tmp_path)


@pytest.mark.slow
def test_the_agent_command_follows_the_feed_and_resumes(tmp_path: Path) -> None:
    home, target = tmp_path / "home", tmp_path / "srv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env.update(MODELREG_HOME=str(home), MODELREG_USER="deployer", MODELREG_FSYNC="false")
    reg = EmbeddedRegistry(Config.load(env))
    try:
        for seed in "12":
            path = tmp_path / f"m{seed}"
            path.mkdir()
            (path / "model.bin").write_bytes(f"weights {seed}".encode())
            reg.register("fraud", path)
            reg.transition(f"fraud/{seed}", "staging")
        reg.create_environment("prod-eu")
        command = [
            str(CONSOLE_SCRIPT),
            "agent",
            "--model",
            "fraud",
            "--dir",
            str(target),
            "--env",
            "prod-eu",
            "--wait",
            "1",
        ]

        log = tmp_path / "agent.log"

        def start() -> subprocess.Popen[bytes]:
            with open(log, "ab") as sink:
                return subprocess.Popen(command, env=env, stdout=sink, stderr=sink)

        process = start()
        try:
            reg.transition("fraud/1", "production")
            # Switched and recorded (the record follows the switch by a moment).
            _wait_for(lambda: deployed(reg) == [(1, "deployed")], process, log)
            assert serving(target) == b"weights 1"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
        reg.transition("fraud/2", "production")  # while the agent is stopped
        process = start()
        try:
            _wait_for(lambda: len(deployed(reg)) == 2, process, log)
            assert serving(target) == b"weights 2"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
        assert deployed(reg) == [(1, "deployed"), (2, "deployed")]
        assert {d.deployed_by for d in reg.list_deployments()} == {"deployer"}
    finally:
        reg.close()


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if process.poll() is not None:
            pytest.fail(f"agent exited {process.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the agent did not switch in time: {log.read_text()}")
        time.sleep(0.1)
