"""report stage: the table model and its renderers (terminal, markdown, JSON, HTML, plots)."""
