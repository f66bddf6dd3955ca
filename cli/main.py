"""``gemq``: submit, inspect, wait for and cancel jobs, and run batches, through the HTTP API.

Talks to ``GEMQ_URL`` (default http://127.0.0.1:8000) with ``GEMQ_API_KEY``.  Exit status: 0 when
the job succeeded (or the command did what it was asked), 1 when it failed or was cancelled,
2 for a usage or API error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any

import click
import httpx
from tqdm import tqdm

#: Job states after which nothing changes.
TERMINAL = {"succeeded", "failed", "cancelled"}
#: Polling interval bounds while waiting (seconds).
POLL_MIN, POLL_MAX = 0.25, 2.0
#: Batch states after which nothing changes.
BATCH_FINISHED = {"completed", "cancelled"}
#: Seconds the server may take to read and validate a large batch before it answers.
UPLOAD_TIMEOUT = httpx.Timeout(30.0, read=600.0, write=600.0)


class ApiFailure(click.ClickException):
    """The API refused or could not be reached (exit status 2)."""

    exit_code = 2


class Api:
    """A thin client for the gemq HTTP API."""

    def __init__(self, url: str, key: str | None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; an API error becomes a ClickException with the server's message."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiFailure(f"cannot reach gemq at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                message = f"{response.status_code} {error['type']}: {error['message']}"
                # A refused batch lists its invalid lines: show the first ones.
                message += "".join(f"\n  {d['loc']}: {d['message']}" for d in (error.get("details") or [])[:10])
            except (ValueError, KeyError, TypeError):
                message = f"{response.status_code}: {response.text[:200]}"
            raise ApiFailure(message)
        return response.json()

    def wait(self, job_id: str, timeout: float | None) -> dict[str, Any]:
        """Poll the job until it is terminal (or ``timeout`` seconds pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_MIN
        while True:
            job: dict[str, Any] = self.call("GET", f"/v1/jobs/{job_id}")
            if job["status"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise ApiFailure(f"job {job_id} is still {job['status']} after {timeout}s")
            time.sleep(delay)
            delay = min(POLL_MAX, delay * 1.5)


    def wait_batch(self, batch_id: str, timeout: float | None) -> dict[str, Any]:
        """Poll the batch until it finished, with a progress bar on stderr (when it is a terminal)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        batch: dict[str, Any] = self.call("GET", f"/v1/batches/{batch_id}")
        delay = POLL_MIN
        with tqdm(total=batch["total"], unit="req", desc=f"batch {batch_id[:8]}", file=sys.stderr) as bar:
            while True:
                bar.update(batch["done"] - bar.n)
                counts = batch["counts"]
                bar.set_postfix(ok=counts["succeeded"], failed=counts["failed"], cancelled=counts["cancelled"])
                if batch["status"] in BATCH_FINISHED:
                    return batch
                if deadline is not None and time.monotonic() >= deadline:
                    raise ApiFailure(f"batch {batch_id} is still {batch['status']} after {timeout}s")
                time.sleep(delay)
                delay = min(POLL_MAX, delay * 1.5)
                batch = self.call("GET", f"/v1/batches/{batch_id}")

    def download(self, path: str, out: IO[bytes]) -> None:
        """Stream a response body (the batch's results) into ``out``."""
        try:
            with self.http.stream("GET", path) as response:
                if response.status_code >= 400:
                    raise ApiFailure(f"{response.status_code}: {response.read()[:200]!r}")
                for chunk in response.iter_bytes():
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise ApiFailure(f"cannot read {path}: {exc}") from exc


def finish(job: dict[str, Any], as_json: bool) -> None:
    """Print a finished job (its text, or JSON) and exit with its outcome."""
    if as_json:
        click.echo(json.dumps(job, indent=2))
    elif job["status"] == "succeeded":
        click.echo(job["result"]["text"])
    else:
        error = job.get("error") or {}
        click.echo(f"job {job['id']} {job['status']}: {error.get('type')}: {error.get('message')}", err=True)
    sys.exit(0 if job["status"] == "succeeded" else 1)


@click.group()
@click.option("--url", envvar="GEMQ_URL", default="http://127.0.0.1:8000", show_default=True, help="gemq API URL.")
@click.option("--api-key", envvar="GEMQ_API_KEY", help="API key (GEMQ_API_KEY).")
@click.pass_context
def main(ctx: click.Context, url: str, api_key: str | None) -> None:
    """Submit Gemini jobs to gemq and follow them."""
    ctx.obj = Api(url, api_key)


@main.command()
@click.argument("prompt")
@click.option("--model", help="Gemini model (default: the server's GEMQ_DEFAULT_MODEL).")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default="normal", show_default=True)
@click.option("--system", "system_instruction", help="System instruction.")
@click.option("--wait", "wait_", is_flag=True, help="Wait for the result and print its text.")
@click.option("--timeout", type=float, help="Seconds to wait at most (with --wait).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole job as JSON.")
@click.pass_obj
def submit(api: Api, prompt: str, model: str | None, priority: str, system_instruction: str | None, wait_: bool,
           timeout: float | None, as_json: bool) -> None:
    """Submit PROMPT as a job; print its id (or, with --wait, its answer)."""
    body: dict[str, Any] = {"prompt": prompt, "priority": priority}
    if model:
        body["model"] = model
    if system_instruction:
        body["system_instruction"] = system_instruction
    job = api.call("POST", "/v1/jobs", json=body)
    if not wait_:
        click.echo(json.dumps(job, indent=2) if as_json else job["id"])
        return
    click.echo(f"job {job['id']} queued; waiting...", err=True)
    finish(api.wait(job["id"], timeout), as_json)


@main.command()
@click.argument("job_id")
@click.pass_obj
def status(api: Api, job_id: str) -> None:
    """Print a job as JSON."""
    click.echo(json.dumps(api.call("GET", f"/v1/jobs/{job_id}"), indent=2))


@main.command()
@click.argument("job_id")
@click.option("--timeout", type=float, help="Seconds to wait at most.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole job as JSON.")
@click.pass_obj
def wait(api: Api, job_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for a job to finish; print its answer."""
    finish(api.wait(job_id, timeout), as_json)


@main.command()
@click.argument("job_id")
@click.pass_obj
def cancel(api: Api, job_id: str) -> None:
    """Cancel a job that has not finished."""
    job = api.call("POST", f"/v1/jobs/{job_id}/cancel")
    click.echo(f"job {job['id']} {job['status']}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", help="Model of the lines that name none.")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default="low", show_default=True)
@click.option("--webhook-url", help="Where batch.completed is sent.")
@click.option("--wait", "wait_", is_flag=True, help="Wait with a progress bar, then write the results.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results (JSONL) here; implies --wait.")
@click.option("--timeout", type=float, help="Seconds to wait at most.")
@click.pass_obj
def batch(api: Api, file: Path, model: str | None, priority: str, webhook_url: str | None, wait_: bool,
          output: Path | None, timeout: float | None) -> None:
    """Submit FILE.jsonl (gemq requests or Gemini batch lines) as one batch; print its id.

    With --wait or -o: show progress until it finishes, then write its results (one JSON line per
    request, in order) to -o or stdout; exit 0 if every request succeeded, else 1.
    """
    params = {"priority": priority, **({"model": model} if model else {}),
              **({"webhook_url": webhook_url} if webhook_url else {})}
    with file.open("rb") as body:
        made = api.call("POST", "/v1/batches", content=body, params=params, timeout=UPLOAD_TIMEOUT,
                        headers={"Content-Type": "application/jsonl"})
    if not (wait_ or output):
        click.echo(made["id"])
        return
    click.echo(f"batch {made['id']}: {made['total']} requests queued", err=True)
    done = api.wait_batch(made["id"], timeout)
    if output:
        with output.open("wb") as out:
            api.download(f"/v1/batches/{made['id']}/results", out)
    else:
        api.download(f"/v1/batches/{made['id']}/results", sys.stdout.buffer)
    counts = done["counts"]
    click.echo(f"batch {done['id']} {done['status']}: {counts['succeeded']} succeeded, {counts['failed']} failed, "
               f"{counts['cancelled']} cancelled", err=True)
    sys.exit(0 if counts["succeeded"] == done["total"] else 1)
