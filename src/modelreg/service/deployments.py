"""Environments and deployment records: which version runs where, recorded by whom."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain.deployments import (
    Deployment,
    Environment,
    validate_environment,
    validate_status,
)
from modelreg.domain.entities import Page
from modelreg.domain.names import validate_model_name
from modelreg.domain.refs import parse_ref
from modelreg.errors import AlreadyExists, NotFound
from modelreg.service.authz import read_scope, require
from modelreg.service.common import MAX_DESCRIPTION, MAX_REASON, ServiceBase, check_text, rows_by_id
from modelreg.service.events import record, utcnow
from modelreg.store import queries as q
from modelreg.store import search as s
from modelreg.store import tables as t

_ENV = t.environments.c
_DEP = t.deployments.c
_DEPLOYMENT_COLUMNS = (*t.deployments.c, _ENV.name.label("environment"))
_DEPLOYMENT_FROM = t.deployments.join(t.environments, _ENV.id == _DEP.environment_id)


def _environment(row: Any) -> Environment:
    return Environment(row.name, row.description, row.created_at, row.created_by)


def _deployment(row: Any) -> Deployment:
    return Deployment(
        id=row.id,
        environment=row.environment,
        name=row.model_name,
        version=row.version,
        manifest_digest=row.manifest_digest,
        status=row.status,
        note=row.note,
        deployed_at=row.deployed_at,
        deployed_by=row.deployed_by,
    )


class DeploymentsService(ServiceBase):
    """Environments, and the append-only log of deployments into them."""

    def create_environment(
        self, actor: Principal, name: str, *, description: str = ""
    ) -> Environment:
        """Create a deployment environment such as ``prod-eu``; AlreadyExists if taken."""
        validate_environment(name)
        check_text(description, "description", MAX_DESCRIPTION)
        require(actor, Permission.ADMIN, None, "create environments")
        with self.db.write() as conn:
            if conn.execute(sa.select(_ENV.id).where(_ENV.name == name)).first() is not None:
                raise AlreadyExists(f"environment {name!r} already exists", environment=name)
            now = utcnow()
            conn.execute(
                sa.insert(t.environments).values(
                    name=name, description=description, created_at=now, created_by=actor.name
                )
            )
            record(conn, actor, "environment_created", "", at=now, environment=name)
            return Environment(name, description, now, actor.name)

    def list_environments(
        self, actor: Principal, *, page_size: int | None = None, page_token: str | None = None
    ) -> Page[Environment]:
        """Every environment, newest first."""
        with self.db.read() as conn:
            rows, token = rows_by_id(
                conn,
                sa.select(t.environments),
                _ENV.id,
                fingerprint=s.query_fingerprint("environments"),
                page_size=page_size,
                page_token=page_token,
            )

        def more(next_token: str) -> Page[Environment]:
            return self.list_environments(actor, page_size=page_size, page_token=next_token)

        return Page([_environment(r) for r in rows], token, more)

    def record_deployment(
        self,
        actor: Principal,
        ref: str,
        environment: str,
        *,
        status: str = "deployed",
        note: str = "",
    ) -> Deployment:
        """Record that a version was deployed to (or failed in, or was removed from) an
        environment; emits a ``deployment_recorded`` event in the same transaction."""
        parsed = parse_ref(ref)
        validate_environment(environment)
        validate_status(status)
        check_text(note, "note", MAX_REASON)
        require(actor, Permission.DEPLOY, parsed.name, f"record deployments of {parsed.name!r}")
        with self.db.write() as conn:
            env = conn.execute(sa.select(_ENV.id).where(_ENV.name == environment)).first()
            if env is None:
                raise NotFound(
                    f"environment {environment!r} does not exist; create it first",
                    environment=environment,
                )
            row = q.version_row(conn, parsed)
            now = utcnow()
            deployment_id = conn.execute(
                sa.insert(t.deployments)
                .values(
                    environment_id=env.id,
                    model_name=row.model_name,
                    version=row.version,
                    manifest_digest=row.manifest_digest,
                    status=status,
                    note=note,
                    deployed_at=now,
                    deployed_by=actor.name,
                )
                .returning(_DEP.id)
            ).scalar_one()
            record(
                conn,
                actor,
                "deployment_recorded",
                row.model_name,
                row.version,
                at=now,
                reason=note or None,
                environment=environment,
                status=status,
                deployment_id=deployment_id,
            )
            return Deployment(
                id=deployment_id,
                environment=environment,
                name=row.model_name,
                version=row.version,
                manifest_digest=row.manifest_digest,
                status=status,
                note=note,
                deployed_at=now,
                deployed_by=actor.name,
            )

    def list_deployments(
        self,
        actor: Principal,
        *,
        model: str | None = None,
        environment: str | None = None,
        current: bool = True,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Deployment]:
        """What runs where: the newest record per environment and model (``current``), or
        the whole log; newest first, optionally for one model or one environment."""
        if model is not None:
            validate_model_name(model)
            require(actor, Permission.READ, model, f"read the deployments of {model!r}")
        if environment is not None:
            validate_environment(environment)
        query = sa.select(*_DEPLOYMENT_COLUMNS).select_from(_DEPLOYMENT_FROM)
        scope = read_scope(actor, _DEP.model_name)
        if scope is not None:
            query = query.where(scope)
        if model is not None:
            query = query.where(_DEP.model_name == model)
        if environment is not None:
            query = query.where(_ENV.name == environment)
        if current:
            newest = sa.select(sa.func.max(_DEP.id)).group_by(_DEP.environment_id, _DEP.model_name)
            query = query.where(_DEP.id.in_(newest.scalar_subquery()))
        with self.db.read() as conn:
            if environment is not None and (
                conn.execute(sa.select(_ENV.id).where(_ENV.name == environment)).first() is None
            ):
                raise NotFound(f"environment {environment!r} does not exist")
            rows, token = rows_by_id(
                conn,
                query,
                _DEP.id,
                fingerprint=s.query_fingerprint("deployments", model, environment, current),
                page_size=page_size,
                page_token=page_token,
            )

        def more(next_token: str) -> Page[Deployment]:
            return self.list_deployments(
                actor,
                model=model,
                environment=environment,
                current=current,
                page_size=page_size,
                page_token=next_token,
            )

        return Page([_deployment(r) for r in rows], token, more)
