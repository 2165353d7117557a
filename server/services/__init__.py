"""What the routes do, as plain functions over a session: tests call them directly."""
