"""One-line errors and exit 2 for bad input that needs no stack (docs/cli.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from simctl.backends.http import call
from simctl.cli import main
from simctl.errors import InvalidInput, SimctlError

ROOT = Path(__file__).resolve().parents[2]


def test_schema_to_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.json"
    result = CliRunner().invoke(main, ["scenario", "schema", "-o", str(target)])
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot write {target}: No such file or directory\n"
    assert not target.parent.exists()


@pytest.mark.parametrize("name", ["README.md", "pyproject.toml"])
def test_runbook_show_of_a_file_that_is_no_runbook(name: str) -> None:
    result = CliRunner().invoke(main, ["runbook", "show", str(ROOT / name)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert f"{name} is not a runbook: it has no front matter" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_refusal_is_invalid_input_and_a_server_error_is_not(
        httpserver_answers: dict[int, str]) -> None:
    url = httpserver_answers["url"]
    with pytest.raises(InvalidInput) as refused:
        call("POST", f"{url}/400", {})
    assert str(refused.value) == f"nope: bad value (HTTP 400 from POST {url}/400)"
    with pytest.raises(SimctlError) as failed:
        call("GET", f"{url}/500")
    assert not isinstance(failed.value, InvalidInput)
    assert str(failed.value).startswith("boom (HTTP 500 from GET ")


@pytest.fixture
def httpserver_answers():
    """A real HTTP server on 127.0.0.1 answering /NNN with status NNN and a JSON error."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            code = int(self.path.strip("/"))
            body = json.dumps({"error": "nope:\n bad value" if code < 500 else "boom"}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}"}
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("group", "key", "known"), [("scenario", "valid", "slow-dyno"),
                                                     ("runbook", "steps", "h12-request-timeouts")])
def test_list_json(group: str, key: str, known: str) -> None:
    import json

    result = CliRunner().invoke(main, [group, "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert known in {entry["id"] for entry in listed}
    assert all(key in entry for entry in listed)
