"""What the routes do, as plain functions over a session (tests call them directly). They
raise the domain errors of server.errors, never HTTP ones: server.api.errors maps them."""
