"""The registry of output formats, by name (``outputs.base.OutputFormat``). Adding a format is
one module with an ``OutputFormat`` subclass and one line here. Kept apart from the package
``__init__`` so that writing metrics.csv never imports what reports and exports need."""


from __future__ import annotations

from doerunner.outputs.base import OutputFormat
from doerunner.outputs.cases_csv import CasesCsv
from doerunner.outputs.compare_table import CompareText
from doerunner.outputs.effects_table import EffectsText
from doerunner.outputs.export_csv import ExportCsv, TableCsv
from doerunner.outputs.export_json import ExportJson
from doerunner.outputs.export_parquet import ExportParquet
from doerunner.outputs.junit import Junit
from doerunner.outputs.metrics_csv import MetricsCsv
from doerunner.outputs.repetitions import RepetitionsCsv
from doerunner.outputs.report_html import ReportHtml
from doerunner.outputs.report_text import ReportMarkdown, ReportText
from doerunner.outputs.run_json import RunJson
from doerunner.outputs.timeseries import CaseTimeseries, TimeseriesCsv

FORMATS: dict[str, type[OutputFormat]] = {
    MetricsCsv.NAME: MetricsCsv,
    RunJson.NAME: RunJson,
    Junit.NAME: Junit,
    CaseTimeseries.NAME: CaseTimeseries,
    TimeseriesCsv.NAME: TimeseriesCsv,
    RepetitionsCsv.NAME: RepetitionsCsv,
    CasesCsv.NAME: CasesCsv,
    ExportJson.NAME: ExportJson,
    ExportCsv.NAME: ExportCsv,
    ExportParquet.NAME: ExportParquet,
    TableCsv.NAME: TableCsv,
    ReportText.NAME: ReportText,
    ReportMarkdown.NAME: ReportMarkdown,
    ReportHtml.NAME: ReportHtml,
    EffectsText.NAME: EffectsText,
    CompareText.NAME: CompareText,
}

__all__ = ["FORMATS"]
