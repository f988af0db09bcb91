"""Objects planted in `public` or in a schema named after the caller never run (issue 9, item 1).

A role `attacker` that may create objects in `public`, and owns a schema named after the role
that calls the package (postgres here; nikita_jobs under pg_cron), plants shadows of every name
the package uses: functions with pg_catalog's signatures and with closer ones (an exact match
beats pg_catalog's `numeric * numeric` for `numeric * integer`, or its variadic "any"), operators
for every type pair the package could write, domains named like the types, and views named like
the package's tables. Each shadow records its call (a sequence, which a rollback does not undo,
a row, a WARNING) and tries `ALTER ROLE attacker SUPERUSER`.

Then, as the superuser, every function of schema nikita is called (with valid arguments where
the test knows them, with arguments of the right types otherwise), run_job runs every job of
nikita.job_catalog (and one that fails, for the alert path), and a real pg_cron run fires as the
jobs role. Nothing planted may have run, and attacker is no superuser. Two search paths: the
default ("$user", public), and one that puts pg_catalog last, where even a shadow with
pg_catalog's own signature wins for every name that is not pinned or qualified.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb
from test_jobs_cron import CRON_WAIT, nikita_jobs

DEFAULT_PATH = '"$user", public'
HOSTILE_PATH = '"$user", public, pg_catalog'

# Functions the package (or a careless edit of it) may call by name.
FUNCTION_NAMES = [
    "now",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "date_part",
    "date_trunc",
    "extract",
    "round",
    "trunc",
    "floor",
    "ceil",
    "abs",
    "format",
    "concat",
    "jsonb_build_object",
    "jsonb_build_array",
    "jsonb_typeof",
    "jsonb_strip_nulls",
    "jsonb_set",
    "to_jsonb",
    "jsonb_array_length",
    "gen_random_uuid",
    "hashtext",
    "pg_try_advisory_lock",
    "pg_advisory_unlock",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_try_advisory_xact_lock",
    "set_config",
    "current_setting",
    "length",
    "char_length",
    "left",
    "right",
    "substr",
    "lower",
    "upper",
    "btrim",
    "replace",
    "regexp_replace",
    "split_part",
    "to_char",
    "to_timestamp",
    "make_interval",
    "random",
    "pg_notify",
    "nextval",
    "isfinite",
    "age",
    "timezone",
    "current_database",
    "array_length",
    "cardinality",
    "pg_relation_size",
    "to_regclass",
    "to_regprocedure",
    "pg_backend_pid",
    "md5",
    "exp",
    "ln",
    "power",
    "least",
    "greatest",
    "octet_length",
    "make_timestamptz",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "string_to_array",
    "array_to_string",
    "position",
    "strpos",
]
# Closer matches than pg_catalog's for calls the package might leave unqualified.
EXTRA_FUNCTIONS = [
    ("format", ["text", "text"]),
    ("format", ["text", "text", "text"]),
    ("format", ["text", "text", "text", "text"]),
    ("format", ["text", "text", "text", "text", "text"]),
    ("concat", ["text", "text"]),
    ("jsonb_build_object", ["text", "text"]),
    ("jsonb_build_object", ["text", "bigint"]),
    ("jsonb_build_object", ["text", "integer"]),
    ("jsonb_build_object", ["text", "numeric"]),
    ("jsonb_build_object", ["text", "uuid"]),
    ("jsonb_build_object", ["text", "text", "text", "text"]),
    ("jsonb_build_object", ["text", "bigint", "text", "bigint"]),
    ("round", ["numeric", "bigint"]),
    ("round", ["double precision", "integer"]),
    ("left", ["text", "bigint"]),
    ("length", ["jsonb"]),
    ("pg_try_advisory_lock", ["integer", "bigint"]),
    ("pg_try_advisory_lock", ["bigint", "integer"]),
    ("pg_advisory_unlock", ["integer", "bigint"]),
    ("hashtext", ["character varying"]),
    ("set_config", ["text", "text"]),
    ("to_char", ["timestamp with time zone", "unknown"]),
]
OPERATOR_NAMES = [
    "=",
    "<>",
    "<",
    ">",
    "<=",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "->>",
    "->",
    "?",
    "?|",
    "?&",
    "@>",
    "<@",
    "#>>",
    "#>",
    "~",
    "~*",
    "!~",
    "~~",
    "!~~",
    "~~*",
    "&&",
]
TYPES = [
    "smallint",
    "integer",
    "bigint",
    "numeric",
    "double precision",
    "real",
    "text",
    "character varying",
    "name",
    "jsonb",
    "json",
    "timestamp with time zone",
    "timestamp without time zone",
    "date",
    "interval",
    "uuid",
    "boolean",
    "oid",
    "text[]",
    "uuid[]",
    "bigint[]",
    "integer[]",
]
NUMERIC = ["smallint", "integer", "bigint", "numeric", "double precision", "real"]
# Views named like the tables and views the package reads.
TABLE_NAMES = [
    "users",
    "settings",
    "scheduled_events",
    "job_executions",
    "job_catalog",
    "job_health",
    "queue_health",
    "conversations",
    "score_history",
    "daily_summaries",
    "signup_sessions",
    "decay_rules",
    "reply_delays",
    "schema_migrations",
    "job",
    "job_run_details",
]
# Domains named like the types whose names are not keywords: a variable or cast of that name
# under a hostile path would run their CHECK.
DOMAIN_NAMES = ["text", "jsonb", "uuid", "timestamptz", "interval", "int4", "int8", "bool"]


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def hit_body(label: str, result: str) -> str:
    """A shadow's body: count, log, warn, try to become superuser, then return `result`."""
    return f"""
BEGIN
    PERFORM pg_catalog.nextval('public.attacker_calls');
    INSERT INTO public.attacker_log (obj, run_by, session_role, app, query)
    VALUES ({label}, current_user, session_user,
            pg_catalog.current_setting('application_name'), pg_catalog.current_query());
    RAISE WARNING 'planted object % called by %', {label}, current_user;
    BEGIN
        EXECUTE 'ALTER ROLE attacker SUPERUSER';
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN {result};
END
"""


def plant_statements(conn: psycopg.Connection, schema: str) -> list[sql.Composable]:
    """CREATE statements for every shadow in `schema` (run as attacker)."""
    s = sql.Identifier(schema)
    out: list[sql.Composable] = []

    def label(kind: str, name: str, args: str) -> sql.Composable:
        return sql.Literal(f"{schema}.{kind} {name}({args})")

    # Functions: pg_catalog's own signatures (plain types only), then the closer ones.
    sigs: set[tuple[str, tuple[str, ...]]] = set()
    rows = conn.execute(
        """
        SELECT p.proname, array_agg(format_type(t.typ, NULL) ORDER BY t.ord)
               FILTER (WHERE t.typ IS NOT NULL)
        FROM pg_proc p
        LEFT JOIN LATERAL unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t (typ, ord) ON true
        WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
          AND NOT p.proretset AND p.proname = ANY(%s)
        GROUP BY p.oid, p.proname
        """,
        (FUNCTION_NAMES,),
    ).fetchall()
    for name, args in rows:
        args = tuple(args or ())
        if all(a in TYPES for a in args):
            sigs.add((name, args))
    sigs.update((n, tuple(a)) for n, a in EXTRA_FUNCTIONS)
    for name, args in sorted(sigs):
        arglist = ", ".join(args)
        if "unknown" in args:
            continue  # no PL/pgSQL function takes unknown; the text variant covers it
        taken = conn.execute(
            "SELECT to_regprocedure(format('%%I.%%I(%%s)', %s::text, %s::text, %s::text))",
            (schema, name, arglist),
        ).fetchone()
        if taken and taken[0] is not None:
            continue  # an extension's own function there (pgcrypto's gen_random_uuid)
        params = ", ".join(f"${i + 1}" for i in range(len(args)))
        try:
            ret = conn.execute(
                sql.SQL("SELECT format_type(pg_typeof(pg_catalog.{}({})), NULL)").format(
                    sql.Identifier(name),
                    sql.SQL(", ").join(sql.SQL(f"NULL::{a}") for a in args),
                )
            ).fetchone()
            ret_type = ret[0] if ret else "text"
            real = f"pg_catalog.{sql.Identifier(name).as_string(conn)}({params})"
        except psycopg.Error:
            ret_type, real = "text", "NULL"
        if ret_type in ("void", "unknown", "record", "trigger"):
            ret_type, real = ("void", "") if ret_type == "void" else ("text", "NULL")
        out.append(
            sql.SQL(
                "CREATE FUNCTION {}.{}({}) RETURNS {} LANGUAGE plpgsql SET search_path = pg_catalog"
                " AS {}"
            ).format(
                s,
                sql.Identifier(name),
                sql.SQL(arglist),
                sql.SQL(ret_type),
                sql.Literal(hit_body(label("function", name, arglist).as_string(conn), real)),
            )
        )

    # Operators: every pg_catalog signature of these names among TYPES, and for arithmetic,
    # comparison, || and the jsonb operators the pairs pg_catalog has no exact match for.
    pairs: set[tuple[str, str, str]] = set()
    for op, left, right in conn.execute(
        """
        SELECT o.oprname, format_type(o.oprleft, NULL), format_type(o.oprright, NULL)
        FROM pg_operator o
        WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprname = ANY(%s)
          AND o.oprleft <> 0 AND o.oprright <> 0
        """,
        (OPERATOR_NAMES,),
    ).fetchall():
        if left in TYPES and right in TYPES:
            pairs.add((op, left, right))
    for op in ["=", "<>", "<", ">", "<=", ">=", "+", "-", "*", "/"]:
        for left in NUMERIC:
            for right in NUMERIC:
                pairs.add((op, left, right))
    for other in [
        "integer",
        "bigint",
        "numeric",
        "uuid",
        "timestamp with time zone",
        "interval",
        "boolean",
        "jsonb",
        "character varying",
    ]:
        pairs.add(("||", "text", other))
        pairs.add(("||", other, "text"))
    for op in ["->>", "->", "?", "#>>", "#>", "@>"]:
        pairs.add((op, "jsonb", "jsonb"))  # what `jsonb ->> 'literal'` matches exactly
        pairs.add((op, "jsonb", "text"))
    pairs.add(("-", "timestamp with time zone", "timestamp with time zone"))
    pairs.add(("+", "timestamp with time zone", "interval"))
    pairs.add(("*", "interval", "numeric"))
    pairs.add(("*", "integer", "interval"))
    pairs.add(("*", "bigint", "interval"))
    for n, (op, left, right) in enumerate(sorted(pairs)):
        fname = f"op_{n}"
        try:
            got = conn.execute(
                sql.SQL(
                    "SELECT format_type(pg_typeof(NULL::{} OPERATOR(pg_catalog.{}) NULL::{}), NULL)"
                ).format(sql.SQL(left), sql.SQL(op), sql.SQL(right))
            ).fetchone()
            ret_type = got[0] if got else "text"
            real = f"$1 OPERATOR(pg_catalog.{op}) $2"
        except psycopg.Error:
            ret_type = "boolean" if op in ("?", "@>", "=", "<>", "<", ">", "<=", ">=") else "text"
            real = "NULL"
        if ret_type == "unknown":
            ret_type = "text"
        out.append(
            sql.SQL(
                "CREATE FUNCTION {}.{}({}, {}) RETURNS {} LANGUAGE plpgsql"
                " SET search_path = pg_catalog AS {}"
            ).format(
                s,
                sql.Identifier(fname),
                sql.SQL(left),
                sql.SQL(right),
                sql.SQL(ret_type),
                sql.Literal(
                    hit_body(label("operator", op, f"{left}, {right}").as_string(conn), real)
                ),
            )
        )
        out.append(
            sql.SQL("CREATE OPERATOR {}.{} (LEFTARG = {}, RIGHTARG = {}, FUNCTION = {}.{})").format(
                s, sql.SQL(op), sql.SQL(left), sql.SQL(right), s, sql.Identifier(fname)
            )
        )

    # One logging function for views and domain checks.
    out.append(
        sql.SQL(
            "CREATE FUNCTION {}.attacker_hit(text) RETURNS boolean LANGUAGE plpgsql"
            " SET search_path = pg_catalog AS {}"
        ).format(
            s, sql.Literal(hit_body(f"{sql.Literal(schema).as_string(conn)} || '.' || $1", "true"))
        )
    )
    for table in TABLE_NAMES:
        out.append(
            sql.SQL("CREATE VIEW {}.{} AS SELECT 1 AS id WHERE {}.attacker_hit({})").format(
                s, sql.Identifier(table), s, sql.Literal(f"table {table}")
            )
        )
    base = {
        "text": "pg_catalog.text",
        "jsonb": "pg_catalog.jsonb",
        "uuid": "pg_catalog.uuid",
        "timestamptz": "pg_catalog.timestamptz",
        "interval": "pg_catalog.interval",
        "int4": "pg_catalog.int4",
        "int8": "pg_catalog.int8",
        "bool": "pg_catalog.bool",
    }
    for dom in DOMAIN_NAMES:
        out.append(
            sql.SQL("CREATE DOMAIN {}.{} AS {} CHECK ({}.attacker_hit({}))").format(
                s, sql.Identifier(dom), sql.SQL(base[dom]), s, sql.Literal(f"domain {dom}")
            )
        )
    return out


@contextlib.contextmanager
def planted(admin: psycopg.Connection, roles: list[str]) -> Iterator[None]:
    """Plant every shadow in `public` and in a schema named after each of `roles`."""
    admin.execute("SET search_path = pg_catalog")
    if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'attacker'").fetchone() is None:
        admin.execute("CREATE ROLE attacker NOLOGIN")
    admin.execute("GRANT CREATE, USAGE ON SCHEMA public TO attacker")
    schemas = ["public"]
    for role in roles:
        admin.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION attacker").format(sql.Identifier(role))
        )
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(sql.Identifier(role)))
        schemas.append(role)
    try:
        admin.execute("SET ROLE attacker")
        # Probing pg_catalog for return types may fail; each probe is its own statement.
        statements = [st for schema in schemas for st in plant_statements(admin, schema)]
        admin.execute("CREATE SEQUENCE public.attacker_calls")
        admin.execute("GRANT USAGE ON SEQUENCE public.attacker_calls TO PUBLIC")
        admin.execute(
            "CREATE TABLE public.attacker_log (obj text, run_by name, session_role name,"
            " app text, query text, at timestamptz DEFAULT pg_catalog.clock_timestamp())"
        )
        admin.execute("GRANT INSERT ON public.attacker_log TO PUBLIC")
        with admin.transaction():
            for stmt in statements:
                admin.execute(stmt)
        admin.execute("RESET ROLE")
        yield
    finally:
        admin.execute("RESET ROLE")
        admin.execute("SET search_path = pg_catalog")
        for role in roles:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(role)))
        admin.execute("DROP OWNED BY attacker")
        admin.execute("REVOKE ALL ON SCHEMA public FROM attacker")


def attacker_calls(admin: psycopg.Connection) -> tuple[int, list[tuple[Any, ...]]]:
    row = admin.execute(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.attacker_calls"
    ).fetchone()
    log = admin.execute(
        "SELECT obj, run_by, session_role, app, left(query, 200) FROM public.attacker_log"
        " ORDER BY at LIMIT 20"
    ).fetchall()
    return (int(row[0]) if row else 0), log


def attacker_is_superuser(admin: psycopg.Connection) -> bool:
    row = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'attacker'").fetchone()
    return bool(row and row[0])


@pytest.fixture
def attacker_role(admin_url: str) -> Iterator[None]:
    yield
    with connect(admin_url) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'attacker'").fetchone():
            conn.execute("ALTER ROLE attacker NOSUPERUSER")


# --- the calls -------------------------------------------------------------------------------

U1 = uuid.UUID("00000000-0000-0000-0000-0000000000a1")  # decays
U2 = uuid.UUID("00000000-0000-0000-0000-0000000000a2")  # decays to game over
U3 = uuid.UUID("00000000-0000-0000-0000-0000000000a3")  # events cancelled
# Players who only receive events (one in flight per user: one claim each).
OTHERS = [uuid.UUID(f"00000000-0000-0000-0000-0000000000b{i}") for i in range(4)]

GENERIC_ARG = {
    "text": "'sweep'::pg_catalog.text",
    "integer": "1::pg_catalog.int4",
    "bigint": "1::pg_catalog.int8",
    "boolean": "true",
    "jsonb": "'{}'::pg_catalog.jsonb",
    "uuid": f"'{U1}'::pg_catalog.uuid",
    "timestamp with time zone": "pg_catalog.now()",
    "interval": "'1 hour'::pg_catalog.interval",
    "uuid[]": "'{}'::pg_catalog.uuid[]",
    "text[]": "'{}'::pg_catalog.text[]",
}


# Casts the test writes itself: qualified, so that only the package can meet a planted object.
TXT, UID, JSB, TS, IVL = (
    "::pg_catalog.text",
    "::pg_catalog.uuid",
    "::pg_catalog.jsonb",
    "::pg_catalog.timestamptz",
    "::pg_catalog.interval",
)


def seed(conn: psycopg.Connection) -> None:
    """Players, conversations and a signup session for every job to work on (before planting)."""
    conn.execute("SET search_path = pg_catalog")
    players = [(U1, 9101, 50, 9), (U2, 9102, 0.5, 40), (U3, 9103, 50, 1)]
    players += [(u, 9110 + i, 50, 1) for i, u in enumerate(OTHERS)]
    for uid, tg, score, idle in players:
        conn.execute(
            "INSERT INTO nikita.users (id, telegram_id, phone, timezone, onboarding_status,"
            " relationship_score, last_interaction_at, created_at)"
            " VALUES (%s, %s, %s, 'Europe/Berlin', 'completed', %s,"
            " now() - make_interval(hours => %s), now() - interval '3 days')",
            (uid, tg, f"+49151{tg}0000", score, idle),
        )
    conn.execute(
        "INSERT INTO nikita.conversations (user_id, platform, started_at, last_message_at)"
        " VALUES (%s, 'telegram', now() - interval '1 hour', now() - interval '30 minutes'),"
        " (%s, 'voice', now() - interval '1 hour', now() - interval '40 minutes')",
        (U1, U3),
    )
    conn.execute(
        "INSERT INTO nikita.signup_sessions (telegram_id, chat_id, expires_at)"
        " VALUES (9199, 9199, now() - interval '1 hour')"
    )


def exercise(conn: psycopg.Connection, path: str) -> tuple[set[str], list[str]]:
    """Call every function of nikita as the superuser under `path`.

    Returns the names called and the errors of the run_job calls (kept, so that the planted
    objects' log is what a failure reports first)."""
    called: set[str] = set()
    job_errors: list[str] = []

    def call_job(stmt: str, params: tuple[Any, ...] = ()) -> None:
        called.add("run_job")
        try:
            conn.execute(stmt, params)
        except psycopg.Error as exc:
            job_errors.append(f"{stmt} {params}: {exc}")

    def q(sig: str, stmt: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        called.add(sig)
        cur = conn.execute(stmt, params)
        return cur.fetchall() if cur.description else []

    conn.execute(sql.SQL("SET search_path = {}").format(sql.SQL(path)))
    now = dt.datetime.now(dt.UTC)
    ev = [
        q(
            "schedule_event",
            f"SELECT nikita.schedule_event(%s{UID}, 'telegram', 'message_delivery',"
            f" %s{JSB}, %s{TS}, %s{TXT})",
            (uid, Jsonb({"text": f"hi {i}"}), now, f"k{i}"),
        )[0][0]
        for i, uid in enumerate([*OTHERS, U1])
    ]
    q(
        "schedule_event",
        f"SELECT nikita.schedule_event(%s{UID}, 'voice', 'call_reminder', %s{JSB}, %s{TS})",
        (
            U1,
            Jsonb({"first_message": "hey", "dynamic_variables": {"name": "x"}}),
            now + dt.timedelta(hours=1),
        ),
    )
    q(
        "schedule_event",
        f"SELECT nikita.schedule_event(%s{UID}, 'telegram', 'follow_up', %s{JSB})",
        (U3, Jsonb({"text": "later", "parse_mode": "HTML"})),
    )
    q("schedule_reply", f"SELECT nikita.schedule_reply(%s{UID}, %s{TXT})", (U3, "a reply"))
    q("cancel_event", f"SELECT nikita.cancel_event(%s{UID})", (ev[4],))
    q("cancel_user_events", f"SELECT nikita.cancel_user_events(%s{UID})", (U3,))
    q("next_due_at", "SELECT nikita.next_due_at()")
    claimed = q(
        "claim_events",
        f"SELECT id, lock_token FROM nikita.claim_events(%s{TXT}, 10, %s{IVL})",
        ("planted-test", "2 minutes"),
    )
    assert len(claimed) == 4, claimed
    for n, (eid, token) in enumerate(claimed):
        if n == 0:
            q(
                "complete_event",
                f"SELECT nikita.complete_event(%s{UID}, %s{UID}, %s{TXT})",
                (eid, token, "m1"),
            )
        elif n == 1:
            q(
                "fail_event",
                f"SELECT nikita.fail_event(%s{UID}, %s{UID}, %s{TXT}, true)",
                (eid, token, "HTTP 502 from upstream"),
            )
        elif n == 2:
            q(
                "defer_event",
                f"SELECT nikita.defer_event(%s{UID}, %s{UID}, %s{TS})",
                (eid, token, now + dt.timedelta(seconds=30)),
            )
        else:
            q(
                "complete_events",
                "SELECT nikita.complete_events(%s::pg_catalog.uuid[], %s::pg_catalog.uuid[], NULL)",
                ([eid], [token]),
            )
    q(
        "complete_events",
        "SELECT nikita.complete_events(%s::pg_catalog.uuid[],"
        " %s::pg_catalog.uuid[], %s::pg_catalog.text[])",
        ([], [], []),
    )
    q("queue_health", "SELECT * FROM nikita.queue_health")
    q("job_health", "SELECT * FROM nikita.job_health")
    q("job_catalog", "SELECT * FROM nikita.job_catalog")
    q("sweep_events", f"SELECT nikita.sweep_events(%s{TS})", (now,))
    q("detect_stale_conversations", f"SELECT nikita.detect_stale_conversations(%s{TS})", (now,))
    convs = q(
        "claim_conversations",
        f"SELECT id, lock_token FROM nikita.claim_conversations(%s{TXT}, 10, %s{IVL})",
        ("planted-test", "5 minutes"),
    )
    assert len(convs) == 2, "both idle conversations ended and were claimed"
    q(
        "complete_conversation",
        f"SELECT nikita.complete_conversation(%s{UID}, %s{UID}, %s{TXT}, %s{TXT})",
        (convs[0][0], convs[0][1], "a summary", "warm"),
    )
    q(
        "fail_conversation",
        f"SELECT nikita.fail_conversation(%s{UID}, %s{UID}, %s{TXT})",
        (convs[1][0], convs[1][1], "processor failed"),
    )
    q("_conversation_max_attempts", "SELECT nikita._conversation_max_attempts()")
    q("_decay_batch_pages", "SELECT nikita._decay_batch_pages()")
    q(
        "apply_decay_batch",
        f"SELECT nikita.apply_decay_batch(%s{TS}, 0, 1000)",
        (now - dt.timedelta(minutes=30),),
    )
    q("apply_decay", f"SELECT nikita.apply_decay(%s{TS})", (now,))
    q(
        "generate_daily_summaries",
        f"SELECT nikita.generate_daily_summaries(%s{TS}, %s{IVL})",
        (now, "2 days"),
    )
    q("cleanup", f"SELECT nikita.cleanup(%s{TS})", (now,))
    q(
        "_job_alert",
        f"SELECT nikita._job_alert(%s{TXT}, %s{TXT}, %s{TS})",
        ("sweep", "boom", now),
    )
    q("_setting", f"SELECT nikita._setting(%s{TXT})", ("max_lateness",))
    q("_setting_interval", f"SELECT nikita._setting_interval(%s{TXT})", ("max_lateness",))
    q("_setting_bigint", f"SELECT nikita._setting_bigint(%s{TXT})", ("cleanup_batch_size",))
    q("_setting_text", f"SELECT nikita._setting_text(%s{TXT})", ("game_over_text",))
    q(
        "is_setting_value",
        f"SELECT nikita.is_setting_value(%s{TXT}, %s{JSB})",
        ("interval", Jsonb("1 hour")),
    )
    q("is_e164", f"SELECT nikita.is_e164(%s{TXT})", ("+4915112345678",))
    q("is_valid_timezone", f"SELECT nikita.is_valid_timezone(%s{TXT})", ("Asia/Tokyo",))
    q("timezone_name_listed", f"SELECT nikita.timezone_name_listed(%s{TXT})", ("UTC",))
    conn.execute(
        "SELECT pg_catalog.set_config('request.jwt.claims', %s, false)", (f'{{"sub": "{U1}"}}',)
    )
    q("current_user_id", "SELECT nikita.current_user_id()")
    q("_backoff", "SELECT nikita._backoff(3)")
    q("_iso8601", f"SELECT nikita._iso8601(%s{TS})", (now,))
    q("_job_lock_class", "SELECT nikita._job_lock_class()")
    # The app writes players: the CHECKs (E.164, IANA zone) and the touch trigger run.
    # (The test's own operator is qualified: this statement stands for the app's, not ours.)
    q(
        "users write",
        f"UPDATE nikita.users SET timezone = %s{TXT}, phone = %s{TXT}"
        f" WHERE id OPERATOR(pg_catalog.=) %s{UID}",
        ("America/New_York", "+12125550100", U3),
    )
    # The operator API (functions/admin_*.sql), with valid arguments; run_job_now before the
    # jobs below, so that the failing conversations run stays the last row.
    since = now - dt.timedelta(days=1)
    q(
        "find_events",
        f"SELECT count(*) FROM nikita.find_events(%s{UID}, %s{TXT}, %s{TXT}, %s{TS}, NULL, 10,"
        " false)",
        (U1, "pending", "message_delivery", since),
    )
    q("show_event", f"SELECT id FROM nikita.show_event(%s{UID}, true)", (ev[0],))
    q(
        "event failed",
        f"UPDATE nikita.scheduled_events SET status = 'failed'"
        f" WHERE id OPERATOR(pg_catalog.=) %s{UID}",
        (ev[4],),
    )
    q("retry_event", f"SELECT nikita.retry_event(%s{UID}, NULL)", (ev[4],))
    q(
        "cancel_pending_events",
        f"SELECT nikita.cancel_pending_events(NULL, %s{TXT})",
        ("follow_up",),
    )
    q("list_jobs", "SELECT count(*) FROM nikita.list_jobs()")
    q(
        "list_job_runs",
        f"SELECT count(*) FROM nikita.list_job_runs(%s{TXT}, %s{TXT}, %s{TS}, NULL, 10)",
        ("sweep", "completed", since),
    )
    q("run_job_now", f"SELECT status FROM nikita.run_job_now(%s{TXT})", ("sweep",))
    # Every job as pg_cron runs it, then one that fails (alert path).
    jobs = conn.execute("SELECT job_name FROM nikita.job_catalog ORDER BY lock_key").fetchall()
    for (job,) in jobs:
        call_job("CALL nikita.run_job(%s)", (job,))
    conn.execute("SET search_path = pg_catalog")
    conn.execute("UPDATE nikita.settings SET value = '-100777' WHERE key = 'alert_chat_id'")
    conn.execute(
        "CREATE FUNCTION nikita.test_refuse() RETURNS trigger LANGUAGE plpgsql"
        " SET search_path = pg_catalog AS $$BEGIN RAISE EXCEPTION 'refused'; END$$"
    )
    conn.execute(
        "CREATE TRIGGER test_refuse BEFORE UPDATE ON nikita.conversations"
        " FOR EACH ROW EXECUTE FUNCTION nikita.test_refuse()"
    )
    conn.execute(
        "INSERT INTO nikita.conversations (user_id, platform, started_at,"
        " last_message_at) VALUES (%s, 'telegram', now() - interval '1 hour',"
        " now() - interval '30 minutes')",
        (U1,),
    )
    conn.execute(sql.SQL("SET search_path = {}").format(sql.SQL(path)))
    call_job("CALL nikita.run_job('conversations')")

    # Whatever else schema nikita holds (internals, functions added later): arguments of the
    # right types. An error is fine here; only a planted object running is not.
    conn.execute("SET search_path = pg_catalog")
    rest = conn.execute(
        """
        SELECT p.proname,
               array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) AS t)
        FROM pg_proc p
        WHERE p.pronamespace = 'nikita'::regnamespace AND p.prokind = 'f'
          AND p.prorettype <> 'trigger'::regtype
        ORDER BY 1
        """
    ).fetchall()
    conn.execute(sql.SQL("SET search_path = {}").format(sql.SQL(path)))
    for name, argtypes in rest:
        if name in called:
            continue
        args = ", ".join(GENERIC_ARG.get(a, f"NULL::{a}") for a in argtypes)
        called.add(name)
        with contextlib.suppress(psycopg.Error):
            conn.execute(
                sql.SQL("SELECT nikita.{}({})").format(sql.Identifier(name), sql.SQL(args))
            )
    conn.execute("SET search_path = pg_catalog")
    return called, job_errors


@pytest.mark.parametrize("path", [DEFAULT_PATH, HOSTILE_PATH], ids=["default-path", "hostile"])
def test_no_planted_object_runs_in_any_function_or_job(
    db_url: str, path: str, attacker_role: None
) -> None:
    warnings: list[str] = []
    with connect(db_url) as admin, connect(db_url) as conn:
        conn.add_notice_handler(lambda d: warnings.append(str(d.message_primary)))
        seed(conn)
        with planted(admin, roles=["postgres"]):
            called, job_errors = exercise(conn, path)
            calls, log = attacker_calls(admin)
            superuser = attacker_is_superuser(admin)
        # The scenario really ran: each job completed (or failed as the test made it).
        statuses = conn.execute(
            "SELECT job_name, status FROM nikita.job_executions"
            " WHERE status <> 'running' ORDER BY id"
        ).fetchall()
        decayed = conn.execute(
            "SELECT count(*) FROM nikita.score_history WHERE event_type = 'decay'"
        ).fetchone()
    planted_warnings = [w for w in warnings if w.startswith("planted object")]
    assert calls == 0 and not log and not planted_warnings, (
        f"planted objects ran {calls} time(s) (attacker superuser now: {superuser}):\n"
        + "\n".join(map(repr, log or planted_warnings[:20]))
    )
    assert not superuser, "attacker became a superuser"
    assert job_errors == []
    assert {"run_job", "schedule_event", "claim_events", "apply_decay"} <= called
    jobs = [s for s in statuses if s[1] != "skipped"]
    assert ("decay", "completed") in jobs and ("sweep", "completed") in jobs, statuses
    assert ("summary", "completed") in jobs and ("cleanup", "completed") in jobs, statuses
    assert jobs[-1] == ("conversations", "failed"), statuses
    assert decayed is not None and decayed[0] >= 1


def test_a_real_pg_cron_run_calls_no_planted_object(
    cron_database_url: str, attacker_role: None
) -> None:
    """The cron path: pg_cron runs a job as its role, with the default search path."""
    with connect(cron_database_url) as admin:
        admin.execute("SET search_path = pg_catalog")
        jobs = nikita_jobs(admin)
        assert "nikita-conversations" in jobs, "the package's jobs are scheduled"
        row = admin.execute(
            "SELECT j.username, r.rolsuper FROM cron.job j JOIN pg_roles r"
            " ON r.rolname = j.username WHERE j.jobname = 'nikita-conversations'"
        ).fetchone()
        assert row is not None
        runner, runner_is_super = row
        # The runner's own search_path setting is a second guard; take it away so that the run
        # meets the default path, as it would on a cluster where nobody set one.
        db = admin.execute("SELECT current_database()").fetchone()
        assert db is not None
        reset_path = not runner_is_super
        if reset_path:
            admin.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
                    sql.Identifier(runner), sql.Identifier(db[0]), sql.SQL(DEFAULT_PATH)
                )
            )
        try:
            with planted(admin, roles=sorted({runner, "postgres"})):
                last = admin.execute(
                    "SELECT coalesce(max(id), 0) FROM nikita.job_executions"
                ).fetchone()
                assert last is not None
                deadline = time.monotonic() + CRON_WAIT
                found = None
                while found is None and time.monotonic() < deadline:
                    found = admin.execute(
                        "SELECT id, status FROM nikita.job_executions WHERE id > %s"
                        " AND job_name = 'conversations' AND status <> 'running'"
                        " ORDER BY id LIMIT 1",
                        (last[0],),
                    ).fetchone()
                    if found is None:
                        time.sleep(1)
                calls, log = attacker_calls(admin)
                superuser = attacker_is_superuser(admin)
        finally:
            if reset_path:
                admin.execute(
                    sql.SQL("ALTER ROLE {} IN DATABASE {} RESET search_path").format(
                        sql.Identifier(runner), sql.Identifier(db[0])
                    )
                )
    assert found is not None, f"no conversations job ran within {CRON_WAIT} s"
    assert calls == 0 and not log, (
        f"planted objects ran {calls} time(s) under pg_cron (attacker superuser now:"
        f" {superuser}):\n" + "\n".join(map(repr, log))
    )
    assert not superuser, "attacker became a superuser"
    assert found[1] == "completed", found
    assert runner == "nikita_jobs" and not runner_is_super, "the jobs run as nikita_jobs"
