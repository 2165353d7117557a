"""The local launcher of the whole stack: `gro up` starts Redis, the API, workers and the
dashboard on this machine as supervised child processes (stack.up), and submits a demo through
the API on first launch (stack.demo). The server never imports this package."""
