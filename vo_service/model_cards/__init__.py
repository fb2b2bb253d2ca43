"""Model cards: what each registered model was trained on, how well it does, and where
it may be used, as HTML pages and JSON documents of the web service."""
