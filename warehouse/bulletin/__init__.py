"""The bureau's bulletin, one per month: public and internal editions in HTML, Markdown and PDF.

* :mod:`.collect`: the figures for a month, read from the warehouse (``SELECT`` only), with
  :mod:`.volume` (monthly volumes, 同比 / 环比, channel mix) and :mod:`.quality` (the data-quality
  summary of the internal edition);
* :mod:`.sentences`: the bureau's wording, and which figure goes where;
* :mod:`.charts`: the monthly charts as inline SVG (separate panels where scales differ);
* :mod:`.content`: what each edition shows (tables, sources, Beijing time);
* :mod:`.html` (Jinja2 template ``warehouse/templates/bulletin/page.html``), :mod:`.markdown`,
  :mod:`.pdf` (headless Chromium): the formats;
* :mod:`.archive`: the month folders ``<root>/YYYY-MM/`` and the index page.
"""

from warehouse.bulletin.archive import write_bulletin, write_index, write_month
from warehouse.bulletin.collect import BulletinData, collect, latest_month, period_label

__all__ = ["BulletinData", "collect", "latest_month", "period_label", "write_bulletin", "write_index", "write_month"]
