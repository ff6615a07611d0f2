"""The run and its steps: ``pipeline.run`` top to bottom, the follow-up step, the code step, ``simulate``.

The top library layer: it may import every layer below; it must not import ``automation.cli`` (the CLI calls it).
"""
