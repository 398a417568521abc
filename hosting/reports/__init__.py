"""HTML invoices, usage reports and the operator's platform report: self-contained files
(inline CSS and SVG, nothing fetched) rendered with Jinja2 autoescaping."""

from hosting.reports.render import render_invoice, render_platform, render_usage

__all__ = ["render_invoice", "render_platform", "render_usage"]
