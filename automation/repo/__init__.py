"""The user's repository and its host: the tasks file, the context sent to the models, edits and their checks, git, GitHub, who may direct the bot, tasks from labelled issues.

Imports only ``core``; it must not import money, models, reporting or steps (it knows nothing of spend).
"""
