"""pg_cron in another database of the cluster (RDS, Cloud SQL, Azure, Neon): a throwaway cluster
with cron.database_name = postgres and the game in database `game`. One migrate schedules the
jobs into `game` from `postgres`, pg_cron really runs one, and the game's own
`nikita-touchpoints` job survives migrate and cron-remove.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import psycopg
import pytest

from nikita_testdb import ROOT, database_url

CRON_WAIT = 90  # seconds: pg_cron has minute granularity
FOREIGN = ("nikita-touchpoints", "*/15 * * * *", "SELECT 'the game''s own job'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def split_cluster() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(game URL, postgres URL, env): a cluster of our own, never the shared one."""
    base = tempfile.mkdtemp(prefix="nikita-cron-pg-", dir="/var/tmp")
    os.chmod(base, 0o755)
    env = {
        **os.environ,
        "NIKITA_PGDATA": os.path.join(base, "data"),
        "NIKITA_PGPORT": str(_free_port()),
        "NIKITA_DB": "game",
        "NIKITA_CRON_DB": "postgres",
        "NIKITA_CRON_FIND": "yes",  # scripts/test.sh turns finding off for its test databases
    }
    env.pop("CRON_DATABASE_URL", None)
    script = str(ROOT / "scripts" / "db.sh")
    up = subprocess.run(
        [script, "up"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    try:
        assert up.returncode == 0, up.stderr
        game = up.stdout.strip().splitlines()[-1]
        yield game, database_url(game, "postgres"), env
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


def run(env: dict[str, str], url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / argv[0]), *argv[1:]],
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def jobs(conn: psycopg.Connection) -> dict[str, tuple[int, str, str, str, bool]]:
    rows = conn.execute(
        "SELECT jobname, jobid, database, username, schedule, active FROM cron.job"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}


def test_migrate_schedules_from_pg_cron_in_postgres(
    split_cluster: tuple[str, str, dict[str, str]],
) -> None:
    game_url, cron_url, env = split_cluster
    with psycopg.connect(cron_url, autocommit=True) as cron:
        cron.execute("SELECT cron.schedule_in_database(%s, %s, %s, 'game')", FOREIGN)
        migrate = run(env, game_url, "migrate.sh")
        assert migrate.returncode == 0, migrate.stderr
        assert (
            "schedule: pg_cron jobs of database game, kept by pg_cron in database postgres"
            in migrate.stderr
        )
        assert "scheduled nikita-sweep (pg_cron job" in migrate.stderr
        first = jobs(cron)
        foreign = first.pop(FOREIGN[0])
        assert foreign[1:] == ("game", "postgres", FOREIGN[1], True)
        assert len(first) == 6
        assert {v[1:3] for v in first.values()} == {("game", "nikita_jobs")}

        with psycopg.connect(game_url, autocommit=True) as game:
            rec = game.execute(
                "SELECT job_name, cron_job_id, cron_database FROM nikita.cron_jobs"
            ).fetchall()
            assert {r[2] for r in rec} == {"postgres"}
            assert sorted(r[1] for r in rec) == sorted(v[0] for v in first.values())

            # A real pg_cron run, from postgres into game, recorded in game.
            deadline = time.monotonic() + CRON_WAIT
            found = None
            while found is None and time.monotonic() < deadline:
                found = game.execute(
                    "SELECT status FROM nikita.job_executions"
                    " WHERE job_name = 'conversations' AND status <> 'running' LIMIT 1"
                ).fetchone()
                if found is None:
                    time.sleep(1)
            assert found == ("completed",), f"no conversations run within {CRON_WAIT} s"

            # The operator's change: recorded in game, applied by the next migrate.
            notices: list[str] = []
            game.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
            game.execute("SELECT nikita.set_job_schedule('decay', '17 * * * *')")
            assert any("pg_cron keeps job decay in database postgres" in n for n in notices)

        # Given the cron database's connection instead of finding it: the same result.
        again = run({**env, "CRON_DATABASE_URL": cron_url}, game_url, "migrate.sh")
        assert again.returncode == 0, again.stderr
        after = jobs(cron)
        assert after.pop(FOREIGN[0]) == foreign
        assert after["nikita-decay"][3] == "17 * * * *"
        assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in first.items()}

        removed = run(env, game_url, "cron.sh", "remove")
        assert removed.returncode == 0, removed.stderr
        assert set(jobs(cron)) == {FOREIGN[0]}, "cron-remove leaves the game's own job"
