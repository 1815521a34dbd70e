"""Reads: resolve references and load whole models and versions in few round trips."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from modelreg.domain.entities import Lineage, Model, ModelVersion, ParamValue
from modelreg.domain.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from modelreg.domain.manifest import FileEntry
from modelreg.domain.refs import LATEST, Ref
from modelreg.errors import NotFound
from modelreg.store import tables as t
from modelreg.store.direct import Direct

LIFECYCLE_KEY = "lifecycle"

VERSION_COLUMNS = (*t.versions.c, t.models.c.name.label("model_name"))
VERSION_FROM = t.versions.join(t.models, t.models.c.id == t.versions.c.model_id)


# The statements every read and registration runs go straight to the driver (``direct``).
_LIFECYCLE = Direct(sa.select(t.settings.c.value).where(t.settings.c.key == LIFECYCLE_KEY))
_MODEL_QUERY = sa.select(t.models).where(t.models.c.name == sa.bindparam("name"))
_MODEL = Direct(_MODEL_QUERY)
_MODEL_LOCKED = Direct(_MODEL_QUERY.with_for_update())


def insert_or_skip(dialect: str, table: sa.Table) -> sa.Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``table``: a row whose key exists already
    is left alone. Both databases have it, each through its own dialect's construct."""
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing()


def lifecycle(conn: Connection) -> Lifecycle:
    """The registry's lifecycle (the default until one is set)."""
    found = _LIFECYCLE.first(conn)
    raw = None if found is None else found[0]
    return DEFAULT_LIFECYCLE if raw is None else Lifecycle.from_dict(json.loads(raw))


def model_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
    """The model's row (a named tuple), optionally locked for update; NotFound if
    absent."""
    row = (_MODEL_LOCKED if lock else _MODEL).first(conn, {"name": name})
    if row is None:
        raise NotFound(f"model {name!r} does not exist", model=name)
    return row


# The lookups behind every reference, built once (see _children_query for why).
_OF_MODEL = (
    sa.select(*VERSION_COLUMNS)
    .select_from(VERSION_FROM)
    .where(t.models.c.name == sa.bindparam("name"))
)
_BY_NUMBER = Direct(_OF_MODEL.where(t.versions.c.version == sa.bindparam("number")))
_NEWEST_FIRST = (t.versions.c.version.desc(),)
_LATEST = Direct(_OF_MODEL.order_by(*_NEWEST_FIRST).limit(1))
_IN_STAGE = Direct(
    _OF_MODEL.where(t.versions.c.stage == sa.bindparam("label")).order_by(*_NEWEST_FIRST).limit(1)
)
_BY_ALIAS = Direct(
    _OF_MODEL.join(t.aliases, t.aliases.c.version_id == t.versions.c.id).where(
        t.aliases.c.alias == sa.bindparam("label")
    )
)


def version_row(conn: Connection, ref: Ref, lc: Lifecycle | None = None) -> Any:
    """The version a reference points at; NotFound names what was missing.

    The lifecycle tells stages from aliases; it is read only for such a label when the
    caller has not read it already.
    """
    if ref.version is not None:
        row = _BY_NUMBER.first(conn, {"name": ref.name, "number": ref.version})
        if row is None:
            _raise_missing(conn, ref, f"model {ref.name!r} has no version {ref.version}")
        assert row is not None
        return row
    label = ref.label
    assert label is not None
    if label == LATEST:
        row = _LATEST.first(conn, {"name": ref.name})
        what = f"model {ref.name!r} has no versions"
    elif label in (lc or lifecycle(conn)).stages:
        # A non-exclusive stage may hold several versions: the newest one answers.
        row = _IN_STAGE.first(conn, {"name": ref.name, "label": label})
        what = f"model {ref.name!r} has no version in stage {label!r}"
    else:
        row = _BY_ALIAS.first(conn, {"name": ref.name, "label": label})
        what = f"model {ref.name!r} has no alias or stage {label!r}"
    if row is None:
        _raise_missing(conn, ref, what)
    assert row is not None
    return row


def _raise_missing(conn: Connection, ref: Ref, what: str) -> None:
    model_row(conn, ref.name)  # a missing model is reported as such
    raise NotFound(what, ref=str(ref))


def load_versions(conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
    """Build full versions for rows of VERSION_COLUMNS with one more query for all children."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    children = _children(conn, ids)
    out = []
    for row in rows:
        kids = children[row.id]
        out.append(
            ModelVersion(
                name=row.model_name,
                version=row.version,
                stage=row.stage,
                manifest_digest=row.manifest_digest,
                files=tuple(sorted(kids["files"], key=lambda f: f.path)),
                metrics=dict(kids["metrics"]),
                params=dict(kids["params"]),
                lineage=Lineage(
                    run_id=row.run_id,
                    run_uri=row.run_uri,
                    code_repo=row.code_repo,
                    code_commit=row.code_commit,
                    dataset=row.dataset,
                    dataset_version=row.dataset_version,
                    dataset_digest=row.dataset_digest,
                    framework=row.framework,
                    parents=tuple(ref for _, ref in sorted(kids["parents"])),
                ),
                tags=dict(kids["tags"]),
                description=row.description,
                aliases=tuple(sorted(kids["aliases"])),
                created_at=row.created_at,
                created_by=row.created_by,
                updated_at=row.updated_at,
                stage_changed_at=row.stage_changed_at,
            )
        )
    return out


def _among(dialect: str, column: Any) -> Any:
    """``column`` is one of the ids bound as ``ids`` at execution (see ``_ids``)."""
    # The ids travel as one parameter, an array on PostgreSQL and a JSON array on SQLite:
    # expanding a page of ids into a parameter each re-renders the SQL on every call and
    # costs more in the drivers than the query costs in the database.
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger)))
    listed = sa.func.json_each(sa.bindparam("ids", type_=sa.Text)).table_valued("value")
    return column.in_(sa.select(listed.c.value))


def _ids(conn: Connection, ids: list[int]) -> dict[str, Any]:
    """The ``ids`` parameter for statements built with ``_among``."""
    return {"ids": ids if conn.dialect.name == "postgresql" else json.dumps(ids)}


@functools.cache
def _children_query(dialect: str) -> Direct:
    # Built once per dialect: composing this statement costs more Python time than
    # running it, and a page of versions is the hot path of every read.
    text, num, big = sa.Text(), sa.Float(), sa.BigInteger()

    def part(kind: str, owner: Any, key: Any, s: Any, n: Any, i: Any, u: Any = None) -> Any:
        # The same bind parameter in all six parts: one list of ids per execution.
        return sa.select(
            sa.literal(kind, text).label("kind"),
            owner.label("vid"),
            sa.cast(key, text).label("k"),
            (sa.cast(s, text) if s is not None else sa.cast(sa.null(), text)).label("s"),
            (n if n is not None else sa.cast(sa.null(), num)).label("n"),
            (sa.cast(i, big) if i is not None else sa.cast(sa.null(), big)).label("i"),
            (sa.cast(u, text) if u is not None else sa.cast(sa.null(), text)).label("u"),
        ).where(_among(dialect, owner))

    f, m, p, g, r, a = (
        t.version_files.c,
        t.version_metrics.c,
        t.version_params.c,
        t.version_tags.c,
        t.version_parents.c,
        t.aliases.c,
    )
    return Direct(
        sa.union_all(
            part("f", f.version_id, f.path, f.sha256, None, f.size, f.source),
            part("m", m.version_id, m.key, None, m.value, None),
            part("p", p.version_id, p.key, p.value_json, None, None),
            part("t", g.version_id, g.key, g.value, None, None),
            part("r", r.version_id, r.parent_ref, None, None, r.position),
            part("a", a.version_id, a.alias, None, None, None),
        )
    )


def _children(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    # One UNION ALL instead of six queries: a version page costs two round trips in all.
    query = _children_query(conn.dialect.name)
    out: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"files": [], "metrics": {}, "params": {}, "tags": {}, "parents": [], "aliases": []}
    )
    for kind, vid, key, s, n, i, u in query.all(conn, _ids(conn, ids)):
        bucket = out[vid]
        if kind == "f":
            bucket["files"].append(FileEntry(path=key, size=int(i), sha256=s, source=u))
        elif kind == "m":
            bucket["metrics"][key] = float(n)
        elif kind == "p":
            value: ParamValue = json.loads(s)
            bucket["params"][key] = value
        elif kind == "t":
            bucket["tags"][key] = s
        elif kind == "r":
            bucket["parents"].append((int(i), key))
        else:
            bucket["aliases"].append(key)
    return out


@functools.cache
def _model_children_query(dialect: str) -> Direct:
    # Tags, latest version, exclusive-stage holders and aliases of a page of models in
    # one UNION ALL, built once per dialect like _children_query.
    text, big = sa.Text(), sa.BigInteger()
    m, v, mt, al = t.models.c, t.versions.c, t.model_tags.c, t.aliases.c
    none = sa.cast(sa.null(), text)
    latest = (
        sa.select(sa.func.max(v.version))
        .where(v.model_id == m.id)
        .correlate(t.models)
        .scalar_subquery()
    )

    def row(kind: str, mid: Any, key: Any, value: Any, number: Any) -> tuple[Any, ...]:
        return (
            sa.literal(kind, text).label("kind"),
            mid.label("mid"),
            key.label("k"),
            value.label("s"),
            sa.cast(number, big).label("i"),
        )

    return Direct(
        sa.union_all(
            sa.select(*row("t", mt.model_id, mt.key, mt.value, sa.null())).where(
                _among(dialect, mt.model_id)
            ),
            # A scalar max() per model, answered from the end of the (model_id,
            # version) index: max() grouped over the versions table walked every
            # version of the model, so reading a model with 200,000 versions took 28 ms
            # instead of 0.02. (NULL for a model without versions.)
            sa.select(*row("l", m.id, none, none, latest)).where(_among(dialect, m.id)),
            sa.select(*row("h", v.model_id, v.exclusive_stage, none, v.version)).where(
                _among(dialect, v.model_id), v.exclusive_stage.is_not(None)
            ),
            sa.select(*row("a", al.model_id, al.alias, none, v.version))
            .join(t.versions, v.id == al.version_id)
            .where(_among(dialect, al.model_id)),
        )
    )


def load_models(conn: Connection, rows: Sequence[Any]) -> list[Model]:
    """Build full models for rows of the models table (tags, latest version, holders,
    aliases) with one more query."""
    if not rows:
        return []
    # Positions, looked up once: a Row's attribute access is a Python-level lookup per
    # field, and a search page builds a hundred models.
    fields = rows[0]._fields
    i_id, i_name, i_desc, i_created, i_by, i_updated = (
        fields.index(f)
        for f in ("id", "name", "description", "created_at", "created_by", "updated_at")
    )
    query = _model_children_query(conn.dialect.name)
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    latest: dict[int, int] = {}
    holders: dict[int, dict[str, int]] = defaultdict(dict)
    aliases: dict[int, dict[str, int]] = defaultdict(dict)
    for kind, mid, key, value, number in query.all(conn, _ids(conn, [r[i_id] for r in rows])):
        if kind == "t":
            tags[mid][key] = value
        elif kind == "l":
            if number is not None:
                latest[mid] = int(number)
        elif kind == "h":
            holders[mid][key] = int(number)
        else:
            aliases[mid][key] = int(number)
    models = []
    for row in rows:
        mid = row[i_id]
        named = aliases.get(mid)
        models.append(
            Model(
                name=row[i_name],
                description=row[i_desc],
                tags=tags.get(mid) or {},
                created_at=row[i_created],
                created_by=row[i_by],
                updated_at=row[i_updated],
                latest_version=latest.get(mid),
                stage_holders=holders.get(mid) or {},
                aliases=dict(sorted(named.items())) if named else {},
            )
        )
    return models
