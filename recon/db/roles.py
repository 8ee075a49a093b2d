"""Is the application's database role one that row-level security applies to?

On PostgreSQL tenant isolation is row-level security keyed on `app.tenant_id`. A superuser or a
role with `BYPASSRLS` is never subject to it, and a role that owns (or may become the owner of) the
tables can switch it off; such a role must not be the one the application connects as.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, text

from recon.errors import ConfigError

log = logging.getLogger(__name__)

_ROLE_QUERY = text(
    """
    SELECT current_user AS role,
           r.rolsuper AS superuser,
           r.rolbypassrls AS bypassrls,
           (SELECT s.rolname FROM pg_roles s
             WHERE (s.rolsuper OR s.rolbypassrls) AND s.rolname <> current_user
               AND pg_has_role(current_user, s.oid, 'MEMBER')
             ORDER BY s.rolname LIMIT 1) AS privileged_member_of,
           (SELECT c.relname || ' (owner ' || pg_get_userbyid(c.relowner) || ')'
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
               AND pg_has_role(current_user, c.relowner, 'MEMBER')
             ORDER BY c.relname LIMIT 1) AS owned_table
      FROM pg_roles r
     WHERE r.rolname = current_user
    """
)


@dataclass(frozen=True)
class RoleProblem:
    """Why a role may not be the application's: one sentence, naming the role."""

    role: str
    reason: str

    def sentence(self) -> str:
        """The problem as one sentence for a person."""
        return (
            f"database role {self.role!r} {self.reason}, so row-level security does not isolate "
            "tenants; connect RECON_DATABASE_URL as a login role that is only a member of recon_app"
        )


def application_role_problem(engine: Engine) -> RoleProblem | None:
    """Why `engine`'s role must not run the application, or None (always None off PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        row = connection.execute(_ROLE_QUERY).mappings().one()
    role = str(row["role"])
    if row["superuser"]:
        return RoleProblem(role, "is a superuser")
    if row["bypassrls"]:
        return RoleProblem(role, "has BYPASSRLS")
    if row["privileged_member_of"]:
        return RoleProblem(
            role, f"is a member of {row['privileged_member_of']!r}, a superuser or BYPASSRLS role"
        )
    if row["owned_table"]:
        return RoleProblem(role, f"owns or may act as the owner of table {row['owned_table']}")
    return None


def check_application_role(engine: Engine, production: bool) -> None:
    """Refuse an unsafe application role in production; warn about it in development."""
    problem = application_role_problem(engine)
    if problem is None:
        return
    if production:
        raise ConfigError(problem.sentence())
    log.warning("%s (allowed only in development)", problem.sentence())
