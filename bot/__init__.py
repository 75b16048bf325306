"""Gateway of the outreach assistant: channels, durable message path, NLG rendering."""
