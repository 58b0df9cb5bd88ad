"""The survey upload panel: a planner sends a drive-test file for the chosen park from the page.

The API behind these pages runs no ingester, so the job stays queued: what is checked here is the
page's side (the request it makes, the job it shows); the import itself by a running ingester is
``tests/integration/test_upload_import.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.conftest import Page

pytestmark = pytest.mark.integration

SURVEY = Path(__file__).parents[1] / "surveys" / "gnettrack_survey.csv"


def test_a_survey_file_is_uploaded_for_the_chosen_park(page: Page) -> None:
    pg = page.open()
    pg.wait_for_function("document.getElementById('map').dataset.view === 'p1'", timeout=30_000)
    panel = pg.locator("#imports-panel")
    panel.locator("[data-role=send]").click()
    assert "choose a survey file first" in panel.locator("[data-role=status]").inner_text()

    panel.locator("[data-role=file]").set_input_files(str(SURVEY))
    panel.locator("[data-role=mapping]").select_option("gnettrack")
    panel.locator("[data-role=send]").click()
    pg.wait_for_function(
        "document.getElementById('imports-panel').dataset.status === 'queued'", timeout=30_000
    )
    assert "117 rows" in panel.locator("[data-role=status]").inner_text()
    job_id = panel.get_attribute("data-job")
    listed = pg.evaluate("async () => (await PW.api('imports', new URLSearchParams({park: 'p1'}))).items")
    job = next(j for j in listed if j["id"] == job_id)
    assert (job["park"], job["filename"], job["mapping"], job["rows"]) == (
        "p1",
        "gnettrack_survey.csv",
        "gnettrack",
        117,
    )
    assert job["status"] == "queued" and job["size_bytes"] == SURVEY.stat().st_size
    assert page.errors == [] and page.foreign == []
