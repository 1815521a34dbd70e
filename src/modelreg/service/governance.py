"""Principals, grants and API tokens, and turning a token into an acting principal."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import KINDS, Grant, Principal
from modelreg.auth.roles import GLOBAL, Permission, Role, validate_pattern
from modelreg.auth.tokens import new_token, parse_token, secret_matches
from modelreg.domain.governance import CreatedToken, GrantInfo, PrincipalInfo, TokenInfo
from modelreg.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from modelreg.service.authz import require
from modelreg.service.common import MAX_DESCRIPTION, ServiceBase, check_text
from modelreg.service.events import record, utcnow
from modelreg.store import tables as t

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
NAME_RULES = "1-128 characters: letters, digits, '.', '_', '@', '+' and '-'"
MAX_TOKEN_LIFETIME = 5 * 365 * 86400.0

_P = t.principals.c
_T = t.tokens.c
_G = t.grants.c
_TOKEN_LOOKUP = (
    sa.select(_T.secret_hash, _T.expires_at, _T.revoked_at, _P.id, _P.name, _P.kind, _P.disabled_at)
    .join(t.principals, _P.id == _T.principal_id)
    .where(_T.id == sa.bindparam("token_id"))
)
_GRANTS_OF = sa.select(_G.role, _G.pattern).where(_G.principal_id == sa.bindparam("principal"))


def validate_principal_name(name: object) -> str:
    """A principal's name (users may use e-mail addresses), or InvalidArgument."""
    if not isinstance(name, str) or not name or len(name) > 128 or not _NAME.match(name):
        raise InvalidArgument(f"invalid principal name {name!r}: {NAME_RULES}")
    return name


class GovernanceService(ServiceBase):
    """Who may act: principals, their grants, their tokens."""

    # ---------------------------------------------------------------- identity

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for, with its grants; Unauthenticated if the
        token is malformed, unknown, revoked or expired, or its principal is disabled."""
        token_id, secret = parse_token(token)
        with self.db.read() as conn:
            row = conn.execute(_TOKEN_LOOKUP, {"token_id": token_id}).first()
            if row is None or not secret_matches(secret, row.secret_hash):
                raise Unauthenticated("invalid token")
            if row.revoked_at is not None:
                raise Unauthenticated(f"token {token_id} was revoked")
            if row.expires_at is not None and row.expires_at <= utcnow():
                raise Unauthenticated(f"token {token_id} expired")
            if row.disabled_at is not None:
                raise Unauthenticated(f"principal {row.name!r} is disabled")
            grants = conn.execute(_GRANTS_OF, {"principal": row.id}).all()
        return Principal(
            row.name,
            kind=row.kind,
            grants=tuple(Grant(Role(g.role), g.pattern) for g in grants),
        )

    def has_principals(self) -> bool:
        """Whether any principal exists (a server with authentication on needs one)."""
        with self.db.read() as conn:
            return conn.execute(sa.select(_P.id).limit(1)).first() is not None

    def whoami(self, actor: Principal) -> dict[str, Any]:
        """The acting principal and its grants (all-powerful when authorization is off)."""
        grants = [g.to_dict() for g in actor.grants] if actor.grants is not None else None
        return {
            "name": actor.name,
            "kind": actor.kind,
            "authorization": "on" if actor.restricted else "off",
            "grants": grants,
        }

    # -------------------------------------------------------------- principals

    def create_principal(
        self, actor: Principal, name: str, *, kind: str = "user", description: str = ""
    ) -> PrincipalInfo:
        """Create a user or a service account (admin)."""
        validate_principal_name(name)
        if kind not in KINDS:
            raise InvalidArgument(f"invalid principal kind {kind!r}: use user or service")
        check_text(description, "description", MAX_DESCRIPTION)
        require(actor, Permission.ADMIN, None, "create principals")
        with self.db.write() as conn:
            if conn.execute(sa.select(_P.id).where(_P.name == name)).first() is not None:
                raise AlreadyExists(f"principal {name!r} already exists", principal=name)
            conn.execute(
                sa.insert(t.principals).values(
                    name=name,
                    kind=kind,
                    description=description,
                    created_at=utcnow(),
                    created_by=actor.name,
                    disabled_at=None,
                )
            )
            record(conn, actor, "principal_created", "", principal=name, principal_kind=kind)
            return self._principal_info(conn, name)

    def get_principal(self, actor: Principal, name: str) -> PrincipalInfo:
        """A principal with its grants (admin, or the principal itself)."""
        validate_principal_name(name)
        if name != actor.name:
            require(actor, Permission.ADMIN, None, "see other principals")
        with self.db.read() as conn:
            return self._principal_info(conn, name)

    def list_principals(self, actor: Principal) -> list[PrincipalInfo]:
        """Every principal with its grants (admin)."""
        require(actor, Permission.ADMIN, None, "list principals")
        with self.db.read() as conn:
            names = conn.execute(sa.select(_P.name).order_by(_P.name)).scalars().all()
            return [self._principal_info(conn, n) for n in names]

    def set_principal_disabled(self, actor: Principal, name: str, disabled: bool) -> PrincipalInfo:
        """Disable (every token stops working at once) or re-enable a principal (admin)."""
        validate_principal_name(name)
        require(actor, Permission.ADMIN, None, "disable or enable principals")
        with self.db.write() as conn:
            row = self._principal_row(conn, name, lock=True)
            if (row.disabled_at is not None) != disabled:
                conn.execute(
                    sa.update(t.principals)
                    .where(_P.id == row.id)
                    .values(disabled_at=utcnow() if disabled else None)
                )
                kind = "principal_disabled" if disabled else "principal_enabled"
                record(conn, actor, kind, "", principal=name)
            return self._principal_info(conn, name)

    # ------------------------------------------------------------------ grants

    def grant(self, actor: Principal, principal: str, role: str, model: str = GLOBAL) -> GrantInfo:
        """Give ``principal`` ``role`` on the models ``model`` covers (``*``, a name, or a
        prefix such as ``fraud-*``); replaces its previous role on that pattern (admin)."""
        validate_principal_name(principal)
        parsed = Role.parse(role)
        pattern = validate_pattern(model)
        require(actor, Permission.ADMIN, None, "grant roles")
        with self.db.write() as conn:
            row = self._principal_row(conn, principal, lock=True)
            before = conn.execute(
                sa.select(_G.role).where(_G.principal_id == row.id, _G.pattern == pattern)
            ).scalar()
            if before is not None:
                conn.execute(
                    sa.delete(t.grants).where(_G.principal_id == row.id, _G.pattern == pattern)
                )
            now = utcnow()
            conn.execute(
                sa.insert(t.grants).values(
                    principal_id=row.id,
                    pattern=pattern,
                    role=parsed.value,
                    created_at=now,
                    created_by=actor.name,
                )
            )
            record(
                conn,
                actor,
                "grant_set",
                "",
                principal=principal,
                pattern=pattern,
                before=before,
                after=parsed.value,
            )
            return GrantInfo(principal, parsed.value, pattern, now, actor.name)

    def revoke_grant(self, actor: Principal, principal: str, model: str = GLOBAL) -> None:
        """Remove ``principal``'s role on ``model`` (admin); NotFound if it has none there."""
        validate_principal_name(principal)
        pattern = validate_pattern(model)
        require(actor, Permission.ADMIN, None, "revoke roles")
        with self.db.write() as conn:
            row = self._principal_row(conn, principal, lock=True)
            before = conn.execute(
                sa.select(_G.role).where(_G.principal_id == row.id, _G.pattern == pattern)
            ).scalar()
            if before is None:
                raise NotFound(f"{principal} has no role on {pattern!r}", principal=principal)
            conn.execute(
                sa.delete(t.grants).where(_G.principal_id == row.id, _G.pattern == pattern)
            )
            record(
                conn,
                actor,
                "grant_revoked",
                "",
                principal=principal,
                pattern=pattern,
                before=before,
                after=None,
            )

    # ------------------------------------------------------------------ tokens

    def create_token(
        self,
        actor: Principal,
        principal: str | None = None,
        *,
        name: str = "",
        expires_in: float | None = None,
    ) -> CreatedToken:
        """A new API token for ``principal`` (default: the caller; others need admin).

        The returned ``secret`` is the only copy: the registry keeps its hash.
        """
        owner = actor.name if principal is None else validate_principal_name(principal)
        check_text(name, "token name", 128)
        if expires_in is not None and not 0 < expires_in <= MAX_TOKEN_LIFETIME:
            raise InvalidArgument("expires_in must be between 1 second and 5 years")
        if owner != actor.name:
            require(actor, Permission.ADMIN, None, "create tokens for other principals")
        with self.db.write() as conn:
            row = self._principal_row(conn, owner, lock=True)
            if row.disabled_at is not None:
                raise InvalidArgument(f"principal {owner!r} is disabled")
            secret, token_id, digest = new_token()
            now = utcnow()
            expires = now + timedelta(seconds=expires_in) if expires_in is not None else None
            conn.execute(
                sa.insert(t.tokens).values(
                    id=token_id,
                    principal_id=row.id,
                    name=name,
                    secret_hash=digest,
                    created_at=now,
                    created_by=actor.name,
                    expires_at=expires,
                    revoked_at=None,
                    revoked_by=None,
                )
            )
            record(
                conn,
                actor,
                "token_created",
                "",
                principal=owner,
                token=token_id,
                name=name,
                expires_at=expires.isoformat() if expires else None,
            )
            info = TokenInfo(token_id, owner, name, now, actor.name, expires, None, None)
            return CreatedToken(secret, info)

    def list_tokens(self, actor: Principal, principal: str | None = None) -> list[TokenInfo]:
        """Tokens of ``principal`` (default: the caller; others need admin), newest first."""
        owner = actor.name if principal is None else validate_principal_name(principal)
        if owner != actor.name:
            require(actor, Permission.ADMIN, None, "list other principals' tokens")
        with self.db.read() as conn:
            row = self._principal_row(conn, owner)
            rows = conn.execute(
                sa.select(t.tokens).where(_T.principal_id == row.id).order_by(_T.created_at.desc())
            ).all()
        return [_token_info(r, owner) for r in rows]

    def revoke_token(self, actor: Principal, token_id: str) -> TokenInfo:
        """Revoke a token at once (its owner, or an admin)."""
        if not isinstance(token_id, str) or not re.fullmatch(r"[0-9a-f]{16}", token_id):
            raise InvalidArgument(f"invalid token id {token_id!r}: 16 hex digits")
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(t.tokens, _P.name.label("owner"))
                .join(t.principals, _P.id == _T.principal_id)
                .where(_T.id == token_id)
                .with_for_update()
            ).first()
            owner = row.owner if row is not None else None
            if owner != actor.name:
                require(actor, Permission.ADMIN, None, "revoke other principals' tokens")
            if row is None:
                raise NotFound(f"token {token_id} does not exist", token=token_id)
            if row.revoked_at is None:
                now = utcnow()
                conn.execute(
                    sa.update(t.tokens)
                    .where(_T.id == token_id)
                    .values(revoked_at=now, revoked_by=actor.name)
                )
                record(conn, actor, "token_revoked", "", principal=row.owner, token=token_id)
            updated = conn.execute(sa.select(t.tokens).where(_T.id == token_id)).one()
            return _token_info(updated, row.owner)

    # ----------------------------------------------------------------- helpers

    def _principal_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = sa.select(t.principals).where(_P.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"principal {name!r} does not exist", principal=name)
        return row

    def _principal_info(self, conn: Connection, name: str) -> PrincipalInfo:
        row = self._principal_row(conn, name)
        grants = conn.execute(
            sa.select(t.grants).where(_G.principal_id == row.id).order_by(_G.pattern)
        ).all()
        return PrincipalInfo(
            name=row.name,
            kind=row.kind,
            description=row.description,
            created_at=row.created_at,
            created_by=row.created_by,
            disabled=row.disabled_at is not None,
            grants=tuple(
                GrantInfo(name, g.role, g.pattern, g.created_at, g.created_by) for g in grants
            ),
        )


def _token_info(row: Any, owner: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        principal=owner,
        name=row.name,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )
