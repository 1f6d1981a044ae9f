"""Scaling reports from result records: ``python -m hpcsuite.report RESULTS...``.

``load`` reads records (bad lines and unusable records reported with file and line,
not fatal); ``series`` groups them into strong-scaling, weak-scaling and message-size
series, one per module, parameters, problem size, node layout and environment (never
pooling unlike runs), with medians and intervals from :mod:`hpcsuite.core.stats`;
``scaling`` holds the pure math; ``checks`` compares against an older run (a rank test,
not medians alone) and against reference bounds; ``plots`` draws with matplotlib;
``render`` writes the terminal table, Markdown, HTML and CSV.
"""
