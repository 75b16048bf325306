"""Custom Rasa components (loaded by ``config.yml`` by their module path)."""
