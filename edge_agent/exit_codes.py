"""Exit codes of the technician commands, one table for the commands and their --help."""

EXIT_CODES = """\b
Exit codes:
  0  done, and nothing needs attention
  1  something needs attention: a device does not answer, a loop is stuck,
     the uplink fails, or the agent could not do what was asked
  2  bad usage or bad config file
  3  the command needs the running agent and cannot reach it
  4  refused: write calls need technician = true in [local_api]
"""
