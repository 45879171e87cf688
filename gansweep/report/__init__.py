"""``gansweep report``: compare run folders in a table, an HTML page, plots and files.

Modules by concern: ``load`` (find and read run folders), ``diagnose`` (plain-words
diagnosis), ``provenance`` (runs scored differently), ``table`` (sort/filter/group/format),
``sweeps`` (per-sweep analysis), ``plots``, ``html``, ``export`` and ``command`` (the CLI).
"""
