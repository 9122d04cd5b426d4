"""Background LLM jobs from Python: a versioned template, a task type that uses it, a job,
its stored output, feedback, and a re-run.

Run it with ``python -m examples.jobs_quickstart [--database sqlite:///path.db]`` (a
temporary SQLite file by default). With no provider keys configured, the offline echo
provider answers.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import beamish
from beamish.store.models import GlobalConfig, NewTemplateVersion


async def main(database_url: str) -> None:
    """Write a template, point the ``summary`` task at it, run two jobs and rate one."""
    async with beamish.Application(beamish.Settings(database_url=database_url)) as rt:
        # Version 1 of a template; its first version gets the `production` label.
        await rt.templates.create_version(NewTemplateVersion(
            name="summary", task_type="summary", output_format="markdown",
            prompt="Summarise {{ topic }} in {{ words }} words.",
            variables_schema={"type": "object", "required": ["topic", "words"],
                              "properties": {"topic": {"type": "string"},
                                             "words": {"type": "integer"}}}))
        # The `summary` task (every tier) uses it, on the echo model.
        await rt.store.set_global_config(GlobalConfig(
            task_type="summary", provider="echo", model="echo-1", template="summary"))

        # A job names only its task type and variables: the configured template renders.
        handle = await rt.jobs.enqueue(user_id="ada", task_type="summary",
                                       variables={"topic": "supervision trees", "words": 30})
        print(f"queued job {handle.job_id} (output {handle.output_id}), "
              f"expected by {handle.estimated_completion:%H:%M:%S}")
        output = await rt.jobs.wait(handle.output_id, user_id="ada", timeout=30)
        print(f"{output.status}: {output.raw_response}")
        print(f"  template {output.template_name} v{output.template_version}, "
              f"model {output.model}, {output.prompt_tokens}+{output.completion_tokens} tokens")

        await rt.jobs.set_feedback(output.output_id, user_id="ada", rating="up",
                                   reason="short and right")
        again = await rt.jobs.rerun(output.output_id, user_id="ada")
        rerun = await rt.jobs.wait(again.output_id, user_id="ada", timeout=30)
        print(f"re-run of {rerun.parent_output_id}: {rerun.status}")
        for stats in await rt.jobs.feedback_stats(template_name="summary"):
            print(f"feedback on {stats.template_name} v{stats.template_version} "
                  f"({stats.model}): {stats.up} up, {stats.down} down")


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.database:
        asyncio.run(main(args.database))
        return
    with tempfile.TemporaryDirectory(prefix="beamish-example-") as folder:
        asyncio.run(main(f"sqlite:///{Path(folder) / 'beamish.db'}"))


if __name__ == "__main__":
    _cli()
