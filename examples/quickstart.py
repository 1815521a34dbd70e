"""End to end on the embedded registry: train, register two versions, promote, compare, pull.

Uses a data set that ships with scikit-learn, so it runs offline. Run it through
``scripts/quickstart`` or directly: ``python examples/quickstart.py``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

import modelreg

MODEL = "breast-cancer-rf"


def code_commit() -> str | None:
    """The commit this example runs from, when it runs inside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def train(max_depth: int, n_estimators: int, workdir: Path) -> tuple[Path, dict[str, float]]:
    """Train one forest, save it with its feature names, and score it on a holdout split."""
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target
    )
    model = RandomForestClassifier(
        max_depth=max_depth, n_estimators=n_estimators, random_state=0
    ).fit(x_train, y_train)
    folder = workdir / f"rf-depth{max_depth}-n{n_estimators}"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "features.json").write_text(json.dumps(list(data.feature_names)))
    scores = model.predict_proba(x_test)[:, 1]
    metrics = {
        "auc": float(roc_auc_score(y_test, scores)),
        "accuracy": float(accuracy_score(y_test, model.predict(x_test))),
    }
    return folder, metrics


def main() -> None:
    reg = modelreg.connect()  # embedded default: SQLite + blobs under MODELREG_HOME
    where = reg.info()
    print(f"registry: {where['database']}, blobs in {where['artifacts']}")
    data = load_breast_cancer()
    dataset_digest = "sha256:" + hashlib.sha256(data.data.tobytes()).hexdigest()
    lineage: dict[str, Any] = {
        "code_repo": "modelreg/examples",
        "code_commit": code_commit(),
        "dataset": "sklearn.breast_cancer",
        "dataset_version": sklearn.__version__,
        "dataset_digest": dataset_digest,
        "framework": f"sklearn {sklearn.__version__}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        registered = []
        for depth, trees in ((2, 10), (8, 200)):
            folder, metrics = train(depth, trees, Path(tmp))
            run_id = uuid.uuid4().hex
            mv = reg.register(
                MODEL,
                folder,
                metrics=metrics,
                params={"max_depth": depth, "n_estimators": trees},
                lineage={**lineage, "run_id": run_id, "run_uri": f"local:runs/{run_id}"},
                tags={"example": "quickstart"},
                description=f"random forest, depth {depth}, {trees} trees",
            )
            print(f"registered {mv.ref}: auc={metrics['auc']:.4f} files={len(mv.files)}")
            registered.append(mv)

        best = max(registered, key=lambda v: v.metrics["auc"])
        reg.transition(best.ref, "staging", reason="best holdout auc of this run")
        reg.transition(best.ref, "production", reason="quickstart promotion")
        production = reg.resolve(f"{MODEL}@production")
        print(f"{MODEL}@production -> {production.ref}")

        comparison = reg.compare(registered[0].ref, registered[1].ref)
        for diff in comparison.metrics:
            print(f"  {diff.key}: {diff.a:.4f} -> {diff.b:.4f} (delta {diff.delta:+.4f})")

        dest = Path(tmp) / "pulled"
        reg.pull(f"{MODEL}@production", dest)  # raises IntegrityError on any mismatch
        model = pickle.loads((dest / "model.pkl").read_bytes())
        accuracy = float(model.score(data.data, data.target))
        print(f"pulled {production.ref} verified; accuracy on the full data set: {accuracy:.4f}")
    reg.close()


if __name__ == "__main__":
    main()
