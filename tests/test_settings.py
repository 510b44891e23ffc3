"""Settings from the environment: safe defaults, strict production."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.worker import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "production-secret-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "factpair.example.org",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True
    )


class TestSettings:
    def test_it_passes_the_deploy_check_in_production(self):
        result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
        assert result.returncode == 0, result.stderr

    def test_it_requires_a_secret_key_when_debug_is_off(self):
        result = manage("check", **{**PRODUCTION, "SECRET_KEY": ""})
        assert result.returncode != 0
        assert "SECRET_KEY must be set when DEBUG is off" in result.stderr

    def test_debug_is_off_unless_asked_for(self):
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
        code = "from django.conf import settings as s; print(s.DEBUG)"
        run = [sys.executable, "manage.py", "shell", "--no-imports", "-c", code]
        refused = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True)
        assert "SECRET_KEY must be set when DEBUG is off" in refused.stderr
        env["SECRET_KEY"] = PRODUCTION["SECRET_KEY"]
        result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.stdout.split() == ["False"], result.stderr

    def test_the_test_run_and_make_run_ask_for_development_mode(self):
        assert os.environ["DEBUG"] == "true"  # tests/devmode.py
        assert 'export DEBUG="${DEBUG:-true}"' in (ROOT / "scripts" / "run-dev.sh").read_text()
        assert "export DEBUG ?= true" in (ROOT / "Makefile").read_text()

    def test_it_refuses_a_malformed_boolean(self):
        result = manage("check", DEBUG="maybe")
        assert "DEBUG must be a boolean" in result.stderr

    def test_it_reads_the_database_and_broker_from_the_environment(self):
        code = (
            "from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], "
            "s.CELERY_BROKER_URL, bool(s.QUALS_MODEL))"
        )
        result = manage(
            "shell", "--no-imports", "-c", code,
            DATABASE_URL="postgres://u@db.example:5432/study",
            CELERY_BROKER_URL="redis://cache:6379/2",
            QUALS_MODEL="",
        )  # fmt: skip
        assert result.stdout.split() == [
            "django.db.backends.postgresql", "study", "redis://cache:6379/2", "False"
        ]  # fmt: skip

    def test_importing_the_settings_creates_no_directory(self, tmp_path):
        var = tmp_path / "var"
        code = "import annotation_site.settings as s; print(s.VAR_DIR)"
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(FACTPAIR_VAR_DIR=str(var), CELERY_BROKER_URL="filesystem://localhost/")
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(var) and not var.exists()

    def test_manage_py_makes_the_folders_it_needs(self, tmp_path):
        var = tmp_path / "var"
        result = manage(
            "check", FACTPAIR_VAR_DIR=str(var), CELERY_BROKER_URL="filesystem://localhost/"
        )
        assert result.returncode == 0, result.stderr
        assert (var / "broker" / "queue").is_dir() and (var / "static").is_dir()
