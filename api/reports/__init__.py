"""The coverage report of one park and period: data, inline SVG maps, HTML (en, vi) and PDF.

| module | does |
|---|---|
| ``data`` | gathers the figures from the read services into one :class:`~api.reports.data.ReportData` |
| ``svg`` | small maps of H3 cells as inline SVG (no tiles, no network) |
| ``i18n`` | the report's words in English and Vietnamese, and number formats |
| ``html`` | renders the data as one self-contained HTML page with print CSS |
| ``pdf`` | prints that page to PDF in headless Chromium (Playwright) |
"""
