"""trialsift's user-facing entry points: the command line now, the HTTP API later."""
