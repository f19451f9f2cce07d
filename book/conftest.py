"""nbval runs the chapters listed in _toc.yml; book/lite holds the in-browser (Pyodide) notebook,
which installs packages with piplite and only runs in JupyterLite."""

collect_ignore = ["lite"]
