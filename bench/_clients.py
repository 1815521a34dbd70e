"""The client half of the server benchmarks, one scenario in a process of its own.

    python bench/_clients.py KIND URL SCENARIO ARGS_JSON

KIND is ``modelreg`` (run with modelreg's interpreter; URL is the server) or ``mlflow``
(run with the interpreter of ``bench/.venv-mlflow``, which has no modelreg). Both go
through the same scenario code with an adapter over each project's own Python client, so
both servers see the same calls in the same order. The result is one JSON object on the
last line of stdout, with the process's peak RSS (VmHWM) in KiB.

Scenarios:

- ``metadata``: create models, create versions, transitions, reads, aliases and searches
  at a small registry, then grows it and searches again; every call timed.
- ``loop``: resolve production versions for ``duration`` seconds, after printing
  ``ready`` and reading one line from stdin (so that many such processes start together).
- ``latency``: one model, then ``calls`` timed resolves over one kept-alive connection.
- ``transfer``: upload a file and download it again, ``repeat`` times.

Only the standard library is imported at the top: each adapter imports its client.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

NAME = "m-{:04d}"
ALIAS = "champion"
# Matches m-0100 to m-0199: 100 models whatever the registry's size.
SEARCH_FILTER = "name LIKE 'm-01%'"
# Matches every benchmark model: one page per PAGE_SIZE models.
ALL_FILTER = "name LIKE 'm-%'"
TRANSFER_MODEL = "transfer"
TINY = b"tiny model for metadata benchmarks\n"


class Adapter(Protocol):
    """The operations measured, through one project's own Python client."""

    def create_model(self, name: str) -> None: ...
    def create_version(self, name: str) -> int: ...
    def transition(self, name: str, version: int, stage: str) -> None: ...
    def resolve_production(self, name: str) -> int: ...
    def set_alias(self, name: str, alias: str, version: int) -> None: ...
    def get_by_alias(self, name: str, alias: str) -> int: ...
    def search_page(
        self, filter: str, page_size: int, token: str | None
    ) -> tuple[int, str | None]: ...
    def upload(self, path: Path) -> str: ...
    def download(self, handle: str, dest: Path) -> None: ...
    def close(self) -> None: ...


class ModelregAdapter:
    """modelreg's remote SDK: ``modelreg.connect(URL)``."""

    def __init__(self, url: str, work: Path) -> None:
        import modelreg

        self.reg = modelreg.connect(url)
        self.tiny = work / "tiny" / "model.bin"
        self.tiny.parent.mkdir()
        self.tiny.write_bytes(TINY)

    def create_model(self, name: str) -> None:
        self.reg.create_model(name)

    def create_version(self, name: str) -> int:
        return self.reg.register(name, self.tiny).version

    def transition(self, name: str, version: int, stage: str) -> None:
        self.reg.transition(f"{name}/{version}", stage)

    def resolve_production(self, name: str) -> int:
        return self.reg.resolve(f"{name}@production").version

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.reg.set_alias(name, alias, version)

    def get_by_alias(self, name: str, alias: str) -> int:
        return self.reg.resolve(f"{name}@{alias}").version

    def search_page(self, filter: str, page_size: int, token: str | None) -> tuple[int, str | None]:
        page = self.reg.search_models(filter, page_size=page_size, page_token=token)
        return len(page.items), page.next_page_token

    def upload(self, path: Path) -> str:
        return self.reg.register(TRANSFER_MODEL, path).ref

    def download(self, handle: str, dest: Path) -> None:
        self.reg.pull(handle, dest)

    def close(self) -> None:
        self.reg.close()


class MlflowAdapter:
    """MLflow's ``MlflowClient(tracking_uri=URL)``; versions point at a run's ``model``
    folder (``runs:/RUN/model`` with that run's id), the usual way to register."""

    def __init__(self, url: str, work: Path) -> None:
        # transition_model_version_stage and get_latest_versions are deprecated (stages
        # gave way to aliases in MLflow 2.9) but still served; their warnings are noise.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from mlflow import MlflowClient  # type: ignore[import-not-found]

        # After the import: importing mlflow configures its loggers (INFO on stderr).
        logging.getLogger("mlflow").setLevel(logging.WARNING)

        self.client: Any = MlflowClient(tracking_uri=url)
        self.experiment = str(self.client.create_experiment(f"bench-{os.getpid()}"))
        self.run_id = str(self.client.create_run(self.experiment).info.run_id)

    def create_model(self, name: str) -> None:
        self.client.create_registered_model(name)

    def create_version(self, name: str) -> int:
        source = f"runs:/{self.run_id}/model"
        return int(self.client.create_model_version(name, source, run_id=self.run_id).version)

    def transition(self, name: str, version: int, stage: str) -> None:
        self.client.transition_model_version_stage(name, str(version), stage.capitalize())

    def resolve_production(self, name: str) -> int:
        return int(self.client.get_latest_versions(name, stages=["Production"])[0].version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def get_by_alias(self, name: str, alias: str) -> int:
        return int(self.client.get_model_version_by_alias(name, alias).version)

    def search_page(self, filter: str, page_size: int, token: str | None) -> tuple[int, str | None]:
        page = self.client.search_registered_models(
            filter_string=filter, max_results=page_size, page_token=token
        )
        return len(page), (str(page.token) if page.token else None)

    def upload(self, path: Path) -> str:
        run_id = str(self.client.create_run(self.experiment).info.run_id)
        self.client.log_artifact(run_id, str(path))
        return f"{run_id}/{path.name}"

    def download(self, handle: str, dest: Path) -> None:
        run_id, name = handle.split("/", 1)
        dest.mkdir(parents=True, exist_ok=True)
        self.client.download_artifacts(run_id, name, str(dest))

    def close(self) -> None:
        pass


class Recorder:
    """Per-call seconds and the wall time of each series, by key."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.elapsed: dict[str, float] = {}

    def series(self, key: str, calls: Sequence[Callable[[], object]]) -> None:
        """Run and time every call of one series."""
        samples = self.samples.setdefault(key, [])
        start = time.perf_counter()
        for call in calls:
            before = time.perf_counter()
            call()
            samples.append(time.perf_counter() - before)
        self.elapsed[key] = self.elapsed.get(key, 0.0) + time.perf_counter() - start


def metadata(adapter: Adapter, args: dict[str, Any]) -> dict[str, Any]:
    """Every metadata operation at ``small`` models, then searches again at ``large``."""
    small, large, warmup = int(args["small"]), int(args["large"]), int(args["warmup"])
    page_size, rounds = int(args["page_size"]), int(args["page_rounds"])
    rng = random.Random(42)
    names = [NAME.format(i) for i in range(large)]
    warm = [f"warm-{i}" for i in range(warmup)]
    for name in warm:  # untimed: connections, caches, first-request costs
        adapter.create_model(name)
        version = adapter.create_version(name)
        adapter.transition(name, version, "staging")
        adapter.transition(name, version, "production")
        adapter.resolve_production(name)
        adapter.set_alias(name, ALIAS, version)
        adapter.get_by_alias(name, ALIAS)
        adapter.search_page(SEARCH_FILTER, page_size, None)
    rec = Recorder()
    first = names[:small]
    rec.series("create_model", [partial(adapter.create_model, n) for n in first])
    versions: dict[str, int] = {}

    def create_version(name: str) -> None:
        versions[name] = adapter.create_version(name)

    rec.series("create_version", [partial(create_version, n) for n in first])
    # modelreg's default lifecycle goes through staging on the way to production.
    for stage in ("staging", "production"):
        calls = [partial(adapter.transition, n, versions[n], stage) for n in first]
        rec.series(f"transition_{stage}", calls)
    picks = [rng.choice(first) for _ in range(small)]
    rec.series("resolve_production", [partial(adapter.resolve_production, n) for n in picks])
    rec.series("set_alias", [partial(adapter.set_alias, n, ALIAS, versions[n]) for n in first])
    rec.series("get_by_alias", [partial(adapter.get_by_alias, n, ALIAS) for n in picks])
    pages: dict[str, list[list[float]]] = {}
    search_calls = int(args["search_calls"])

    def searches(size: int) -> None:
        counts = set()

        def search() -> None:
            counts.add(adapter.search_page(SEARCH_FILTER, page_size, None)[0])

        rec.series(f"search_{size}", [search] * search_calls)
        expected = sum(1 for name in names[:size] if name.startswith("m-01"))
        if counts != {min(expected, page_size)}:
            raise RuntimeError(f"search returned {counts} models, expected {expected}")
        pages[str(size)] = [every_page(adapter, page_size, size) for _ in range(rounds)]

    searches(small)
    rest = names[small:]
    rec.series("create_model_more", [partial(adapter.create_model, n) for n in rest])
    searches(large)
    return {"samples": rec.samples, "elapsed": rec.elapsed, "pages": pages}


def every_page(adapter: Adapter, page_size: int, expected: int) -> list[float]:
    """Seconds per page of the search matching every benchmark model, page by page."""
    seconds, seen, token = [], 0, None
    while True:
        before = time.perf_counter()
        count, token = adapter.search_page(ALL_FILTER, page_size, token)
        seconds.append(time.perf_counter() - before)
        seen += count
        if not token:
            break
    if seen != expected:
        raise RuntimeError(f"paging saw {seen} models, expected {expected}")
    return seconds


def loop(adapter: Adapter, args: dict[str, Any]) -> dict[str, Any]:
    """Resolve random production versions for ``duration`` seconds after a go line."""
    rng = random.Random(os.getpid())
    names = [NAME.format(i) for i in range(int(args["models"]))]
    for _ in range(5):
        adapter.resolve_production(rng.choice(names))
    print("ready", flush=True)
    sys.stdin.readline()
    samples = []
    deadline = time.perf_counter() + float(args["duration"])
    while (now := time.perf_counter()) < deadline:
        adapter.resolve_production(rng.choice(names))
        samples.append(time.perf_counter() - now)
    return {"samples": samples}


def latency(adapter: Adapter, args: dict[str, Any]) -> dict[str, Any]:
    """One model in production, then ``calls`` timed resolves, one after another."""
    name = "latency"
    adapter.create_model(name)
    version = adapter.create_version(name)
    adapter.transition(name, version, "staging")
    adapter.transition(name, version, "production")
    for _ in range(20):
        adapter.resolve_production(name)
    rec = Recorder()
    rec.series("resolve", [lambda: adapter.resolve_production(name)] * int(args["calls"]))
    return {"samples": rec.samples["resolve"], "elapsed": rec.elapsed["resolve"]}


def transfer(adapter: Adapter, args: dict[str, Any]) -> dict[str, Any]:
    """Upload ``file`` and download it again, ``repeat`` times; before each upload its
    first 16 bytes are rewritten, so that no upload is deduplicated."""
    source, work = Path(args["file"]), Path(args["work"])
    size = source.stat().st_size
    up, down = [], []
    for run in range(int(args["repeat"])):
        with open(source, "r+b") as out:
            out.write(os.urandom(16))
        before = time.perf_counter()
        handle = adapter.upload(source)
        up.append(time.perf_counter() - before)
        dest = work / f"download-{run}"
        before = time.perf_counter()
        adapter.download(handle, dest)
        down.append(time.perf_counter() - before)
        got = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
        if got != size:
            raise RuntimeError(f"downloaded {got} bytes, expected {size}")
        shutil.rmtree(dest)
    return {"upload": up, "download": down}


SCENARIOS: dict[str, Callable[[Adapter, dict[str, Any]], dict[str, Any]]] = {
    "metadata": metadata,
    "loop": loop,
    "latency": latency,
    "transfer": transfer,
}


def peak_kib() -> int:
    """This process's peak resident set size (VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM missing from /proc/self/status")


def main(argv: list[str]) -> None:
    if len(argv) != 4 or argv[0] not in ("modelreg", "mlflow") or argv[2] not in SCENARIOS:
        raise SystemExit(__doc__)
    kind, url, scenario, raw = argv
    args = json.loads(raw)
    with tempfile.TemporaryDirectory(prefix="client-") as tmp:
        adapter: Adapter
        if kind == "mlflow":
            adapter = MlflowAdapter(url, Path(tmp))
        else:
            adapter = ModelregAdapter(url, Path(tmp))
        try:
            result = SCENARIOS[scenario](adapter, args)
        finally:
            adapter.close()
    result["peak_kib"] = peak_kib()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
