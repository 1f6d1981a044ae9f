"""Scaling reports from result records: ``python -m hpcsuite.report RESULTS...``.

``load`` reads records (bad lines reported, not fatal); ``series`` groups them into
strong-scaling, weak-scaling and message-size series; ``scaling`` holds the pure math;
``checks`` compares against an older run and against reference bounds; ``plots``
draws with matplotlib; ``render`` writes the terminal table, Markdown, HTML and CSV.
"""
