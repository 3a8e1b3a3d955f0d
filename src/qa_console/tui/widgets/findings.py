"""A package validator's report (check_tarball's CheckReport) as coloured lines: errors red,
warnings yellow, then the one-line verdict (green when the archive would serve)."""

from __future__ import annotations

from rich.text import Text

from qa_console.ops.packaging.check import CheckReport


def findings_text(report: CheckReport) -> Text:
    text = Text()
    for severity, style, findings in (
        ("error", "bold red", report.errors),
        ("warning", "yellow", report.warnings),
    ):
        for finding in findings:
            text.append(f"{severity} ", style=style)
            text.append(f"[{finding.code}] ", style="dim")
            text.append(finding.message + "\n")
            if finding.hint:
                text.append(f"  fix: {finding.hint}\n", style="dim")
    text.append(report.summary(), style="bold green" if report.ok else "bold red")
    return text
