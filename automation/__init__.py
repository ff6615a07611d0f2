"""ai-orchestration: a cron bot that turns a repository's task list into pull requests within a hard monthly budget."""

__version__ = "0.1.0"
