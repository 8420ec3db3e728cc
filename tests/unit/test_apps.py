"""A project's own apps: Procfile parsing, the project file, and the stack they make."""

from __future__ import annotations

from pathlib import Path

import pytest

from simctl.apps import procfile
from simctl.apps.config import resolve
from simctl.apps.stack import apply
from simctl.errors import InvalidInput
from simctl.platform.procfile_dyno import argv_for
from simctl.stack.definition import load


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_procfile_types_comments_and_the_web_command(tmp_path: Path) -> None:
    path = write(tmp_path / "Procfile", "# processes\n\nweb: gunicorn app:app -b :$PORT\n"
                                        "worker:  python worker.py\n")
    assert procfile.parse(path) == {"web": "gunicorn app:app -b :$PORT",
                                    "worker": "python worker.py"}
    assert procfile.web_command(path, allow_shell=False) == "gunicorn app:app -b :$PORT"


@pytest.mark.parametrize(("text", "message"), [
    ("worker: python w.py\n", "no `web` process (found: worker)"),
    ("web: a\nweb: b\n", "'web' is defined twice"),
    ("just words\n", "expected `TYPE: COMMAND`"),
    ("web: python app.py | tee log\n", "needs a shell (|); pass --allow-shell"),
    ("web: echo 'unclosed\n", "cannot be split into words"),
])
def test_procfile_errors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "Procfile", text)
    with pytest.raises(InvalidInput, match="^.*Procfile.*") as error:
        procfile.web_command(path, allow_shell=False)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_quotes_are_not_shell_syntax_and_assignments_set_variables() -> None:
    assert procfile.shell_syntax('python3 -c "raise SystemExit(4)"') == ""
    env = {"PORT": "5000"}
    assert argv_for("WORKERS=2 gunicorn -b 127.0.0.1:$PORT -w ${WORKERS}", env, False) == \
        ["gunicorn", "-b", "127.0.0.1:5000", "-w", "2"]
    assert argv_for("a | b", {}, True) == ["sh", "-c", "a | b"]


def test_project_file_then_app_options_then_dynos(tmp_path: Path) -> None:
    write(tmp_path / "svc" / "Procfile", "web: python3 app.py\n")
    write(tmp_path / "other" / "Procfile", "web: python3 other.py\n")
    write(tmp_path / "simctl.yaml", "apps:\n  web:\n    procfile: svc\n    dynos: 2\n"
                                    "    env: {GREETING: hi}\n")
    apps = resolve((), None, None, tmp_path)
    assert [(a.name, a.dynos, a.env, a.command) for a in apps] == \
        [("web", 2, {"GREETING": "hi"}, "python3 app.py")]
    assert apps[0].cwd == str((tmp_path / "svc").resolve())
    # --app alone ignores ./simctl.yaml; --dynos sets every app's count
    apps = resolve((f"shop={tmp_path / 'other'}",), 4, None, tmp_path)
    assert [(a.name, a.dynos) for a in apps] == [("shop", 4)]
    apps = resolve((f"shop={tmp_path / 'other'}",), None, tmp_path / "simctl.yaml", tmp_path)
    assert [(a.name, a.dynos) for a in apps] == [("web", 2), ("shop", 3)]


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("apps: {web: {procfile: svc, dynos: 0}}", "dynos must be a whole number from 1 to 20"),
    ("apps: {web: {procfile: svc, image: x}}", "expected a mapping with `procfile` or `image`"),
    ("apps: {web: {image: shop-web:dev}}", "`image` runs on the compose backend only"),
    ("apps: {web: {procfile: svc, nope: 1}}", "unknown key 'nope'"),
    ("apps: {Web: {procfile: svc}}", "invalid app name 'Web'"),
    ("apps: {web: {procfile: missing}}", "no such Procfile"),
    ("services: {}", "expected a mapping with one key, `apps`"),
])
def test_project_file_errors(tmp_path: Path, yaml_text: str, message: str) -> None:
    write(tmp_path / "svc" / "Procfile", "web: python3 app.py\n")
    write(tmp_path / "simctl.yaml", yaml_text)
    with pytest.raises(InvalidInput, match=message):
        resolve((), None, None, tmp_path)


def test_web_replaces_the_builtin_dynos_and_another_app_is_added(tmp_path: Path) -> None:
    write(tmp_path / "Procfile", "web: python3 app.py\n")
    apps = resolve((f"web={tmp_path}", f"shop={tmp_path}"), 2, None, tmp_path)
    definition = apply(load(port_offset=100), apps, 100)
    dynos = {name: spec for name, spec in definition.services.items() if spec.role == "dyno"}
    assert sorted(dynos) == ["dyno-1", "dyno-2", "shop-dyno-1", "shop-dyno-2"]
    assert all("procfile-dyno" in spec.command for spec in dynos.values())
    web1 = dynos["dyno-1"]
    assert web1.labels["dyno"] == "web.1"
    assert web1.command[web1.command.index("--port") + 1] == "8501"  # the process's $PORT
    assert web1.health_url == "http://127.0.0.1:7501/health"  # the supervisor's
    proxies = {p["name"]: p for p in definition.proxies}
    assert "web.3" not in proxies  # the built-in third dyno is gone with its link
    assert proxies["web.2"]["upstream"] == "127.0.0.1:8502"
    assert proxies["shop.1"] == {"name": "shop.1", "listen": "127.0.0.1:21801",
                                 "upstream": "127.0.0.1:8901", "enabled": True}
    sync = next(s for s in definition.services.values() if s.role == "sync").command
    assert [sync[i + 1] for i, a in enumerate(sync) if a == "--dyno"] == [
        "web/web.1=127.0.0.1:21501", "web/web.2=127.0.0.1:21502",
        "shop/shop.1=127.0.0.1:21801", "shop/shop.2=127.0.0.1:21802"]
    assert "shop/shop.localhost" in sync


def test_dynos_without_an_app_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--dynos N sets the dynos of your own apps"):
        resolve((), 2, None, tmp_path)
    with pytest.raises(InvalidInput, match="from 1 to 20"):
        resolve((), 0, None, tmp_path)


def test_images_on_the_compose_backend(tmp_path: Path) -> None:
    """`--app NAME=IMAGE` and `image:` are the compose backend's; its override file runs
    the image beside each dyno's supervisor, in its network namespace."""
    from simctl.apps import compose_apps

    write(tmp_path / "simctl.yaml", "apps: {web: {image: shop-web:dev, dynos: 2, "
                                    "env: {GREETING: hi}}}")
    apps = resolve((), None, None, tmp_path, images=True)
    assert [(a.name, a.image, a.dynos, a.env) for a in apps] == \
        [("web", "shop-web:dev", 2, {"GREETING": "hi"})]
    # what verify and lint read: images for compose, names only for lint
    from simctl.apps.config import project_apps
    assert [a.image for a in project_apps(tmp_path, images=True)] == ["shop-web:dev"]
    assert [a.name for a in project_apps(tmp_path, images=None)] == ["web"]
    with pytest.raises(InvalidInput, match="runs on the compose backend only"):
        project_apps(tmp_path)
    apps = resolve(("web=registry.example/shop:1.2",), 3, None, tmp_path, images=True)
    assert [(a.name, a.image, a.dynos) for a in apps] == [("web", "registry.example/shop:1.2", 3)]
    with pytest.raises(InvalidInput, match="is not an image reference"):
        resolve(("web=Not An Image",), None, None, tmp_path, images=True)
    with pytest.raises(InvalidInput, match="runs a container image .* not a Procfile"):
        resolve((f"web={tmp_path}",), None, None, tmp_path, images=True)
    with pytest.raises(InvalidInput, match="images run on the compose backend"):
        resolve(("web=shop-web:dev",), None, None, tmp_path)
    with pytest.raises(InvalidInput, match="at most 3 dynos"):
        compose_apps.check(resolve(("web=x",), 4, None, tmp_path, images=True), 3)
    with pytest.raises(InvalidInput, match="name it 'web'"):
        compose_apps.check(resolve(("shop=x",), None, None, tmp_path, images=True), 3)
    data = compose_apps.override(apps[0], {"dyno-1": {"dyno": "web.1",
                                                      "health": "http://dyno-1:7401/health"}},
                                 "fast")
    sidecar, app = data["services"]["dyno-1"], data["services"]["dyno-1-app"]
    assert "--attach" in sidecar["command"]
    assert "7401" in sidecar["command"]
    assert app["network_mode"] == "service:dyno-1"
    assert app["environment"] == {"PORT": "8401", "DYNO": "web.1", "PS": "web.1",
                                  "HEROKU_APP_NAME": "web"}
