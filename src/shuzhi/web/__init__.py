"""The cockpit (驾驶舱): Jinja2 pages with htmx and ECharts, one view module per package."""

from shuzhi.web.app import error_page, install

__all__ = ["error_page", "install"]
