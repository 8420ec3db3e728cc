"""`simctl report`: a drill's scores, timeline and charts, and a drafted post-incident
review (docs/drills.md, "Reports").

    simctl report                         # the latest drill, as Markdown on stdout
    simctl report d-20261204-171500-ab12 --html r.html --md r.md --json r.json --review pir.md

A running hidden drill is refused without the facilitator token (exit 8): its report
names the faults.
"""

from __future__ import annotations

import click

from simctl.cli.options import default_project
from simctl.drill.state import TOKEN_ENV

_PATH = click.Path(dir_okay=False, writable=True)


@click.command()
@click.argument("drill_id", metavar="[DRILL]", required=False)
@click.option("--html", "html_path", type=_PATH, metavar="FILE",
              help="Write the HTML page (self-contained: charts, timeline, scores).")
@click.option("--md", "md_path", type=_PATH, metavar="FILE", help="Write the Markdown report.")
@click.option("--json", "json_path", type=_PATH, metavar="FILE",
              help="Write scores and timeline as JSON.")
@click.option("--review", "review_path", type=_PATH, metavar="FILE",
              help="Write a drafted post-incident review (Markdown).")
@click.option("--project", default=default_project, show_default="simctl", metavar="NAME",
              help="Project of the drill (env SIMCTL_PROJECT).")
@click.option("--token", envvar=TOKEN_ENV, default=None, metavar="T",
              help="The facilitator token: needed for a running hidden drill "
                   "(env SIMCTL_DRILL_TOKEN).")
def report(drill_id: str | None, html_path: str | None, md_path: str | None,
           json_path: str | None, review_path: str | None, project: str,
           token: str | None) -> None:
    """Report on a drill (default: the latest): scores, timeline, SLI charts, review draft.
    Without a file option the Markdown report goes to stdout."""
    from simctl.drill.report import load_report, to_markdown, write_all

    data = load_report(project, drill_id, token)
    if not any((html_path, md_path, json_path, review_path)):
        click.echo(to_markdown(data), nl=False)
        return
    for path in write_all(data, html_path, md_path, json_path, review_path):
        click.echo(f"wrote {path}")
    click.echo(f"drill {data.drill.get('id')}: score {data.score.overall}/100")


COMMANDS = [report]
