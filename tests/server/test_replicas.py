"""Scale-out: two ``modelreg serve`` replicas over one PostgreSQL database and one blob store
(a shared folder, then an S3 bucket).

Concurrent clients register versions of the same models through both replicas: version
numbers must come out dense and unique, every version must pull and verify through either
replica, and concurrent promotions must never leave two production versions of a model.

The replicas start at the same moment, so they also migrate the fresh schema at the same
time. Clients that register are separate processes (spawned, as independent programs
would be); promoters are threads, each with its own connection to a replica.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import sqlalchemy as sa

import modelreg
import s3server
from modelreg.domain.audit import GENESIS
from modelreg.store import tables

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

StartServers = Callable[..., list[str]]
CLIENTS = 6
ROUNDS = 5  # registrations per client
MODELS = ("alpha", "beta")
# In every registration: the same file, uploaded concurrently through both replicas.
SHARED = b"a vocabulary every registration ships\n" * 200
# In every client's last registration: the same weights.
BASELINE = bytes(range(256)) * 128

# (model, version, source folder, client) for one registration
Registered = tuple[str, int, str, int]


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if sa.inspect(conn).has_table("models"):
            names = ", ".join(t.name for t in tables.metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            conn.execute(sa.insert(tables.audit_head).values(id=1, seq=0, hash=GENESIS))
    engine.dispose()


@pytest.fixture(scope="module", params=["folder", "s3"])
def replicas(
    request: pytest.FixtureRequest,
    postgres_url: str,
    start_module_servers: StartServers,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, str]:
    """Two servers over one empty database and one blob store, a shared folder or an S3
    bucket: A with two workers, B with one. Tests share them and work on models of their
    own. Over S3, clients move blob bytes straight to and from the bucket."""
    _truncate(postgres_url)
    env = {"MODELREG_URI": postgres_url}
    if request.param == "folder":
        env["MODELREG_ARTIFACTS"] = str(tmp_path_factory.mktemp("shared") / "blobs")
    else:
        server: s3server.S3Server = request.getfixturevalue("s3_server")
        env.update(server.env(), MODELREG_ARTIFACTS=f"s3://{server.new_bucket()}/blobs")
    a, b = start_module_servers(env, workers=(2, 1))
    return a, b


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# ------------------------------------------------------------- in the client processes

_start: Barrier | None = None


def _init_client(start: Barrier) -> None:
    global _start
    _start = start


def _register_through(client: int, url: str, folders: list[str]) -> list[Registered]:
    """One client: wait for the others, then register each folder through ``url``."""
    assert _start is not None
    done: list[Registered] = []
    with modelreg.connect(url, user=f"client-{client}") as registry:
        registry.info()  # connected before the race starts
        _start.wait(timeout=60)
        for round_, folder in enumerate(folders):
            model = MODELS[(client + round_) % len(MODELS)]
            version = registry.register(model, folder, metrics={"client": client, "round": round_})
            done.append((model, version.version, folder, client))
    return done


# ---------------------------------------------------------------------------- tests


def test_concurrent_clients_register_through_both_replicas(
    replicas: tuple[str, str], tmp_path: Path
) -> None:
    a, b = replicas
    plan: list[tuple[int, str, list[str]]] = []
    for client in range(CLIENTS):
        folders = []
        for round_ in range(ROUNDS):
            weights = BASELINE if round_ == ROUNDS - 1 else f"c{client}r{round_}".encode() * 4096
            files = {
                "weights.bin": weights,
                "shared/vocab.txt": SHARED,
                "params.json": json.dumps({"client": client, "round": round_}).encode(),
            }
            folders.append(str(write_tree(tmp_path / f"c{client}" / f"r{round_}", files)))
        plan.append((client, (a, b)[client % 2], folders))

    context = mp.get_context("spawn")
    start = context.Barrier(CLIENTS)
    with context.Pool(CLIENTS, initializer=_init_client, initargs=(start,)) as pool:
        results = pool.starmap(_register_through, plan, chunksize=1)
    registrations = [item for chunk in results for item in chunk]
    assert len(registrations) == CLIENTS * ROUNDS

    # Dense and unique per model: each registration got its own number, and no gaps.
    for model in MODELS:
        numbers = sorted(v for m, v, _, _ in registrations if m == model)
        assert numbers == list(range(1, len(numbers) + 1)), (model, numbers)

    expected_blobs = {
        hashlib.sha256(data).hexdigest()
        for _, _, folder, _ in registrations
        for data in read_tree(Path(folder)).values()
    }
    # unique weights, the baseline weights, the shared vocabulary, unique params
    assert len(expected_blobs) == CLIENTS * (ROUNDS - 1) + 1 + 1 + CLIENTS * ROUNDS

    with (
        modelreg.connect(a, user="checker") as via_a,
        modelreg.connect(b, user="checker") as via_b,
    ):
        for model in MODELS:
            listed_a = sorted(v.version for v in via_a.list_versions(model).all())
            listed_b = sorted(v.version for v in via_b.list_versions(model).all())
            mine = sorted(v for m, v, _, _ in registrations if m == model)
            assert listed_a == listed_b == mine

        def check(item: Registered) -> None:
            model, number, folder, client = item
            expected = read_tree(Path(folder))
            for label, registry in (("a", via_a), ("b", via_b)):
                ref = f"{model}/{number}"
                version = registry.get(ref)
                assert version.created_by == f"client-{client}", (label, ref)
                assert version.metrics["client"] == client, (label, ref)
                dest = tmp_path / "pulled" / label / model / str(number)
                registry.pull(ref, dest)
                assert read_tree(dest) == expected, (label, ref)

        with ThreadPoolExecutor(max_workers=3) as checkers:
            list(checkers.map(check, registrations))

        for registry in (via_a, via_b):
            report = registry.verify()
            assert report.ok, report.problems
            assert report.checked_blobs >= len(expected_blobs)
            # Writers through both replicas appended to one audit chain, in one order.
            audit = registry.audit_verify()
            assert audit.ok, audit.problem
            assert audit.records == audit.head_seq > len(registrations)


def test_concurrent_promotions_leave_one_production_version(
    replicas: tuple[str, str], tmp_path: Path
) -> None:
    a, b = replicas
    count = 6
    with modelreg.connect(a, user="setup") as registry:
        for number in range(1, count + 1):
            folder = write_tree(tmp_path / f"v{number}", {"w.bin": f"weights {number}".encode()})
            assert registry.register("contested", folder).version == number
            registry.transition(f"contested/{number}", "staging")

    in_production = "name = 'contested' AND stage = 'production'"
    start = threading.Barrier(count + 1)  # the promoters and the watcher
    finished = threading.Event()
    seen: list[int] = []

    def promote(number: int) -> str:
        url = (a, b)[number % 2]
        with modelreg.connect(url, user=f"promoter-{number}") as registry:
            registry.info()
            start.wait(timeout=30)
            return registry.transition(
                f"contested/{number}", "production", reason=f"race {number}"
            ).stage

    def watch() -> None:
        """Look through both replicas while the promotions run: at most one in production."""
        with modelreg.connect(a) as via_a, modelreg.connect(b) as via_b:
            via_a.info()
            via_b.info()
            start.wait(timeout=30)
            while True:
                for registry in (via_a, via_b):
                    seen.append(len(registry.search_versions(filter=in_production).items))
                if finished.is_set():
                    break

    with ThreadPoolExecutor(max_workers=count + 1) as pool:
        watcher = pool.submit(watch)
        outcomes = list(pool.map(promote, range(1, count + 1)))
        finished.set()
        watcher.result()
    assert outcomes == ["production"] * count
    assert seen
    assert max(seen) <= 1

    with (
        modelreg.connect(a, user="checker") as via_a,
        modelreg.connect(b, user="checker") as via_b,
    ):
        holders = [
            [v.version for v in registry.search_versions(filter=in_production).items]
            for registry in (via_a, via_b)
        ]
        assert len(holders[0]) == 1
        assert holders[0] == holders[1]
        (winner,) = holders[0]
        assert via_b.resolve("contested@production").version == winner
        assert via_a.get_model("contested").stage_holders == {"production": winner}
        stages = {v.version: v.stage for v in via_b.list_versions("contested").all()}
        assert stages == {n: "production" if n == winner else "archived" for n in stages}

        events = [e for e in via_a.history("contested").all() if e.kind == "stage_changed"]
        promotions = [e for e in events if e.to_stage == "production"]
        # Every promotion is in the history, by its promoter, in the order they committed.
        assert sorted(e.version or 0 for e in promotions) == list(range(1, count + 1))
        for event in promotions:
            assert event.from_stage == "staging"
            assert (event.actor, event.reason) == (
                f"promoter-{event.version}",
                f"race {event.version}",
            )
        assert promotions[-1].version == winner
        # Each promotion but the first displaced the one committed just before it.
        displaced = [e for e in events if e.from_stage == "production"]
        order = [e.version for e in promotions]
        assert [(e.version, e.to_stage) for e in displaced] == [(n, "archived") for n in order[:-1]]
        for event, successor in zip(displaced, order[1:], strict=True):
            assert event.details.get("displaced_by") == successor
            assert event.reason == f"replaced in production by contested/{successor}"


def test_replicas_agree_on_a_registration_made_through_the_other(
    replicas: tuple[str, str], tmp_path: Path
) -> None:
    """The simplest read-your-writes across replicas, with an alias and a transition."""
    a, b = replicas
    source = write_tree(tmp_path / "m", {"w.bin": b"cross-replica weights"})
    with modelreg.connect(a, user="writer") as via_a, modelreg.connect(b) as via_b:
        version = via_a.register("crossed", source)
        via_b.set_alias("crossed", "candidate", version.version)
        assert via_a.resolve("crossed@candidate").version == version.version
        via_b.transition("crossed@candidate", "staging")
        assert via_a.get("crossed/1").stage == "staging"
        via_a.pull("crossed@candidate", tmp_path / "out")
        assert read_tree(tmp_path / "out") == {"w.bin": b"cross-replica weights"}
